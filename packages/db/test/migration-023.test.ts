// Migration 023 on a deployment upgraded from before 019: an approved OpenPGP key that no operator imported and that
// holds several addresses (harvested when harvesting stored every address of a key's user IDs) loses its approval for
// all of them and is pending again; an operator's imported key and a key of one address keep theirs. The schema is
// built up to 018 as such a deployment had it, the keys stored and approved, then the rest applied.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createPool, migrate, type Pool } from '../src/index.ts';

const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/smgw';

const CITIZEN = 'buergerin@post.example';
const STRANGER = 'fremder@extern.example';

describe('migration 023: OpenPGP key approvals in doubt', () => {
  const schema = `t_m023_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  let pool: Pool;

  before(() => {
    pool = createPool({ url, schema, max: 2, applicationName: 'smgw-db-test-migration' });
  });
  after(async () => {
    await pool.query(`drop schema if exists ${schema} cascade`).catch(() => {});
    await pool.end();
  });

  const fingerprint = (c: string) => c.repeat(40);
  /** A key as stored and approved by an operator before 019 (no approved_addresses column yet). */
  async function keyBefore019(fp: string, addresses: string[], source: string, state: string) {
    await pool.query(
      `insert into pgp_keys (fingerprint, armored, addresses, algorithm, state, source, state_changed_by,
         state_changed_at, created_at)
       values ($1, 'not read here', $2, 'eddsaLegacy', $3, $4, $5, $6, now() - interval '60 days')`,
      [fp, addresses, state, source, state === 'pending' ? null : 'ops', state === 'pending' ? null : new Date()],
    );
  }
  const row = async (fp: string) =>
    (await pool.query('select state, approved_addresses, state_changed_by from pgp_keys where fingerprint = $1', [fp]))
      .rows[0];

  it("withdraws the approval of a harvested key naming several addresses, and keeps an operator's imported key", async () => {
    await migrate(pool, { schema, through: '018_sent_copy_reservations_index.sql' });
    const applied = await pool.query('select name from schema_migrations order by name desc limit 1');
    assert.equal(applied.rows[0].name, '018_sent_copy_reservations_index.sql');

    const stranger = fingerprint('A'); // a stranger's key whose user IDs also name the citizen
    const imported = fingerprint('B'); // an operator imported it, naming two addresses
    const single = fingerprint('C'); // harvested, one address
    const portal = fingerprint('D'); // a portal upload: the mailbox's address alone
    const pending = fingerprint('E');
    const rejected = fingerprint('F');
    await keyBefore019(stranger, [STRANGER, CITIZEN], 'harvested', 'approved');
    await keyBefore019(imported, ['bob@example.org', 'dora@example.org'], 'imported', 'approved');
    await keyBefore019(single, ['einzeln@post.example'], 'harvested', 'approved');
    await keyBefore019(portal, ['portal@post.example'], 'portal', 'approved');
    await keyBefore019(pending, ['a@post.example', 'b@post.example'], 'harvested', 'pending');
    await keyBefore019(rejected, ['c@post.example', 'd@post.example'], 'harvested', 'rejected');

    // After 019, an operator approved another old harvested key for one of its addresses (naming it): 023 cannot tell
    // that from an approval 019 copied, nor which of its addresses sent it.
    await migrate(pool, { schema, through: '022_retired_keks.sql' });
    assert.deepEqual((await row(stranger)).approved_addresses, [STRANGER, CITIZEN], '019 kept every address');
    const named = fingerprint('1');
    await pool.query(
      `insert into pgp_keys (fingerprint, armored, addresses, algorithm, state, approved_addresses, source,
         state_changed_by, state_changed_at)
       values ($1, 'not read here', $2, 'eddsaLegacy', 'approved', $3, 'harvested', 'ops', now())`,
      [named, ['x@extern.example', 'y@post.example'], ['x@extern.example']],
    );

    const rest = await migrate(pool, { schema });
    assert.ok(rest.applied.includes('023_pgp_key_approvals_in_doubt.sql'), rest.applied.join(', '));

    for (const fp of [stranger, named]) {
      assert.deepEqual(await row(fp), { state: 'pending', approved_addresses: [], state_changed_by: 'migration 023' });
    }
    const approvedForCitizen = await pool.query('select 1 from pgp_keys where approved_addresses @> array[$1]', [
      CITIZEN,
    ]);
    assert.equal(approvedForCitizen.rowCount, 0, "the citizen's mail is no longer encrypted to the stranger's key");
    assert.deepEqual(await row(imported), {
      state: 'approved',
      approved_addresses: ['bob@example.org', 'dora@example.org'],
      state_changed_by: 'ops',
    });
    assert.deepEqual(await row(single), {
      state: 'approved',
      approved_addresses: ['einzeln@post.example'],
      state_changed_by: 'ops',
    });
    assert.deepEqual(await row(portal), {
      state: 'approved',
      approved_addresses: ['portal@post.example'],
      state_changed_by: 'ops',
    });
    assert.deepEqual(await row(pending), { state: 'pending', approved_addresses: [], state_changed_by: null });
    assert.deepEqual(await row(rejected), { state: 'rejected', approved_addresses: [], state_changed_by: 'ops' });
  });
});
