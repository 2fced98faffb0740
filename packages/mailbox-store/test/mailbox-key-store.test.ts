// The mailboxes' own keys in the key store: a legacy mailbox (data key under the master key) keeps opening and is
// moved to the key store without losing a byte; a key whose mailbox is gone is destroyed after its grace, never one
// of a live mailbox; ids that are not mailbox ids never become paths.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { withTransaction } from '@smgw/db';
import { isSealedUnder, sealSecret } from '@smgw/secrets';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import {
  collectOrphanMailboxKeys,
  createFolderMailboxKeyStore,
  deleteMailbox,
  ensureMailbox,
  findMailboxById,
  insertMailboxMessage,
  type MailboxKeyStore,
  moveMailboxKeysToKeyStore,
  openMailboxKey,
  readMailboxMessage,
  rotateMailboxKeyFiles,
} from '../src/index.ts';

describe('mailbox keys in the key store', () => {
  let db: TestDatabase;
  let keys: MailboxKeyStore;
  before(async () => {
    db = await createTestDatabase();
    keys = createFolderMailboxKeyStore(db.keys);
  });
  after(() => db.drop());

  it('opens a legacy mailbox with the master key and moves it to the key store, its messages intact', async () => {
    const id = randomUUID();
    const dataKey = randomBytes(32);
    await db.pool.query('insert into mailboxes (id, address, data_key_sealed) values ($1, $2, $3)', [
      id,
      'alt@buerger.example',
      sealSecret(db.keys.masterKey, dataKey, { aad: `smgw-mailbox-key\0${id}` }),
    ]);
    const legacy = await findMailboxById(db.pool, id);
    assert.ok(legacy);
    assert.deepEqual(await openMailboxKey(keys, legacy), dataKey);
    const rowId = await withTransaction(db.pool, (client) =>
      insertMailboxMessage(client, {
        mailboxId: id,
        dataKey,
        folder: 'inbox',
        messageId: 'm1',
        recipient: legacy.address,
        raw: Buffer.from('hello'),
        receivedAt: new Date(),
      }),
    );
    assert.equal(await moveMailboxKeysToKeyStore(db.pool, keys, 10), 1);
    assert.equal(await moveMailboxKeysToKeyStore(db.pool, keys, 10), 0, 'once');
    const moved = await findMailboxById(db.pool, id);
    assert.ok(moved);
    assert.equal(isSealedUnder(db.keys.masterKey, moved.dataKeySealed), false, 'no longer under the master key');
    const opened = await openMailboxKey(keys, moved);
    assert.deepEqual(opened, dataKey);
    assert.equal((await readMailboxMessage(db.pool, id, opened, rowId ?? ''))?.toString(), 'hello');
  });

  it('destroys keys whose mailbox is gone once their grace is over, never a live one', async () => {
    const live = await ensureMailbox(db.pool, 'lebt@buerger.example', keys);
    const gone = await ensureMailbox(db.pool, 'weg@buerger.example', keys);
    await withTransaction(db.pool, (c) => deleteMailbox(c, gone.mailbox.id)); // and "crashed" before destroying its key
    assert.equal(await collectOrphanMailboxKeys(db.pool, keys, new Date(), 60 * 60_000), 0, 'within the grace');
    const later = new Date(Date.now() + 2 * 60 * 60_000);
    assert.equal(await collectOrphanMailboxKeys(db.pool, keys, later, 60 * 60_000), 1);
    assert.equal(await keys.get(gone.mailbox.id), undefined);
    assert.equal((await openMailboxKey(keys, live.mailbox)).length, 32);
    await assert.rejects(openMailboxKey(keys, gone.mailbox), { code: 'MAILBOX_KEY_GONE' });
  });

  it('never turns something other than a mailbox id into a path', async () => {
    await assert.rejects(keys.get('../../etc/passwd'), RangeError);
    await assert.rejects(keys.destroy('../x'), RangeError);
  });
});

