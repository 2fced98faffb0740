// The sweeps, in the order they run: each is a purge or lifecycle function of a package, given its age from the
// settings. The outbox of notices goes first (what a crashed round decided is sent before anything new); warnings
// before deletions; quarantine before the message blobs, so a message whose entry just expired is finished in the
// same round; the Sent-copy reservations no draft can use any more before the traces (a trace whose reservation is
// open is kept; closed, it may go in the same round); the traces after the blobs (a trace goes only once its contents
// are gone); KEKs last, after the blobs wrapped under them are gone, and the records of retired KEKs after them (one
// retired this round goes in the same round, when no master key rotation runs).
import {
  type BlobFiles,
  type BlobStore,
  collectUnreferencedBlobs,
  type KeyStore,
  pruneRetiredKeks,
  purgeAbandonedWrites,
  purgeBlobsOfMessages,
  purgeFinishedMessageBlobs,
  retireUnusedKeks,
} from '@smgw/blob-store';
import { type Pool, type PoolClient, withTransaction } from '@smgw/db';
import type { Envelope } from '@smgw/envelope';
import {
  collectOrphanMailboxKeys,
  DRAFT_MAX_AGE_MS,
  type InactivitySchedule,
  lockMailbox,
  type MailboxKeyStore,
  moveMailboxKeysToKeyStore,
  purgeDeadActivationTokens,
  purgeStaleArrivals,
  releaseMailboxUsage,
} from '@smgw/mailbox-store';
import type { Logger } from '@smgw/observability';
import { purgeExpiredQuarantine } from '@smgw/quarantine';
import { keyFileLeftovers, removeKeyFileLeftovers } from '@smgw/secrets';
import {
  type AbandonedSentCopy,
  claimAbandonedSentCopy,
  deleteAbandonedMessages,
  expireParkedMessages,
  listAbandonedSentCopies,
  listParkedEnvelopes,
  purgeFinishedTraces,
  recordSentCopyAbandoned,
} from '@smgw/trace';
import { recordExpiryDsn } from './expiry-dsn.ts';
import { deleteInactiveMailboxes, sendInactivityWarnings } from './inactivity.ts';
import type { ReaperMetrics } from './metrics.ts';
import { type Publisher, publishNotices, REAPER_STAGE, type ReaperTemplates, republishNotices } from './notices.ts';

/** A committed blob without a message row is kept this long: ingest commits the bytes a moment before the row. */
export const UNREFERENCED_BLOB_GRACE_MS = 60 * 60_000;
/** A blob still being written after this long was left by a crashed put; far longer than any SMTP DATA may take. */
export const ABANDONED_WRITE_AGE_MS = 6 * 60 * 60_000;
/** Dead activation tokens (expired, used, revoked) are kept this long, for questions about a recent activation. */
export const DEAD_TOKEN_GRACE_MS = 7 * 24 * 60 * 60_000;
/** A mailbox key without a mailbox row is kept this long: a new mailbox's key is written a moment before its row. */
export const ORPHAN_MAILBOX_KEY_GRACE_MS = 60 * 60_000;
/**
 * A portal message's reserved Sent-copy bytes are given back this long after its draft's life ends (DRAFT_MAX_AGE_MS
 * from the message's recording, itself later than the draft token's issue): portal and reaper clocks may be apart (a
 * token is taken up to a minute ahead), and a submission may have opened its token just before it died.
 */
export const SENT_COPY_RELEASE_MARGIN_MS = 60 * 60_000;
/** Sent-copy reservations given back per round, one transaction each; the rest in the next round. */
const SENT_COPY_RELEASES = 200;
/** Quarantine entries deleted per transaction. */
const QUARANTINE_BATCH = 100;
/** Legacy mailboxes given a key-store key per round. */
const MAILBOX_KEY_MOVES = 200;
/** Parked envelopes named in the log line (and expired per round). */
const PARKED_LISTED = 100;

export const SWEEP_NAMES = [
  'notice-outbox',
  'first-warnings',
  'second-warnings',
  'mailbox-deletions',
  'mailbox-keys',
  'quarantine',
  'message-blobs',
  'sent-copy-reservations',
  'traces',
  'refused-messages',
  'unreferenced-blobs',
  'abandoned-writes',
  'blob-file-leftovers',
  'key-file-leftovers',
  'activation-tokens',
  'parked',
  'keks',
  'retired-keks',
] as const;
export type SweepName = (typeof SWEEP_NAMES)[number];

