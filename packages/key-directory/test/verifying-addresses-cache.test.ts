// Who verifies signatures, kept in memory (ingest asks for every clean inbound message): against the real
// PostgreSQL, a change made through the key directory is seen once its notice arrives, nothing is trusted while
// the listener is not listening, and the lookups in between ask the database nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { listenForChanges, type Pool, type QueryConfig } from '@smgw/db';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import {
  AGENCY_ADDRESSES_CHANNEL,
  addressesVerifyingSignatures,
  cachedAddressesVerifyingSignatures,
  createAgency,
  putAgencyAddress,
} from '../src/index.ts';

/** `pool` through a wrapper that counts the statements sent through pool.query. */
function counting(pool: Pool): { pool: Pool; statements: () => number } {
  let count = 0;
  const query = (query: string | QueryConfig, values?: unknown[]) => {
    count += 1;
    return typeof query === 'string' ? pool.query(query, values) : pool.query(query);
  };
  return { pool: Object.assign(Object.create(pool) as Pool, { query }), statements: () => count };
}

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('addresses verifying signatures, kept in memory', () => {
  let db: TestDatabase;
  let agencyId: string;
  before(async () => {
    db = await createTestDatabase();
    const created = await createAgency(db.pool, { name: 'Stadt', domains: ['stadt.example'], now: new Date() });
    assert.equal(created.kind, 'created');
    agencyId = (created as { id: string }).id;
    await putAgencyAddress(db.pool, { agencyId, address: 'Verify@stadt.example', verifySignatures: true });
    await putAgencyAddress(db.pool, { agencyId, address: 'plain@stadt.example', verifySignatures: false });
  });
  after(async () => {
    await db?.drop();
  });

  const recipients = ['verify@STADT.example', 'Verify@stadt.example', 'plain@stadt.example', 'x@elsewhere.example'];

  it('answers as the database does, from memory, and sees a change once its notice is heard', async () => {
    const changes = listenForChanges({ url: db.url, channel: AGENCY_ADDRESSES_CHANNEL });
    try {
      await until('listening', () => changes.listening);
      const { pool, statements } = counting(db.pool);
      const lookup = cachedAddressesVerifyingSignatures(pool, changes);
      const expected = await addressesVerifyingSignatures(db.pool, recipients);
      assert.deepEqual([...expected], ['verify@STADT.example', 'Verify@stadt.example']);
      assert.deepEqual(await lookup(recipients), expected);
      const read = statements();
      for (let i = 0; i < 5; i++) assert.deepEqual(await lookup(recipients), expected);
      assert.deepEqual(await lookup([]), new Set());
      assert.equal(statements(), read, 'no statement while nothing changed');

      // An operator enables verification for plain@: the next lookups after the notice say so.
      const before = changes.generation;
      await putAgencyAddress(db.pool, { agencyId, address: 'plain@stadt.example', verifySignatures: true });
      await until('the notice', () => changes.generation > before);
      assert.deepEqual([...(await lookup(['plain@stadt.example']))], ['plain@stadt.example']);
      // ... and a removal as well (a statement of its own kind: delete).
      const beforeDelete = changes.generation;
      await db.pool.query(`delete from agency_addresses where address = 'plain@stadt.example'`);
      await until('the notice', () => changes.generation > beforeDelete);
      assert.deepEqual([...(await lookup(['plain@stadt.example']))], []);
    } finally {
      await changes.close();
    }
  });

  it('asks the database every time while not listening', async () => {
    const notListening = { listening: false, generation: 1 };
    const { pool, statements } = counting(db.pool);
    const lookup = cachedAddressesVerifyingSignatures(pool, notListening);
    for (let i = 0; i < 3; i++)
      assert.deepEqual([...(await lookup(['verify@stadt.example']))], ['verify@stadt.example']);
    assert.equal(statements(), 3);
  });

  it('keeps nothing read while a change was heard, and asks every time when there are too many to keep', async () => {
    const changes = { listening: true, generation: 1 };
    const { pool, statements } = counting(db.pool);
    const racing = cachedAddressesVerifyingSignatures(
      Object.assign(Object.create(pool) as Pool, {
        query: (query: QueryConfig) => {
          changes.generation += 1; // a notice arrives while the snapshot is read
          return pool.query(query);
        },
      }),
      changes,
    );
    await racing(['verify@stadt.example']);
    await racing(['verify@stadt.example']);
    assert.equal(statements(), 2, 'the snapshot taken during a change is not kept');

    const { pool: counted, statements: asked } = counting(db.pool);
    const tooMany = cachedAddressesVerifyingSignatures(counted, { listening: true, generation: 7 }, 0);
    for (let i = 0; i < 2; i++)
      assert.deepEqual([...(await tooMany(['verify@stadt.example']))], ['verify@stadt.example']);
    assert.equal(asked(), 3, 'the snapshot (refused: over the limit), then one question per lookup');
  });
});
