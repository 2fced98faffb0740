// One replica per sweep: a PostgreSQL advisory lock held by a connection of its own for the whole sweep, however
// long it takes (it outlives the interval), and released by the server if the process dies. The purges commit in
// small batches, so a sweep killed midway has kept what it did, and the next one (here or elsewhere) goes on.
import type { Pool } from '@smgw/db';

/**
 * Runs `work` if no one else holds the sweep's lock; `{ ran: false }` if someone does. The key includes the
 * schema, so test schemas (and gateways sharing a database server) do not block each other.
 */
export async function withSweepLock<T>(
  pool: Pool,
  sweep: string,
  work: () => Promise<T>,
): Promise<{ ran: true; result: T } | { ran: false }> {
  const client = await pool.connect();
  const key = `select hashtext('smgw-reaper:' || current_schema() || ':' || $1::text)`;
  let released = false;
  try {
    const { rows } = await client.query(`select pg_try_advisory_lock((${key})) as locked`, [sweep]);
    if (!rows[0]?.locked) return { ran: false };
    try {
      return { ran: true, result: await work() };
    } finally {
      await client.query(`select pg_advisory_unlock((${key}))`, [sweep]).catch((err: Error) => {
        // The connection is in doubt: close it, which releases the lock with it.
        client.release(err);
        released = true;
      });
    }
  } finally {
    if (!released) client.release();
  }
}