/** What the operator command prints per sweep: [run, dry run]; the rest remove things. */
export const SWEEP_VERBS: Partial<Record<SweepName, [string, string]>> = {
  'notice-outbox': ['published again', 'would publish again'],
  'first-warnings': ['warned', 'would warn'],
  'second-warnings': ['warned', 'would warn'],
  'mailbox-deletions': ['deleted', 'would delete'],
  'mailbox-keys': ['destroyed or moved', 'would destroy or move'],
  'sent-copy-reservations': ['released', 'would release'],
  'refused-messages': ['collected', 'would collect'],
  parked: ['expired', 'would expire'],
};

/**
 * The folders of sealed key files (the KEKs', the mailbox keys'): what a crash of a key file's write left there is a
 * copy of a key (@smgw/secrets keyFileLeftovers), swept after the same grace as a blob file's leftovers. A dry run
 * counts.
 */
export interface KeyFileFolders {
  sweepLeftovers(graceMs: number): Promise<number>;
  countLeftovers(graceMs: number): Promise<number>;
}

/** KeyFileFolders over these folders. */
export function keyFileFolders(folders: readonly string[]): KeyFileFolders {
  const each = async (work: (folder: string) => Promise<number>) => {
    let total = 0;
    for (const folder of folders) total += await work(folder);
    return total;
  };
  return {
    sweepLeftovers: (graceMs) => each((folder) => removeKeyFileLeftovers(folder, graceMs)),
    countLeftovers: (graceMs) => each(async (folder) => (await keyFileLeftovers(folder, graceMs)).length),
  };
}

export interface SweepContext {
  pool: Pool;
  keyStore: KeyStore;
  mailboxKeys: MailboxKeyStore;
  blobStore: BlobStore;
  publisher: Publisher;
  templates: ReaperTemplates;
  hostname: string;
  publicUrl: string;
  /** The time the sweep acts at: the real time, or an operator's --as-of. */
  now: Date;
  messageRetentionMs: number;
  traceRetentionMs: number;
  kekPeriodMs: number;
  inactivity: InactivitySchedule;
  parkedRetentionMs: number;
  parkedAction: 'report' | 'remove';
  /** SMGW_REFUSED_MESSAGE_GRACE: how long a message ingest answered 451 for is kept (refused-messages). */
  refusedMessageGraceMs: number;
  /** The files of SMGW_BLOB_DIR (ReaperDeps.blobFiles). */
  blobFiles?: BlobFiles | undefined;
  /** The key store's folders (ReaperDeps.keyFiles). */
  keyFiles?: KeyFileFolders | undefined;
  log: Logger;
  /** Absent in a dry run: nothing it does counts. */
  metrics?: ReaperMetrics | undefined;
}

const ago = (now: Date, ms: number) => new Date(now.getTime() - ms);

const inactivityDeps = (c: SweepContext) => ({ ...c, schedule: c.inactivity });

/**
 * Each sweep returns how many things it removed (or sent, or found). Only expiry, retention and inactivity follow
 * `now`; the garbage collection graces and the KEK retirement stay on the real clock: they protect writes in
 * progress and keys still in use, which an operator's --as-of must never cut short.
 */
