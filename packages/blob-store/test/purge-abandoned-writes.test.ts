import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { purgeAbandonedWrites } from '@smgw/blob-store';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';

const HOUR_MS = 3_600_000;

describe('purgeAbandonedWrites', () => {
  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
  });

  /** A blob row with two chunks, started `ageMinutes` ago. */
  async function insertBlob(state: 'writing' | 'committed', ageMinutes: number): Promise<string> {
    const id = randomUUID();
    const committed = state === 'committed';
    await db.pool.query(
      `insert into blobs (id, state, digest, size, created_at, committed_at, message_id, kek_id, wrapped_key)
       values ($1, $2, $3, $4, now() - $5 * interval '1 minute', $6::timestamptz, 'm-1', 'k-1', '\\x00')`,
      [id, state, committed ? randomBytes(32).toString('hex') : null, committed ? 20 : 0, ageMinutes, null],
    );
    for (const seq of [0, 1]) {
      await db.pool.query('insert into blob_chunks (blob_id, seq, data) values ($1, $2, $3)', [
        id,
        seq,
        randomBytes(10),
      ]);
    }
    return id;
  }

  const exists = async (id: string) => (await db.pool.query('select 1 from blobs where id = $1', [id])).rowCount === 1;
  const chunksOf = async (id: string) =>
    Number((await db.pool.query('select count(*)::int as n from blob_chunks where blob_id = $1', [id])).rows[0].n);

  it('removes only writing blobs older than the limit, with their chunks', async () => {
    const abandoned = await insertBlob('writing', 120);
    const inProgress = await insertBlob('writing', 5);
    const oldCommitted = await insertBlob('committed', 600);

    assert.equal(await purgeAbandonedWrites(db.pool, HOUR_MS), 1);

    assert.equal(await exists(abandoned), false);
    assert.equal(await chunksOf(abandoned), 0);
    assert.equal(await exists(inProgress), true);
    assert.equal(await chunksOf(inProgress), 2);
    assert.equal(await exists(oldCommitted), true);
    assert.equal(await chunksOf(oldCommitted), 2);
  });

  it('removes more abandoned writes than one batch holds', async () => {
    const ids = [];
    for (let i = 0; i < 230; i++) ids.push(await insertBlob('writing', 90));
    assert.equal(await purgeAbandonedWrites(db.pool, HOUR_MS), 230);
    assert.equal(
      (await db.pool.query(`select count(*)::int as n from blobs where state = 'writing' and id = any($1)`, [ids]))
        .rows[0].n,
      0,
    );
  });

  it('refuses a negative age', async () => {
    await assert.rejects(purgeAbandonedWrites(db.pool, -1), RangeError);
  });
});
