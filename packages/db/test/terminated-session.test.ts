// A database session that ends under a client the pool has handed out (a PostgreSQL restart, a failover,
// pg_terminate_backend) must fail the work it was doing and nothing more: pg emits 'error' on such a client, and an
// 'error' event without a listener ends the process (the chaos suite saw ingest and mailbox exit 1 that way).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPool, type Pool, withTransaction } from '../src/index.ts';

const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/smgw';

describe('a pool whose session is terminated while a client is checked out', () => {
  let pool: Pool;
  let admin: Pool;
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);

  before(() => {
    pool = createPool({ url, max: 2, applicationName: 'smgw-db-test' });
    admin = createPool({ url, max: 1, applicationName: 'smgw-db-test-admin' });
    process.on('uncaughtException', onUncaught);
  });
  after(async () => {
    process.off('uncaughtException', onUncaught);
    await pool.end();
    await admin.end();
  });

  async function terminate(pid: number): Promise<void> {
    await admin.query('select pg_terminate_backend($1)', [pid]);
  }

  it('fails the transaction it was in, raises nothing uncaught, and the next query gets a new session', async () => {
    let killedPid = 0;
    // The pool drops the dead client once it is released, after the end of its socket (and its 'error' event).
    const removed = new Promise((resolve) => pool.once('remove', resolve));
    await assert.rejects(
      withTransaction(pool, async (db) => {
        killedPid = (await db.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid ?? 0;
        await terminate(killedPid);
        await db.query('select 1');
      }),
    );
    await removed;
    assert.deepEqual(uncaught, []);
    const { rows } = await pool.query<{ pid: number }>('select pg_backend_pid() as pid');
    assert.notEqual(rows[0]?.pid, killedPid);
  });

  it('raises nothing uncaught when the session of a checked-out client that runs no query ends', async () => {
    const client = await pool.connect();
    const pid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid ?? 0;
    const ended = new Promise((resolve) => client.once('end', resolve));
    await terminate(pid);
    await ended;
    client.release();
    assert.deepEqual(uncaught, []);
    assert.equal((await pool.query('select 1 as one')).rows[0]?.one, 1);
  });
});