export const SWEEPS: Record<SweepName, (context: SweepContext) => Promise<number | SweepResult>> = {
  'notice-outbox': (c) => republishNotices(c.pool, c.publisher, c.hostname, c.now, c.log),
  'first-warnings': (c) => sendInactivityWarnings(inactivityDeps(c), 'first', c.now),
  'second-warnings': (c) => sendInactivityWarnings(inactivityDeps(c), 'second', c.now),
  'mailbox-deletions': (c) => deleteInactiveMailboxes(inactivityDeps(c), c.now),
  'mailbox-keys': async (c) =>
    (await collectOrphanMailboxKeys(c.pool, c.mailboxKeys, new Date(), ORPHAN_MAILBOX_KEY_GRACE_MS)) +
    (await moveMailboxKeysToKeyStore(c.pool, c.mailboxKeys, MAILBOX_KEY_MOVES)),
  quarantine: async (c) => (await purgeExpiredQuarantine(c.pool, c.now, QUARANTINE_BATCH)).deleted,
  // Ages count to `now`: a message given up by the parked sweep keeps its blob for the retention after its expiry.
  'message-blobs': (c) => purgeFinishedMessageBlobs(c.pool, c.messageRetentionMs, c.blobFiles, c.now),
  'sent-copy-reservations': (c) => releaseAbandonedSentCopies(c),
  traces: async (c) => {
    const messages = await purgeFinishedTraces(c.pool, ago(c.now, c.traceRetentionMs));
    await purgeStaleArrivals(c.pool, ago(c.now, c.traceRetentionMs));
    return messages;
  },
  'refused-messages': (c) => collectRefusedMessages(c),
  'unreferenced-blobs': (c) => collectUnreferencedBlobs(c.pool, UNREFERENCED_BLOB_GRACE_MS, c.blobFiles),
  'abandoned-writes': (c) => purgeAbandonedWrites(c.pool, ABANDONED_WRITE_AGE_MS),
  'blob-file-leftovers': async (c) => (c.blobFiles ? c.blobFiles.sweepLeftovers(ABANDONED_WRITE_AGE_MS) : 0),
  'key-file-leftovers': async (c) => (c.keyFiles ? c.keyFiles.sweepLeftovers(ABANDONED_WRITE_AGE_MS) : 0),
  'activation-tokens': (c) => purgeDeadActivationTokens(c.pool, c.now, DEAD_TOKEN_GRACE_MS),
  parked: (c) => reportParked(c),
  keks: async (c) => (await retireUnusedKeks(c.pool, c.keyStore, { kekPeriod: c.kekPeriodMs })).length,
  'retired-keks': async (c) => {
    const { pruned, rotationRunning } = await pruneRetiredKeks(c.pool, c.keyStore);
    return { items: pruned, note: rotationRunning ? '(a master key rotation is running: kept until it ends)' : '' };
  },
};

/** What a sweep did, when a count alone does not say it (printed by the operator command). */
export interface SweepResult {
  items: number;
  note: string;
}

/**
 * Parked envelopes wait for an operator (replay or give up): a gauge of how many and how old, and a log line naming
 * them. With SMGW_PARKED_ACTION=remove, those parked longer than SMGW_PARKED_RETENTION are given up: their recipients
 * bounced and, in the same transaction, a DSN to the sender put into the notice outbox (expiry-dsn.ts), published
 * after the commit (or by the notice-outbox sweep of a later round). Their blobs stay for SMGW_MESSAGE_RETENTION
 * after the expiry (the trace and the message can still be read), but given up is final: an envelope moved back from
 * smgw.<stage>.parked afterwards sends nothing to those recipients (deliver claims no recipient the trace has
 * bounced), since their sender was told it failed. Items: how many were given up.
 */
async function reportParked(c: SweepContext): Promise<SweepResult> {
  const parked = await listParkedEnvelopes(c.pool, PARKED_LISTED);
  const oldestAgeMs = parked.oldest ? Math.max(0, c.now.getTime() - parked.oldest.getTime()) : 0;
  c.metrics?.parkedEnvelopes.set(parked.total);
  c.metrics?.parkedOldestSeconds.set(oldestAgeMs / 1000);
  if (parked.total > 0) {
    c.log.warn(
      {
        code: 'REAPER_PARKED_ENVELOPES',
        count: parked.total,
        oldestParkedAt: parked.oldest?.toISOString(),
        messageIds: parked.envelopes.map((e) => e.messageId),
      },
      'parked envelopes wait for an operator (./smgw trace ID; replay or give up)',
    );
  }
  const note = `(${parked.total} parked${parked.oldest ? `, oldest since ${parked.oldest.toISOString()}` : ''})`;
  if (c.parkedAction !== 'remove') return { items: 0, note };
  const dsns: Envelope[] = [];
  // Throws on the first failure (that message's expiry rolled back): the DSNs of those before it wait in the outbox.
  const expired = await expireParkedMessages(
    c.pool,
    ago(c.now, c.parkedRetentionMs),
    REAPER_STAGE,
    c.now,
    PARKED_LISTED,
    async (db, message) => {
      const dsn = await recordExpiryDsn(c, db, message, c.now);
      if (dsn.envelope) dsns.push(dsn.envelope);
      return dsn.data;
    },
  );
  await publishNotices(c.pool, c.publisher, dsns, c.now, c.log);
  if (expired.length > 0) {
    c.log.warn(
      { code: 'REAPER_PARKED_EXPIRED', count: expired.length, messageIds: expired, dsns: dsns.map((d) => d.id) },
      'parked envelopes past SMGW_PARKED_RETENTION given up; their senders told',
    );
  }
  return { items: expired.length, note: `${note} (${dsns.length} DSNs)` };
}

