// Retention of message contents: blobs of finished messages are purged after SMGW_MESSAGE_RETENTION, blobs nothing
// refers to any more are collected, and a KEK is retired once no blob is wrapped under it, which makes what it
// protected unreadable for good (also from an older database dump). Plain functions for the lifecycle reaper: each
// works in small batches, skips rows others hold, and can run again or from several replicas at once.
//
// Who refers to a blob:
//   - its message (blobs.message_id; put names it): the original, the copies encrypt makes, notices and DSNs
//     (these are messages of their own). Kept until the message is finished and older than the retention.
//   - a quarantine entry (its envelope's blob.ref): kept while the entry is open (not released) and, for garbage
//     collection, while the entry exists at all.
//   - (future) the portal's mailboxes keep their own copy (recipient state in_mailbox), so they refer to none.
//
// A message is finished when every recipient is done: delivered, bounced, in_mailbox (handed to the portal's own
// store), or quarantined and the message has no open quarantine entry left (a release puts its recipients back to
// pending and on; an expired entry was purged); and no delivery is still sending or deferred. A parked envelope
// leaves its recipients pending: its message is not finished, so an operator can still replay it.
//
// Blobs kept in files (SMGW_BLOB_DIR): each purge takes `files` (blobFiles) and unlinks their files inside the
// transaction that deletes their rows, before it commits (blob-files.ts). Without it, a purge that meets such a blob
// fails and deletes nothing, rather than leave files behind that nothing would ever remove.
import { type Pool, withTransaction } from '@smgw/db';
import type { BlobFiles } from './blob-files.ts';
import { BlobStorageError } from './errors.ts';
import type { KeyStore } from './key-store.ts';

/** Blobs deleted per statement: keeps each delete (and the chunks it cascades to) short. */
const BATCH = 100;

const NOT_IN_OPEN_QUARANTINE = `not exists (
  select 1 from quarantine q where q.envelope -> 'blob' ->> 'ref' = b.id::text and q.released_at is null)`;

const MESSAGE_FINISHED = `not exists (
    select 1 from message_recipients r
     where r.message_id = m.id and r.state not in ('delivered', 'bounced', 'in_mailbox', 'quarantined'))
  and not exists (select 1 from quarantine q where q.message_id = m.id and q.released_at is null)
  and not exists (select 1 from deliveries d where d.message_id = m.id and d.state in ('sending', 'deferred'))`;

/**
 * Deletes the blobs of finished messages received more than `olderThanMs` before `now` (SMGW_MESSAGE_RETENTION),
 * with their chunks. A message given up by the reaper's parked sweep (`envelope.expired`) counts from its expiry
 * instead: its envelope still waits in smgw.<stage>.parked, and an operator may replay it for that long. The message
 * rows and their trace stay. `now`: the time ages count to (an operator's --as-of); the database clock if not given.
 * Returns how many blobs were removed.
 */
export async function purgeFinishedMessageBlobs(
  pool: Pool,
  olderThanMs: number,
  files?: Pick<BlobFiles, 'remove'>,
  now?: Date,
): Promise<number> {
  checkAge('olderThanMs', olderThanMs);
  return deleteInBatches(
    files,
    pool,
    `select b.id from blobs b join messages m on m.id = b.message_id
      where b.state = 'committed'
        and m.received_at < coalesce($3::timestamptz, now()) - $1 * interval '1 millisecond'
        and ${MESSAGE_FINISHED}
        and ${NOT_IN_OPEN_QUARANTINE}
        and not exists (select 1 from message_events x
                         where x.message_id = m.id and x.event = 'envelope.expired'
                           and x.at >= coalesce($3::timestamptz, now()) - $1 * interval '1 millisecond')
      order by m.received_at
      limit $2
      for update of b skip locked`,
    olderThanMs,
    [now ?? null],
  );
}

/**
 * Deletes committed blobs no one refers to: their message has no row (it was purged, or ingest stored the bytes but
 * could not record the message) and no quarantine entry names them. Only blobs committed more than `graceMs` ago:
 * a blob is committed a moment before its message row is written (ingest stores the bytes, then records the
 * message), so the grace must be longer than that moment may take; an hour is plenty. Blobs still being written
 * are never touched here (purgeAbandonedWrites is for those). Returns how many blobs were removed.
 */
export async function collectUnreferencedBlobs(
  pool: Pool,
  graceMs: number,
  files?: Pick<BlobFiles, 'remove'>,
): Promise<number> {
  checkAge('graceMs', graceMs);
  return deleteInBatches(
    files,
    pool,
    `select b.id from blobs b
      where b.state = 'committed'
        and b.committed_at < now() - $1 * interval '1 millisecond'
        and not exists (select 1 from messages m where m.id = b.message_id)
        and not exists (select 1 from quarantine q where q.envelope -> 'blob' ->> 'ref' = b.id::text)
      order by b.committed_at
      limit $2
      for update of b skip locked`,
    graceMs,
  );
}

/**
 * Deletes the committed blobs of these messages once their message rows are gone (the reaper's refused-messages
 * sweep removed them: deleteAbandonedMessages) and no quarantine entry names them, whatever their age. Returns how
 * many blobs and bytes were removed.
 */
