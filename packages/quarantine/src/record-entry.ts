// Recording an entry when scan stops a message: one per envelope, unique on (message_id, blob_sha256, direction), so
// a redelivered envelope finds its entry and the notice made the first time. The transaction around it (with the
// message's trace) is the caller's.
import type { Pool, PoolClient } from '@smgw/db';
import { type Envelope, newMessageId, parseEnvelope } from '@smgw/envelope';

type Queryable = Pool | PoolClient;

export type QuarantineVerdict = 'infected' | 'suspicious';

export interface NewQuarantineEntry {
  /** The envelope as it reached scan; a release continues from it. */
  envelope: Envelope;
  verdict: QuarantineVerdict;
  finding: string;
  detail?: string | undefined;
  quarantinedAt: Date;
  expiresAt: Date;
  /** The notices made for this entry (published again on redelivery); none when nobody is told. */
  notices: Envelope[];
}

/** An envelope's entry as scan needs it again on redelivery. */
export interface RecordedQuarantineEntry {
  quarantineId: string;
  notices: Envelope[];
}

interface RecordedRow {
  id: string;
  notice_envelope: unknown;
}

/** The entry of this envelope (its message, blob and direction), if there is one. */
export async function findQuarantineEntry(
  db: Queryable,
  envelope: Envelope,
): Promise<RecordedQuarantineEntry | undefined> {
  const found = await db.query<RecordedRow>(
    'select id, notice_envelope from quarantine where message_id = $1 and blob_sha256 = $2 and direction = $3',
    [envelope.id, envelope.blob.sha256, envelope.direction],
  );
  const row = found.rows[0];
  return row ? { quarantineId: row.id, notices: storedNotices(row.notice_envelope) } : undefined;
}

/**
 * True when the entry of another envelope of the same message (split by direction at ingest) holds a notice already:
 * the sender is told once.
 */
export async function siblingHasNotice(db: Queryable, envelope: Envelope): Promise<boolean> {
  const found = await db.query(
    `select 1 from quarantine where message_id = $1 and blob_sha256 = $2 and direction <> $3
       and notice_envelope is not null limit 1`,
    [envelope.id, envelope.blob.sha256, envelope.direction],
  );
  return (found.rowCount ?? 0) > 0;
}

/**
 * inboundNoticeClientsSince's statement. It reads only entries that hold a notice, through their own index (migration
 * 027): the caps keep those few, while a stranger's flood of infected mail makes the inbound entries of an hour many.
 */
export const INBOUND_NOTICE_CLIENTS = `select envelope->'client'->>'ip' as ip from quarantine
     where quarantined_at >= $1 and direction = 'inbound' and notice_envelope is not null
       and notice_envelope @> $2::jsonb`;

/**
 * The client addresses of the inbound messages quarantined since `since` about which a notice went to `to`: what
 * scan counts against its notices per hour (a stranger's flood of infected mail must not become a flood of notices).
 */
export async function inboundNoticeClientsSince(db: Queryable, to: string, since: Date): Promise<string[]> {
  const found = await db.query<{ ip: string | null }>(INBOUND_NOTICE_CLIENTS, [
    since,
    JSON.stringify([{ recipients: [to] }]),
  ]);
  return found.rows.map((row) => row.ip ?? '');
}

/** Inserts the envelope's entry and returns its id; undefined when the envelope has one already (nothing changes). */
export async function insertQuarantineEntry(db: Queryable, entry: NewQuarantineEntry): Promise<string | undefined> {
  const { envelope } = entry;
  const inserted = await db.query<{ id: string }>(
    `insert into quarantine (id, message_id, blob_sha256, direction, verdict, finding, detail, envelope,
       quarantined_at, expires_at, notice_envelope)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     on conflict (message_id, blob_sha256, direction) do nothing
     returning id`,
    [
      newMessageId(entry.quarantinedAt.getTime()),
      envelope.id,
      envelope.blob.sha256,
      envelope.direction,
      entry.verdict,
      entry.finding,
      entry.detail ?? null,
      JSON.stringify(envelope),
      entry.quarantinedAt,
      entry.expiresAt,
      entry.notices.length > 0 ? JSON.stringify(entry.notices) : null,
    ],
  );
  return inserted.rows[0]?.id;
}

/** The stored notices: a list, or one envelope as entries made before notices went per agency domain kept it. */
function storedNotices(value: unknown): Envelope[] {
  if (value === null || value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).flatMap((item) => {
    const parsed = parseEnvelope(item);
    return parsed.ok ? [parsed.envelope] : [];
  });
}
