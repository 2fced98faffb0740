// Test helpers of @smgw/trace for the stages' tests (import from '@smgw/trace/testing').
import type { Pool } from '@smgw/db';
import { expireParkedMessages } from './retention.ts';

/** A reaper sweep held inside its transaction: it has bounced and locked the recipients, not committed yet. */
export interface PausedReaper {
  /** The sweep's result once released: the message ids it gave up. */
  done: Promise<string[]>;
  /** Lets it commit. */
  release(): void;
}

/**
 * Starts a sweep of every parked message (expireParkedMessages, as the reaper runs it) and resolves once it holds the
 * first message's rows and has bounced its recipients, before it commits: a stage that takes the envelope now meets
 * the reaper in the middle of giving it up.
 */
export async function pausedReaper(pool: Pool): Promise<PausedReaper> {
  const inside = Promise.withResolvers<void>();
  const released = Promise.withResolvers<void>();
  const done = expireParkedMessages(pool, new Date(Date.now() + 60_000), 'reaper', new Date(), 1000, async () => {
    inside.resolve();
    await released.promise;
    return undefined;
  });
  // A sweep that ends without reaching a message (or fails) must not leave the caller waiting.
  await Promise.race([inside.promise, done]);
  return { done, release: () => released.resolve() };
}
