// The mailboxes' own keys in the key store: a legacy mailbox (data key under the master key) keeps opening and is
// moved to the key store without losing a byte; a key whose mailbox is gone is destroyed after its grace, never one
// of a live mailbox; ids that are not mailbox ids never become paths.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
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
