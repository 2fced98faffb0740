// Migration 013's account functions against the real PostgreSQL: re-activation kills every earlier link and PIN,
// wrong PINs are limited per token even when guessed in parallel, a link works once, the trash gives bytes back,
// and deleting a mailbox leaves nothing of it but its audit trail, not even the keys its owner uploaded.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { withTransaction } from '@smgw/db';
import { addPgpKey, listPgpKeys } from '@smgw/key-directory';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import {
  checkTokenPin,
  createFolderMailboxKeyStore,
  deleteMailbox,
  deleteTrashedMessages,
  ensureActivationToken,
  ensureMailbox,
  findMailbox,
  findMailboxMessage,
  findTokenByLink,
  insertMailboxMessage,
  listMailboxAudit,
  listMailboxMessages,
  type MailboxKeyStore,
  openMailboxKey,
  recordMailboxAudit,
  replaceActivationToken,
  restoreMailboxMessage,
  setMailboxLocked,
  setMailboxPassword,
  trashMailboxMessage,
  useToken,
} from '../src/index.ts';

const HOUR = 3_600_000;

describe('portal accounts in the mailbox store', () => {
  let db: TestDatabase;
  let keys: MailboxKeyStore;
  before(async () => {
    db = await createTestDatabase();
    keys = createFolderMailboxKeyStore(db.keys);
  });
  after(async () => {
    await db?.drop();
  });

  const tokenInput = async (address: string, now = new Date()) => {
    const { mailbox } = await ensureMailbox(db.pool, address, keys);
    return { mailbox, keys, now, lifetimeMs: 24 * HOUR, pinDelayMs: HOUR };
  };

  it('re-activation revokes every earlier link and PIN at once and makes a working new one', async () => {
    const input = await tokenInput('re@portal.example');
    const first = await ensureActivationToken(db.pool, input);
    const second = await withTransaction(db.pool, (client) =>
      replaceActivationToken(client, { ...input, purpose: 'reactivation' }),
    );
    assert.notEqual(second.secrets.link, first.secrets.link);
    assert.equal((await findTokenByLink(db.pool, first.secrets.link, new Date())).kind, 'dead');
    assert.equal(await checkTokenPin(db.pool, first.token.id, first.secrets.pin, 5, new Date()), 'dead');
    const live = await findTokenByLink(db.pool, second.secrets.link, new Date());
    assert.equal(live.kind, 'live');
    assert.equal(live.kind === 'live' && live.token.purpose, 'reactivation');
    assert.equal(await checkTokenPin(db.pool, second.token.id, second.secrets.pin, 5, new Date()), 'right');
  });

  it('an unknown or malformed link finds nothing', async () => {
    assert.equal((await findTokenByLink(db.pool, 'x'.repeat(43), new Date())).kind, 'unknown');
    assert.equal((await findTokenByLink(db.pool, "'; drop table mailboxes; --", new Date())).kind, 'unknown');
  });

  it('kills the link after the limit of wrong PINs, also when they come in parallel', async () => {
    const input = await tokenInput('guess@portal.example');
    const { token, secrets } = await ensureActivationToken(db.pool, input);
    const wrong = secrets.pin === '00000000' ? '00000001' : '00000000';
    const results = await Promise.all(
      Array.from({ length: 8 }, () => checkTokenPin(db.pool, token.id, wrong, 5, new Date())),
    );
    assert.equal(results.filter((r) => r === 'wrong').length, 5);
    assert.equal(results.filter((r) => r === 'dead').length, 3);
    // The right PIN no longer helps: a new link must be requested.
    assert.equal(await checkTokenPin(db.pool, token.id, secrets.pin, 5, new Date()), 'dead');
    assert.equal((await findTokenByLink(db.pool, secrets.link, new Date())).kind, 'dead');
  });

  it('a link works once and not after it expired', async () => {
    const now = new Date();
    const input = await tokenInput('once@portal.example', now);
    const { token, secrets } = await ensureActivationToken(db.pool, input);
    assert.equal(await useToken(db.pool, token.id, now), true);
    assert.equal(await useToken(db.pool, token.id, now), false);
    assert.equal((await findTokenByLink(db.pool, secrets.link, now)).kind, 'dead');

    const later = await tokenInput('late@portal.example', now);
    const made = await ensureActivationToken(db.pool, later);
    const afterExpiry = new Date(now.getTime() + 25 * HOUR);
    assert.equal((await findTokenByLink(db.pool, made.secrets.link, afterExpiry)).kind, 'dead');
    assert.equal(await checkTokenPin(db.pool, made.token.id, made.secrets.pin, 5, afterExpiry), 'dead');
    assert.equal(await useToken(db.pool, made.token.id, afterExpiry), false);
  });

  it('a password activates the mailbox; an operator lock survives a password and an unlock restores the state', async () => {
    const { mailbox } = await ensureMailbox(db.pool, 'lock@portal.example', keys);
    assert.equal(await setMailboxLocked(db.pool, mailbox.id, true, 'admin:test', new Date()), 'locked');
    assert.equal(await setMailboxLocked(db.pool, mailbox.id, false, 'admin:test', new Date()), 'passive');
    await setMailboxPassword(db.pool, mailbox.id, '$argon2id$fake', new Date());
    const active = await findMailbox(db.pool, mailbox.address);
    assert.equal(active?.state, 'active');
    assert.equal(active?.hasPassword, true);
    await setMailboxLocked(db.pool, mailbox.id, true, 'admin:test', new Date());
    await setMailboxPassword(db.pool, mailbox.id, '$argon2id$other', new Date());
    assert.equal((await findMailbox(db.pool, mailbox.address))?.state, 'locked');
    assert.equal(await setMailboxLocked(db.pool, mailbox.id, false, 'admin:test', new Date()), 'active');
    assert.equal(await setMailboxLocked(db.pool, 'no-such-id', true, 'admin:test', new Date()), undefined);
  });

  it('trash keeps the bytes counted until it is emptied; restore puts a message back where it was', async () => {
    const { mailbox } = await ensureMailbox(db.pool, 'trash@portal.example', keys);
    const dataKey = await openMailboxKey(keys, mailbox);
    const summary = {
      from: 'Amt <a@behoerde.example>',
      to: mailbox.address,
      subject: 'Bescheid',
      date: null,
      attachments: 1,
    };
    const ids = await withTransaction(db.pool, async (client) => {
      const made: string[] = [];
      for (const [i, folder] of (['inbox', 'sent', 'inbox'] as const).entries()) {
        const id = await insertMailboxMessage(client, {
          mailboxId: mailbox.id,
          dataKey,
          folder,
          messageId: `m${i}-trash`,
          recipient: mailbox.address,
          raw: Buffer.alloc(1000 * (i + 1)),
          receivedAt: new Date(),
          summary,
        });
        made.push(id as string);
      }
      return made;
    });
    const [inboxOne, sentOne, inboxTwo] = ids as [string, string, string];
    assert.deepEqual((await findMailboxMessage(db.pool, mailbox.id, inboxOne, dataKey))?.summary, summary);
    assert.equal(await trashMailboxMessage(db.pool, mailbox.id, inboxOne), true);
    assert.equal(await trashMailboxMessage(db.pool, mailbox.id, sentOne), true);
    assert.equal(await trashMailboxMessage(db.pool, mailbox.id, inboxOne), false);
    assert.equal((await findMailbox(db.pool, mailbox.address))?.usageBytes, 6000);
    assert.equal(await restoreMailboxMessage(db.pool, mailbox.id, sentOne), true);
    assert.deepEqual(
      (await listMailboxMessages(db.pool, mailbox.id, 'sent')).map((m) => m.id),
      [sentOne],
    );
    // Deleting for good only works on trashed messages; another mailbox's ids do nothing.
    const other = await ensureMailbox(db.pool, 'other@portal.example', keys);
    assert.equal(await trashMailboxMessage(db.pool, other.mailbox.id, inboxTwo), false);
    const gone = await withTransaction(db.pool, (client) => deleteTrashedMessages(client, mailbox.id, [inboxTwo]));
    assert.deepEqual(gone, { messages: 0, bytes: 0 });
    const emptied = await withTransaction(db.pool, (client) => deleteTrashedMessages(client, mailbox.id));
    assert.deepEqual(emptied, { messages: 1, bytes: 1000 });
    assert.equal((await findMailbox(db.pool, mailbox.address))?.usageBytes, 5000);
  });

  it('deleting a mailbox removes its messages and tokens and keeps the audit trail', async () => {
    const input = await tokenInput('gone@portal.example');
    await ensureActivationToken(db.pool, input);
    const dataKey = await openMailboxKey(keys, input.mailbox);
    await withTransaction(db.pool, (client) =>
      insertMailboxMessage(client, {
        mailboxId: input.mailbox.id,
        dataKey,
        folder: 'inbox',
        messageId: 'gone-1',
        recipient: input.mailbox.address,
        raw: Buffer.from('Subject: x\r\n\r\nhello\r\n'),
        receivedAt: new Date(),
      }),
    );
    await recordMailboxAudit(db.pool, {
      mailboxId: input.mailbox.id,
      address: input.mailbox.address,
      event: 'mailbox.deleted',
      actor: 'admin:test',
      at: new Date(),
    });
    assert.deepEqual(await withTransaction(db.pool, (c) => deleteMailbox(c, input.mailbox.id)), {
      address: 'gone@portal.example',
      messages: 1,
      bytes: Buffer.byteLength('Subject: x\r\n\r\nhello\r\n'),
      certificates: [],
      pgpKeys: [],
    });
    for (const table of ['mailbox_messages', 'mailbox_tokens']) {
      const left = await db.pool.query(`select count(*)::int as n from ${table} where mailbox_id = $1`, [
        input.mailbox.id,
      ]);
      assert.equal(left.rows[0].n, 0, table);
    }
    assert.equal(await withTransaction(db.pool, (c) => deleteMailbox(c, input.mailbox.id)), undefined);
    assert.deepEqual(
      (await listMailboxAudit(db.pool, 'gone@portal.example')).map((e) => e.event),
      ['mailbox.deleted'],
    );
  });

  it('deletes the OpenPGP key uploaded for the mailbox in its transaction: rolled back, both stay', async () => {
    const { mailbox } = await ensureMailbox(db.pool, 'mitschluessel@portal.example', keys);
    const fingerprint = 'C'.repeat(40);
    const key = { armored: 'not read here', algorithm: 'eddsaLegacy', expiresAt: null } as const;
    await addPgpKey(db.pool, { ...key, fingerprint, addresses: [mailbox.address], source: 'portal' });
    await addPgpKey(db.pool, { ...key, fingerprint: 'D'.repeat(40), addresses: [mailbox.address], source: 'imported' });
    const failed = new Error('the audit could not be written');
    await assert.rejects(
      withTransaction(db.pool, async (client) => {
        assert.deepEqual((await deleteMailbox(client, mailbox.id))?.pgpKeys, [fingerprint]);
        throw failed;
      }),
      failed,
    );
    assert.ok(await findMailbox(db.pool, mailbox.address));
    assert.equal((await listPgpKeys(db.pool, { address: mailbox.address, limit: 10 })).length, 2);

    await withTransaction(db.pool, (client) => deleteMailbox(client, mailbox.id));
    assert.deepEqual(
      (await listPgpKeys(db.pool, { address: mailbox.address, limit: 10 })).map((k) => k.source),
      ['imported'],
    );
  });
});