export async function purgeBlobsOfMessages(
  pool: Pool,
  messageIds: readonly string[],
  files?: Pick<BlobFiles, 'remove'>,
): Promise<{ blobs: number; bytes: number }> {
  let blobs = 0;
  let bytes = 0;
  for (let i = 0; i < messageIds.length; i += BATCH) {
    const rows = await deleteAndUnlink(
      pool,
      files,
      `delete from blobs where id in (
         select b.id from blobs b
          where b.message_id = any($1::text[]) and b.state = 'committed'
            and not exists (select 1 from messages m where m.id = b.message_id)
            and not exists (select 1 from quarantine q where q.envelope -> 'blob' ->> 'ref' = b.id::text)
          for update of b skip locked)
       returning id, storage, size`,
      [messageIds.slice(i, i + BATCH)],
    );
    blobs += rows.length;
    for (const row of rows) bytes += Number(row.size);
  }
  return { blobs, bytes };
}

/**
 * Retires (deletes from the key store) every KEK of a period that ended more than one period before `now` and that
 * no blob row, committed or still being written, names any more. Everything it ever protected is then unreadable,
 * in this database and in every dump of it. The current and the previous period are never touched: a put names its
 * KEK in its first statement, or (a blob written to a file before its row) takes the KEK only when its file is
 * written, right before its row commits; and a clock a little behind may still pick the previous one. Each
 * retirement is recorded in retired_keks (committed) before the file goes: a master key rotation checks there after
 * re-sealing a file, so its copy cannot bring the KEK back (rotateMasterKey); the record goes once no rotation can
 * need it (pruneRetiredKeks). Returns the ids retired.
 */
export async function retireUnusedKeks(
  pool: Pool,
  keyStore: KeyStore,
  options: { kekPeriod: number; now?: Date },
): Promise<string[]> {
  const now = options.now ?? new Date();
  const retired: string[] = [];
  for (const kek of await keyStore.list()) {
    if (kek.periodStart.getTime() + 2 * options.kekPeriod > now.getTime()) continue;
    const { rowCount } = await pool.query('select 1 from blobs where kek_id = $1 limit 1', [kek.id]);
    if (rowCount !== 0) continue;
    await pool.query('insert into retired_keks (id) values ($1) on conflict (id) do nothing', [kek.id]);
    await keyStore.retire(kek.id);
    retired.push(kek.id);
  }
  return retired;
}

/**
 * The advisory lock of a master key rotation (rotateMasterKey holds it shared for its whole run; a second rotation
 * may run beside it): a retired_keks record may go only while no rotation runs (pruneRetiredKeks takes it
 * exclusively). Per schema, as the reaper's sweep locks are, so test schemas do not block each other.
 */
export const MASTER_KEY_ROTATION_LOCK = `hashtext('smgw-master-key-rotation:' || current_schema())`;

/**
 * Deletes the records of retired KEKs (retireUnusedKeks) that protect nothing any more. A record exists for one
 * reader: a master key rotation that read the KEK's file before the retirement deleted it, and whose re-sealed copy
 * would otherwise bring the KEK back (rotateMasterKey looks the record up after each rename). Once the file is gone
 * and no rotation runs, none can: a rotation that starts later lists the folder without it, and ids are never made
 * again. So a record goes when, in one transaction, no rotation holds MASTER_KEY_ROTATION_LOCK (taken exclusively
 * here, so none starts until the commit), the key store no longer holds the KEK (a retirement midway has recorded it
 * but not yet deleted the file), and no blob names it. Returns how many went, or `rotationRunning` when a rotation
 * holds the lock (nothing is deleted; the next round tries again).
 */
export async function pruneRetiredKeks(
  pool: Pool,
  keyStore: KeyStore,
): Promise<{ pruned: number; rotationRunning: boolean }> {
  return withTransaction(pool, async (db) => {
    const { rows: lock } = await db.query<{ free: boolean }>(
      `select pg_try_advisory_xact_lock(${MASTER_KEY_ROTATION_LOCK}) as free`,
    );
    if (!lock[0]?.free) return { pruned: 0, rotationRunning: true };
    const held = (await keyStore.list()).map((kek) => kek.id);
    const { rowCount } = await db.query(
      `delete from retired_keks r
        where r.id <> all($1::text[])
          and not exists (select 1 from blobs b where b.kek_id = r.id)`,
      [held],
    );
    return { pruned: rowCount ?? 0, rotationRunning: false };
  });
}

async function deleteInBatches(
  files: Pick<BlobFiles, 'remove'> | undefined,
  pool: Pool,
  selectIds: string,
  age: number,
  /** Parameters from $3 on. */
  more: unknown[] = [],
): Promise<number> {
  let deleted = 0;
  for (;;) {
    const rows = await deleteAndUnlink(
      pool,
      files,
      `delete from blobs where id in (${selectIds}) returning id, storage, size`,
      [age, BATCH, ...more],
    );
    deleted += rows.length;
    if (rows.length < BATCH) return deleted;
  }
}

interface DeletedBlob {
  id: string;
  storage: 'database' | 'files';
  size: string;
}

/** Runs `deleteStatement` (returning id, storage, size) and unlinks the deleted blobs' files before it commits. */
function deleteAndUnlink(
  pool: Pool,
  files: Pick<BlobFiles, 'remove'> | undefined,
  deleteStatement: string,
  values: unknown[],
): Promise<DeletedBlob[]> {
  return withTransaction(pool, async (tx) => {
    const { rows } = await tx.query<DeletedBlob>(deleteStatement, values);
    const inFiles = rows.filter((row) => row.storage === 'files').map((row) => row.id);
    if (inFiles.length > 0) {
      if (!files) {
        throw new BlobStorageError(`blobs to purge are kept in files, and SMGW_BLOB_DIR is not set here`);
      }
      await files.remove(inFiles);
    }
    return rows;
  });
}

function checkAge(name: string, ms: number): void {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`${name} must be a non-negative number, got ${ms}`);
}