// Crypto-shredding during a master key rotation: the rotation reads a mailbox's key file, re-seals it and renames the
// copy over the file. A deletion that removed the mailbox (its rows, then its key file) in between would see the key
// come back under the new master key, and the deleted mailbox readable again from a dump. The rotation's seam
// `beforeWrite` runs the deletion in exactly that window.
describe('a master key rotation racing a mailbox deletion', () => {
  let db: TestDatabase;
  const newKey = randomBytes(32);
  /** The services during the rotation: the new master key, and the old one as previous. */
  const servicesKeys = () =>
    createFolderMailboxKeyStore({ ...db.keys, masterKey: newKey, masterKeyPrevious: db.keys.masterKey });
  const keyFiles = async () =>
    (await readdir(`${db.keys.keyStoreDir}/mailboxes`)).filter((name) => name.endsWith('.key')).sort();
  const rotate = (beforeWrite: (mailboxId: string) => Promise<void>) =>
    rotateMailboxKeyFiles({
      pool: db.pool,
      keyStoreDir: db.keys.keyStoreDir,
      from: db.keys.masterKey,
      to: newKey,
      beforeWrite,
    });

  before(async () => {
    db = await createTestDatabase();
  });
  after(() => db.drop());

  it('does not bring back the key of a mailbox deleted between its read and its re-sealed write', async () => {
    const oldKeys = createFolderMailboxKeyStore(db.keys);
    const kept = await ensureMailbox(db.pool, 'bleibt@buerger.example', oldKeys);
    const doomed = await ensureMailbox(db.pool, 'geht@buerger.example', oldKeys);
    let deleted = false;

    const result = await rotate(async (mailboxId) => {
      if (mailboxId !== doomed.mailbox.id) return;
      // As the portal, the admin API and the reaper delete: the rows committed, then the key file.
      deleted = Boolean(await withTransaction(db.pool, (c) => deleteMailbox(c, mailboxId)));
      await servicesKeys().destroy(mailboxId);
    });

    assert.ok(deleted);
    assert.deepEqual(await keyFiles(), [`${kept.mailbox.id}.key`], 'the deleted mailbox key stays gone');
    assert.equal(await servicesKeys().get(doomed.mailbox.id), undefined);
    assert.deepEqual(result, { resealed: 1, alreadyCurrent: 0, withoutMailbox: 0, deletedMeanwhile: 1 });
    await assert.rejects(openMailboxKey(servicesKeys(), doomed.mailbox), { code: 'MAILBOX_KEY_GONE' });
    const newOnly = createFolderMailboxKeyStore({ ...db.keys, masterKey: newKey });
    assert.equal((await openMailboxKey(newOnly, kept.mailbox)).length, 32);
  });

  it('removes the re-sealed key when the deletion committed in between and unlinks only afterwards', async () => {
    const doomed = await ensureMailbox(db.pool, 'spaet@buerger.example', createFolderMailboxKeyStore(db.keys));
    const result = await rotate(async (mailboxId) => {
      if (mailboxId === doomed.mailbox.id) await withTransaction(db.pool, (c) => deleteMailbox(c, mailboxId));
    });
    assert.equal(await servicesKeys().get(doomed.mailbox.id), undefined, 'gone before the deletion unlinks');
    assert.equal(result.deletedMeanwhile, 1);
    await servicesKeys().destroy(doomed.mailbox.id); // the deletion's own unlink: no file, no error
  });

  it('leaves a key file without a mailbox row as it is: a mailbox being made must not lose its key', async () => {
    const mailboxId = randomUUID();
    const key = await createFolderMailboxKeyStore(db.keys).create(mailboxId); // the row is still to be inserted
    const result = await rotate(async () => {});
    const oldOnly = createFolderMailboxKeyStore(db.keys);
    assert.deepEqual(await oldOnly.get(mailboxId), key, 'still there, still under the old key');
    assert.equal(result.withoutMailbox, 1);
  });
});
