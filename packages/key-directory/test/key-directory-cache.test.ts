// What services keep in memory of the key directory (who verifies signatures for ingest; trust anchors and who
// signs for encrypt): against the real PostgreSQL, a change made through the key directory is seen once its notice
// arrives, nothing is trusted while the listener is not listening, and the lookups in between ask nothing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type ChangeListener, listenForChanges, type Pool, type QueryConfig } from '@smgw/db';
import { createTestDatabase, type TestDatabase, waitFor } from '@smgw/testing';
import {
  addressesVerifyingSignatures,
  addTrustAnchor,
  cachedAddressesVerifyingSignatures,
  cachedKeyDirectory,
  createAgency,
  KEY_DIRECTORY_CHANNEL,
  putAgencyAddress,
  setAgencySigning,
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

/** A listener for key directory changes, listening, for `work`; closed after it. */
async function whileListening(url: string, work: (changes: ChangeListener) => Promise<void>): Promise<void> {
  const changes = listenForChanges({ url, channel: KEY_DIRECTORY_CHANNEL });
  try {
    await waitFor('listening', () => changes.listening, { intervalMs: 20 });
    await work(changes);
  } finally {
    await changes.close();
  }
}

/** Makes `change` and waits until `changes` heard of it. */
async function heard(changes: ChangeListener, change: () => Promise<unknown>): Promise<void> {
  const before = changes.generation;
  await change();
  await waitFor('the notice', () => changes.generation > before, { intervalMs: 20 });
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
    await whileListening(db.url, async (changes) => {
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
      await heard(changes, () =>
        putAgencyAddress(db.pool, { agencyId, address: 'plain@stadt.example', verifySignatures: true }),
      );
      assert.deepEqual([...(await lookup(['plain@stadt.example']))], ['plain@stadt.example']);
      // ... and a removal as well (a statement of its own kind: delete).
      await heard(changes, () => db.pool.query(`delete from agency_addresses where address = 'plain@stadt.example'`));
      assert.deepEqual([...(await lookup(['plain@stadt.example']))], []);
    });
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

  it('keeps the trust anchors and who signs, and sees an anchor added or removed and signing turned on', async () => {
    await whileListening(db.url, async (changes) => {
      const { pool, statements } = counting(db.pool);
      const directory = cachedKeyDirectory(pool, changes);
      assert.deepEqual(await directory.trustAnchorCertificates(), []);
      assert.deepEqual(await directory.agencySigningFor('a@Stadt.Example'), { agencyId, signOutbound: false });
      assert.equal(await directory.agencySigningFor('a@elsewhere.example'), undefined);
      const read = statements();
      for (let i = 0; i < 3; i++) {
        await directory.trustAnchorCertificates();
        await directory.agencySigningFor('a@stadt.example');
      }
      assert.equal(statements(), read, 'no statement while nothing changed');

      const der = Buffer.from('not really a certificate');
      const anchor = {
        fingerprint: 'ab'.repeat(32),
        subject: 'CN=Test Root',
        der,
        notBefore: new Date('2026-01-01T00:00:00Z'),
        notAfter: new Date('2036-01-01T00:00:00Z'),
        addedBy: 'test',
      };
      await heard(changes, () => addTrustAnchor(db.pool, anchor));
      assert.deepEqual(await directory.trustAnchorCertificates(), [der]);
      // A caller changing its array changes nobody else's.
      (await directory.trustAnchorCertificates()).pop();
      assert.deepEqual(await directory.trustAnchorCertificates(), [der]);
      await heard(changes, () => db.pool.query('delete from trust_anchors'));
      assert.deepEqual(await directory.trustAnchorCertificates(), [], 'a removed anchor is no longer trusted');

      await heard(changes, () =>
        setAgencySigning(db.pool, { agencyId, signOutbound: true, operator: 'test', at: new Date() }),
      );
      assert.deepEqual(await directory.agencySigningFor('a@stadt.example'), { agencyId, signOutbound: true });
    });
    // Not listening: every call asks.
    const { pool, statements } = counting(db.pool);
    const directory = cachedKeyDirectory(pool, { listening: false, generation: 0 });
    await directory.trustAnchorCertificates();
    await directory.trustAnchorCertificates();
    await directory.agencySigningFor('a@stadt.example');
    assert.equal(statements(), 3);
  });
});