/**
 * Messages ingest answered 451 for because the broker refused (or never confirmed) all of their envelopes: the
 * client sends them again under new ids, and these stay pending for ever unless collected. After
 * SMGW_REFUSED_MESSAGE_GRACE, those no stage ever recorded anything of lose their trace (trace's condition, checked
 * in the delete), then their blobs. Items: messages collected.
 */
async function collectRefusedMessages(c: SweepContext): Promise<SweepResult> {
  const messageIds = await deleteAbandonedMessages(c.pool, ago(c.now, c.refusedMessageGraceMs));
  const { blobs, bytes } = await purgeBlobsOfMessages(c.pool, messageIds, c.blobFiles);
  c.metrics?.reclaimedBytes.inc({ sweep: 'refused-messages' }, bytes);
  if (messageIds.length > 0 && c.metrics) {
    c.log.info(
      {
        code: 'REAPER_REFUSED_COLLECTED',
        count: messageIds.length,
        blobs,
        bytes,
        messageIds: messageIds.slice(0, 100),
      },
      'messages refused at ingest collected',
    );
  }
  return { items: messageIds.length, note: `(${blobs} blobs, ${bytes} bytes)` };
}

/**
 * A portal message's Sent copy has its bytes reserved in its mailbox's usage from the moment the message is recorded.
 * When its publish was not confirmed and the user never sent the form again (or the portal died before it stored the
 * copy), no copy ever takes them, and the mailbox would refuse mail for bytes it does not hold. Once no draft can
 * resume the message (DRAFT_MAX_AGE_MS after it was recorded, and SENT_COPY_RELEASE_MARGIN_MS), its bytes go back to
 * the mailbox and `message.sent-copy-abandoned` closes the reservation, in one transaction per message: given back
 * once, whatever crashes or runs beside it. A deleted mailbox has nothing to give back: the event alone closes it.
 * Items: reservations closed.
 */
async function releaseAbandonedSentCopies(c: SweepContext): Promise<SweepResult> {
  const before = ago(c.now, DRAFT_MAX_AGE_MS + SENT_COPY_RELEASE_MARGIN_MS);
  let closed = 0;
  let releasedBytes = 0;
  for (const candidate of await listAbandonedSentCopies(c.pool, before, SENT_COPY_RELEASES)) {
    const released = await withTransaction(c.pool, (db) => releaseSentCopy(c, db, candidate, before));
    if (!released) continue; // closed meanwhile (another reaper, or the copy was stored)
    closed += 1;
    releasedBytes += released.releasedBytes;
    c.metrics?.releasedReservationBytes.inc(released.releasedBytes);
    if (c.metrics) {
      c.log.info(
        {
          code: 'REAPER_SENT_COPY_RELEASED',
          id: candidate.messageId,
          mailboxId: candidate.mailboxId,
          bytes: candidate.bytes,
          releasedBytes: released.releasedBytes,
        },
        "a portal message's Sent copy was never stored: its reserved bytes given back to the mailbox",
      );
    }
  }
  return { items: closed, note: `(${releasedBytes} bytes)` };
}

async function releaseSentCopy(
  c: SweepContext,
  db: PoolClient,
  candidate: AbandonedSentCopy,
  before: Date,
): Promise<{ releasedBytes: number } | undefined> {
  // The mailbox row first, as the portal locks it before it stores a copy: a copy stored meanwhile is seen by the
  // claim, which reads again after its own lock.
  const mailbox = candidate.mailboxId === undefined ? undefined : await lockMailbox(db, candidate.mailboxId);
  const copy = await claimAbandonedSentCopy(db, candidate.messageId, before);
  if (!copy) return undefined;
  const usage = mailbox ? await releaseMailboxUsage(db, mailbox.id, copy.bytes) : undefined;
  await recordSentCopyAbandoned(db, copy, {
    stage: REAPER_STAGE,
    reason: usage
      ? 'no Sent copy was stored and the draft can no longer be sent: its reserved bytes given back'
      : 'no Sent copy was stored and the mailbox is gone: nothing to give back',
    data: {
      mailboxId: copy.mailboxId ?? null,
      bytes: copy.bytes,
      releasedBytes: usage?.releasedBytes ?? 0,
      usageBytes: usage?.usageBytes ?? null,
    },
    at: c.now,
  });
  return { releasedBytes: usage?.releasedBytes ?? 0 };
}
