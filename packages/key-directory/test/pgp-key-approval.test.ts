// Approving an OpenPGP key names the addresses it is approved for, and an address keeps its approved key until an
// operator names that address in approving another: a key whose user IDs name someone else is not used for them
// because its holder was checked, and a newer approved key does not silently displace an older one.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { addPgpKey, approvePgpKey, getPgpKey, pgpKeysFor, rejectPgpKey } from '../src/pgp-keys.ts';

const CITIZEN = 'buergerin@post.example';
const STRANGER = 'fremder@extern.example';
/** The citizen's key, approved long ago. */
const OLD = 'A'.repeat(40);
/** A newer key naming the stranger and the citizen (a stranger's key, or the citizen's new one: the operator knows). */
const NEW = 'B'.repeat(40);

describe('approving an OpenPGP key for named addresses', () => {
  let db: TestDatabase;
  const approve = (fingerprint: string, addresses?: string[]) =>
    approvePgpKey(db.pool, { fingerprint, addresses, operator: 'ops', at: new Date() });
  const usedFor = async (address: string) => {
    const [first] = await pgpKeysFor(db.pool, address);
    return first?.state === 'approved' ? first.fingerprint : undefined;
  };

  before(async () => {
    db = await createTestDatabase();
  });
  beforeEach(async () => {
    await db.pool.query('delete from pgp_keys');
    const key = { armored: 'not read here', algorithm: 'eddsaLegacy', expiresAt: null, source: 'imported' } as const;
    await addPgpKey(db.pool, { ...key, fingerprint: OLD, addresses: [CITIZEN] });
    assert.equal((await approve(OLD)).ok, true);
    await db.pool.query(`update pgp_keys set created_at = now() - interval '30 days' where fingerprint = $1`, [OLD]);
    await addPgpKey(db.pool, { ...key, fingerprint: NEW, addresses: [STRANGER, CITIZEN] });
  });
  after(async () => {
    await db?.drop();
  });

  it('approves a key for every address it holds when no address is named and none has another approved key', async () => {
    await rejectPgpKey(db.pool, { fingerprint: OLD, operator: 'ops', at: new Date() });
    const approval = await approve(NEW);
    assert.ok(approval.ok);
    assert.deepEqual(approval.key.approvedAddresses, [STRANGER, CITIZEN]);
    assert.deepEqual(approval.replaced, []);
    assert.equal(await usedFor(CITIZEN), NEW);
  });

  it('refuses, changing nothing, to approve a key for an address that has another approved key without naming it', async () => {
    const approval = await approve(NEW);
    assert.equal(approval.ok, false);
    assert.equal(!approval.ok && approval.code, 'PGP_KEY_ADDRESS_HAS_APPROVED_KEY');
    assert.deepEqual(!approval.ok && approval.code === 'PGP_KEY_ADDRESS_HAS_APPROVED_KEY' && approval.approved, [
      { address: CITIZEN, fingerprint: OLD },
    ]);
    assert.equal((await getPgpKey(db.pool, NEW))?.state, 'pending');
    assert.equal(await usedFor(CITIZEN), OLD);
  });

  it("uses a key approved for its holder's address for no other address it names", async () => {
    const approval = await approve(NEW, [STRANGER]);
    assert.ok(approval.ok);
    assert.deepEqual(approval.key.approvedAddresses, [STRANGER]);
    assert.equal(await usedFor(STRANGER), NEW);
    assert.equal(await usedFor(CITIZEN), OLD, "the citizen's mail is not encrypted to the stranger's key");
    // Even with the citizen's own key gone, the stranger's key is only pending for the citizen.
    await rejectPgpKey(db.pool, { fingerprint: OLD, operator: 'ops', at: new Date() });
    assert.deepEqual(
      (await pgpKeysFor(db.pool, CITIZEN)).map((k) => [k.fingerprint, k.state]),
      [
        [NEW, 'pending'],
        [OLD, 'rejected'],
      ],
    );
  });

  it('moves an address to the new key when the approval names it, and says which key it replaced', async () => {
    const approval = await approve(NEW, [CITIZEN.toUpperCase()]);
    assert.ok(approval.ok);
    assert.deepEqual(approval.key.approvedAddresses, [CITIZEN]);
    assert.deepEqual(approval.replaced, [{ address: CITIZEN, fingerprint: OLD }]);
    assert.equal(await usedFor(CITIZEN), NEW);
    assert.deepEqual((await getPgpKey(db.pool, OLD))?.approvedAddresses, []);
    // Approving it later for the stranger too adds that address; the citizen's stays.
    const more = await approve(NEW, [STRANGER]);
    assert.deepEqual(more.ok && more.key.approvedAddresses, [STRANGER, CITIZEN]);
  });

  it('refuses an address the key is not stored for', async () => {
    const approval = await approve(NEW, ['dritte@post.example']);
    assert.equal(!approval.ok && approval.code, 'PGP_KEY_ADDRESS_NOT_IN_KEY');
    assert.equal((await getPgpKey(db.pool, NEW))?.state, 'pending');
  });

  it('lets one of two keys approved at once for the same free address have it', async () => {
    await rejectPgpKey(db.pool, { fingerprint: OLD, operator: 'ops', at: new Date() });
    const third = 'C'.repeat(40);
    const key = { armored: 'x', algorithm: 'eddsaLegacy', expiresAt: null, source: 'harvested' } as const;
    await addPgpKey(db.pool, { ...key, fingerprint: third, addresses: [CITIZEN] });
    const results = await Promise.all([approve(NEW), approve(third)]);
    assert.deepEqual(results.map((r) => r.ok).sort(), [false, true]);
    const { rows } = await db.pool.query(
      'select count(*)::int as n from pgp_keys where approved_addresses @> array[$1::text]',
      [CITIZEN],
    );
    assert.equal(rows[0].n, 1);
  });

  it('approves a key from mail or the portal that names several addresses only for the addresses named', async () => {
    // Stored for every address of its user IDs by the harvest before 019 (migration 023 made it pending again).
    await rejectPgpKey(db.pool, { fingerprint: OLD, operator: 'ops', at: new Date() });
    for (const source of ['harvested', 'portal'] as const) {
      await db.pool.query('update pgp_keys set source = $2 where fingerprint = $1', [NEW, source]);
      const unnamed = await approve(NEW);
      assert.equal(!unnamed.ok && unnamed.code, 'PGP_KEY_ADDRESSES_REQUIRED', source);
      assert.equal((await getPgpKey(db.pool, NEW))?.state, 'pending');
      assert.equal(await usedFor(CITIZEN), undefined, "the stranger's key is not used for the citizen");
    }
    const named = await approve(NEW, [STRANGER]);
    assert.deepEqual(named.ok && named.key.approvedAddresses, [STRANGER]);
    assert.equal(await usedFor(CITIZEN), undefined);
    // One address: nothing to choose, an approval without addresses is for it.
    const single = 'D'.repeat(40);
    const key = { armored: 'x', algorithm: 'eddsaLegacy', expiresAt: null, source: 'harvested' } as const;
    await addPgpKey(db.pool, { ...key, fingerprint: single, addresses: [CITIZEN] });
    const approval = await approve(single);
    assert.deepEqual(approval.ok && approval.key.approvedAddresses, [CITIZEN]);
  });

  it('uses a rejected key for no address', async () => {
    const rejected = await rejectPgpKey(db.pool, { fingerprint: OLD, operator: 'ops', at: new Date() });
    assert.deepEqual(rejected?.approvedAddresses, []);
    assert.equal(await usedFor(CITIZEN), undefined);
  });
});
