import type { Pool } from '@smgw/db';

/** Blobs deleted per statement: keeps each delete (and the chunks it cascades to) short. */
const PURGE_BATCH = 100;

/**
 * Deletes blobs still in state 'writing' that were started more than `olderThanMs` ago, with their chunks: what a
 * crashed or killed put left behind. `olderThanMs` must be longer than any upload may take (the SMTP DATA timeout),
 * or a slow upload in progress loses its rows and fails at commit. Ages are measured on the database clock.
 * Safe to run from several replicas at once (skip locked). Returns how many blobs were removed.
 */
export async function purgeAbandonedWrites(pool: Pool, olderThanMs: number): Promise<number> {
  if (!Number.isFinite(olderThanMs) || olderThanMs < 0) {
    throw new RangeError(`olderThanMs must be a non-negative number, got ${olderThanMs}`);
  }
  let purged = 0;
  for (;;) {
    const { rowCount } = await pool.query(
      `delete from blobs where id in (
         select id from blobs
          where state = 'writing' and created_at < now() - $1 * interval '1 millisecond'
          order by created_at
          limit $2
          for update skip locked)`,
      [olderThanMs, PURGE_BATCH],
    );
    purged += rowCount ?? 0;
    if ((rowCount ?? 0) < PURGE_BATCH) return purged;
  }
}
