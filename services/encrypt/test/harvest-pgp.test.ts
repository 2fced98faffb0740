// Harvesting OpenPGP keys from inbound mail: a key is stored (pending) for the address that offered it, only when one
// of its valid user IDs names that address, and one key costs the encrypt worker little, whatever a stranger puts in.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRevocationFetcher, HARVESTED_KEY_LIMITS } from '@smgw/crypto';
import { approvePgpKey } from '@smgw/key-directory';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { chooseForm } from '../src/choose-form.ts';
import { harvestPgpKeys } from '../src/harvest-pgp-keys.ts';
import { lookUpRecipientKeys } from '../src/outbound-keys.ts';
import { createGpgHome, type GpgHome, insertPgpKey } from './fixtures.ts';

const noFetch = createRevocationFetcher({ now: () => new Date() });

const STRANGER = 'fremder@extern.example';
const VICTIM = 'buergerin@post.example';

function mailOffering(from: string, armored: string): Buffer {
  return Buffer.from(
    [
      `From: ${from}`,
      'To: poststelle@behoerde.example',
      'Subject: mein Schluessel',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain',
      '',
      'Bitte verschluesseln Sie an diesen Schluessel.',
      '--b',
      'Content-Type: application/pgp-keys; name="key.asc"',
      'Content-Disposition: attachment; filename="key.asc"',
      '',
      armored.trimEnd(),
      '--b--',
      '',
    ].join('\r\n'),
  );
}

describe('harvesting an OpenPGP key binds it to the address that offered it', () => {
  let db: TestDatabase;
  let gpg: GpgHome;
  /** The stranger's own address and, in a second user ID, the victim's. */
  let twoAddresses: { fingerprint: string; armored: string };
  /** The stranger's key whose user ID with the stranger's address is revoked; the victim's is still valid. */
  let revokedOwn: { fingerprint: string; armored: string };

  before(async () => {
    [db, gpg] = await Promise.all([createTestDatabase(), createGpgHome()]);
    const withVictim = async (fingerprint: string) => {
      const added = await gpg.gpg(['--quick-add-uid', fingerprint, `Buergerin <${VICTIM}>`]);
      assert.equal(added.code, 0, added.stderr);
    };
    const first = await gpg.generateKey(STRANGER);
    await withVictim(first);
    twoAddresses = { fingerprint: first, armored: await gpg.exportPublic(first) };
    const second = await gpg.generateKey(STRANGER);
    await withVictim(second);
    const revoked = await gpg.gpg(['--quick-revoke-uid', second, `${STRANGER} <${STRANGER}>`]);
    assert.equal(revoked.code, 0, revoked.stderr);
    revokedOwn = { fingerprint: second, armored: await gpg.exportPublic(second) };
  });
  after(async () => {
    await gpg?.close();
    await db?.drop();
  });

  const stored = async (fingerprint: string) =>
    (await db.pool.query('select addresses, state from pgp_keys where fingerprint = $1', [fingerprint])).rows;

  it("stores a key naming the sender and another address for the sender's address only", async () => {
    const harvested = await harvestPgpKeys(db.pool, mailOffering(STRANGER, twoAddresses.armored), STRANGER, new Date());
    assert.deepEqual(harvested, [{ fingerprint: twoAddresses.fingerprint, addresses: [STRANGER] }]);
    assert.deepEqual(await stored(twoAddresses.fingerprint), [{ addresses: [STRANGER], state: 'pending' }]);
  });

  it("keeps encrypting to the citizen's own approved key after the stranger's key is approved", async () => {
    const victimKey = await gpg.generateKey(VICTIM);
    const victimFingerprint = await insertPgpKey(db.pool, await gpg.exportPublic(victimKey), 'approved');
    // The operator checks the fingerprint with the sender (the stranger, whose key it is) and approves it.
    const approval = await approvePgpKey(db.pool, {
      fingerprint: twoAddresses.fingerprint,
      operator: 'ops',
      at: new Date(),
    });
    assert.deepEqual(approval.ok && approval.key.approvedAddresses, [STRANGER]);
    const formFor = async (address: string) =>
      chooseForm(
        await lookUpRecipientKeys(
          { pool: db.pool, trustAnchors: [], fetcher: noFetch, revocationMode: 'off', now: new Date() },
          address,
        ),
        false,
      );
    const victim = await formFor(VICTIM);
    assert.equal(victim.form === 'pgp' && victim.fingerprint, victimFingerprint);
    const stranger = await formFor(STRANGER);
    assert.equal(stranger.form === 'pgp' && stranger.fingerprint, twoAddresses.fingerprint);
  });

  it('stores nothing for a sender no valid user ID of the key names', async () => {
    const other = 'dritter@extern.example';
    assert.deepEqual(await harvestPgpKeys(db.pool, mailOffering(other, revokedOwn.armored), other, new Date()), []);
    // The sender's own user ID is revoked: the key no longer speaks for the sender.
    assert.deepEqual(
      await harvestPgpKeys(db.pool, mailOffering(STRANGER, revokedOwn.armored), STRANGER, new Date()),
      [],
    );
    assert.deepEqual(await stored(revokedOwn.fingerprint), []);
  });

  it('compares the sender address without regard to case, and stores it lower-case', async () => {
    await db.pool.query('delete from pgp_keys');
    const sender = 'Fremder@Extern.Example';
    const harvested = await harvestPgpKeys(db.pool, mailOffering(sender, twoAddresses.armored), sender, new Date());
    assert.deepEqual(harvested, [{ fingerprint: twoAddresses.fingerprint, addresses: [STRANGER] }]);
  });
});

describe('harvesting an OpenPGP key has a bounded cost', () => {
  let db: TestDatabase;
  let gpg: GpgHome;

  before(async () => {
    [db, gpg] = await Promise.all([createTestDatabase(), createGpgHome()]);
  });
  after(async () => {
    await gpg?.close();
    await db?.drop();
  });

  // Every user ID's self-signature is verified, several times over, on the event loop: a stranger's key with 6,000 of
  // them took 4 s (@smgw/crypto's openpgp-find-keys-bounds.test.ts has that key). The limit is checked before.
  it(`does not store a key with more than ${HARVESTED_KEY_LIMITS.userIds} user IDs, even one naming the sender`, async () => {
    const sender = 'viele@extern.example';
    const fingerprint = await gpg.generateKey(sender);
    for (let i = 1; i <= HARVESTED_KEY_LIMITS.userIds; i++) {
      const added = await gpg.gpg(['--quick-add-uid', fingerprint, `n${i} <u${i}@viele.example>`]);
      assert.equal(added.code, 0, added.stderr);
    }
    const message = mailOffering(sender, await gpg.exportPublic(fingerprint));
    assert.deepEqual(await harvestPgpKeys(db.pool, message, sender, new Date()), []);
    const { rows } = await db.pool.query('select 1 from pgp_keys where fingerprint = $1', [fingerprint]);
    assert.deepEqual(rows, []);
  });
});
