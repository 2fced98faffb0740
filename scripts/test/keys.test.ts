// `./smgw keys rotate-master` as an operator runs it: everything sealed under the old master key (KEK files, mailbox
// key files, agency private keys, legacy mailbox data keys) opens under the new one afterwards and no longer under
// the old one; running it again changes nothing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createFolderKeyStore } from '@smgw/blob-store';
import { addAgencyKey, agencyKeyAad, createAgency, putAgencyAddress, sealedAgencyKeys } from '@smgw/key-directory';
import {
  createFolderMailboxKeyStore,
  ensureMailbox,
  findMailbox,
  findMailboxById,
  openMailboxKey,
} from '@smgw/mailbox-store';
import { isSealedUnder, openSecretWithAny, sealSecret } from '@smgw/secrets';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';

const CLI = fileURLToPath(new URL('../src/keys.ts', import.meta.url));
const ADDRESS = 'leitung@behoerde.example';
const LEGACY_ID = '00000000-0000-4000-8000-000000000001';

describe('smgw keys rotate-master', () => {
  let db: TestDatabase;
  const oldKey = () => db.keys.masterKey;
  const newKey = randomBytes(32);
  const privateKey = randomBytes(64);

  before(async () => {
    db = await createTestDatabase();
    const agency = await createAgency(db.pool, { name: 'Amt', domains: ['behoerde.example'], now: new Date() });
    assert.equal(agency.kind, 'created');
    const agencyId = agency.kind === 'created' ? agency.id : '';
    await putAgencyAddress(db.pool, { agencyId, address: ADDRESS, verifySignatures: false });
    await addAgencyKey(db.pool, {
      address: ADDRESS,
      kind: 'pgp',
      fingerprint: 'ab'.repeat(20),
      certificate: null,
      publicArmored: '-----BEGIN PGP PUBLIC KEY BLOCK-----',
      privateKeySealed: sealSecret(oldKey(), privateKey, { aad: agencyKeyAad(ADDRESS, 'ab'.repeat(20)) }),
      now: new Date(),
    });
    await ensureMailbox(db.pool, 'buerger@example.org', createFolderMailboxKeyStore(db.keys));
    // A mailbox from before the key store: its data key sealed under the master key itself.
    await db.pool.query('insert into mailboxes (id, address, data_key_sealed) values ($1, $2, $3)', [
      LEGACY_ID,
      'legacy@example.org',
      sealSecret(oldKey(), randomBytes(32), { aad: `smgw-mailbox-key\0${LEGACY_ID}` }),
    ]);
    await createFolderKeyStore({ keyStoreDir: db.keys.keyStoreDir, masterKey: oldKey() }).current();
  });
  after(() => db.drop());

  const rotate = () =>
    promisify(execFile)(process.execPath, [CLI, 'rotate-master'], {
      env: {
        PATH: process.env.PATH ?? '',
        ...db.env,
        SMGW_MASTER_KEY: newKey.toString('base64'),
        SMGW_MASTER_KEY_PREVIOUS: oldKey().toString('base64'),
      },
    });

  it('re-seals the KEK and mailbox key files, the agency private keys and legacy mailbox data keys', async () => {
    const { stderr } = await rotate();
    assert.match(stderr, /1 KEK file\(s\) re-sealed/);
    assert.match(stderr, /1 mailbox key file\(s\) re-sealed/);
    assert.match(stderr, /1 agency private key\(s\) re-sealed/);
    assert.match(stderr, /1 legacy mailbox data key\(s\) re-sealed/);

    const [agencyKey] = await sealedAgencyKeys(db.pool, [ADDRESS], 'pgp');
    assert.ok(agencyKey);
    assert.ok(isSealedUnder(newKey, agencyKey.sealedPrivateKey));
    const aad = agencyKeyAad(agencyKey.address, agencyKey.fingerprint);
    assert.deepEqual(openSecretWithAny([newKey], agencyKey.sealedPrivateKey, { aad }), privateKey);
    assert.throws(() => openSecretWithAny([oldKey()], agencyKey.sealedPrivateKey, { aad }), {
      code: 'SECRET_WRONG_MASTER_KEY',
    });

    const mailbox = await findMailbox(db.pool, 'buerger@example.org');
    assert.ok(mailbox);
    const keys = (masterKey: Buffer) => createFolderMailboxKeyStore({ keyStoreDir: db.keys.keyStoreDir, masterKey });
    assert.equal((await openMailboxKey(keys(newKey), mailbox)).length, 32);
    await assert.rejects(openMailboxKey(keys(oldKey()), mailbox), { code: 'MAILBOX_KEY_STORE_FAILED' });
    const legacy = await findMailboxById(db.pool, LEGACY_ID);
    assert.ok(legacy);
    assert.equal((await openMailboxKey(keys(newKey), legacy)).length, 32);
    await assert.rejects(openMailboxKey(keys(oldKey()), legacy), { code: 'MAILBOX_KEY_GONE' });

    const store = createFolderKeyStore({ keyStoreDir: db.keys.keyStoreDir, masterKey: newKey });
    assert.equal((await store.list()).length, 1);
  });

  it('changes nothing when run again (after an interruption, say)', async () => {
    const { stderr } = await rotate();
    assert.match(stderr, /0 agency private key\(s\) re-sealed under the new master key, 1 already were/);
    assert.match(stderr, /0 mailbox key file\(s\) re-sealed under the new master key, 1 already were/);
    assert.match(stderr, /0 legacy mailbox data key\(s\) re-sealed under the new master key, 1 already were/);
  });
});
