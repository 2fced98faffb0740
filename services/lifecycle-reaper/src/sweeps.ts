// The sweeps, in the order they run: each is one purge function of a package, given its age from the settings.
// Quarantine runs before the message blobs, so a message whose entry just expired is finished in the same round;
// KEKs run last, after the blobs wrapped under them are gone.
import {
  collectUnreferencedBlobs,
  type KeyStore,
  purgeAbandonedWrites,
  purgeFinishedMessageBlobs,
  retireUnusedKeks,
} from '@smgw/blob-store';
import type { Pool } from '@smgw/db';
import { purgeDeadActivationTokens } from '@smgw/mailbox-store';
import { purgeExpiredQuarantine } from '@smgw/quarantine';

/** A committed blob without a message row is kept this long: ingest commits the bytes a moment before the row. */
export const UNREFERENCED_BLOB_GRACE_MS = 60 * 60_000;
/** A blob still being written after this long was left by a crashed put; far longer than any SMTP DATA may take. */
export const ABANDONED_WRITE_AGE_MS = 6 * 60 * 60_000;
/** Dead activation tokens (expired, used, revoked) are kept this long, for questions about a recent activation. */
export const DEAD_TOKEN_GRACE_MS = 7 * 24 * 60 * 60_000;
/** Quarantine entries deleted per transaction. */
const QUARANTINE_BATCH = 100;

export const SWEEP_NAMES = [
  'quarantine',
  'message-blobs',
  'unreferenced-blobs',
  'abandoned-writes',
  'activation-tokens',
  'keks',
] as const;
export type SweepName = (typeof SWEEP_NAMES)[number];

export interface SweepContext {
  pool: Pool;
  keyStore: KeyStore;
  /** The time the sweep acts at: the real time, or an operator's --as-of. */
  now: Date;
  messageRetentionMs: number;
  kekPeriodMs: number;
}

/**
 * How far `now` is ahead of the real clock. The blob purges measure ages on the database clock, so a later `now`
 * shortens the retention they are given by as much (never below zero: nothing was received in the future).
 */
function retentionAt(context: SweepContext, retentionMs: number): number {
  return Math.max(0, retentionMs - (context.now.getTime() - Date.now()));
}

/**
 * Each sweep returns how many things it removed. Only expiry and retention follow `now`; the garbage collection
 * graces and the KEK retirement stay on the real clock: they protect writes in progress and keys still in use,
 * which an operator's --as-of must never cut short.
 */
export const SWEEPS: Record<SweepName, (context: SweepContext) => Promise<number>> = {
  quarantine: async (c) => (await purgeExpiredQuarantine(c.pool, c.now, QUARANTINE_BATCH)).deleted,
  'message-blobs': (c) => purgeFinishedMessageBlobs(c.pool, retentionAt(c, c.messageRetentionMs)),
  'unreferenced-blobs': (c) => collectUnreferencedBlobs(c.pool, UNREFERENCED_BLOB_GRACE_MS),
  'abandoned-writes': (c) => purgeAbandonedWrites(c.pool, ABANDONED_WRITE_AGE_MS),
  'activation-tokens': (c) => purgeDeadActivationTokens(c.pool, c.now, DEAD_TOKEN_GRACE_MS),
  keks: async (c) => (await retireUnusedKeks(c.pool, c.keyStore, { kekPeriod: c.kekPeriodMs })).length,
};
