// The portal's tables against the real PostgreSQL: one mailbox per address, messages stored once and encrypted under
// the mailbox's own key, a Sent copy's reserved usage given back once no copy will come (never below 0), one live
// activation token reused until it expires, no link or PIN in clear.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type PoolClient, withTransaction } from '@smgw/db';
import { verifyPassword } from '@smgw/submission-accounts';
import { createTestDatabase, dumpHolds, dumpTestSchema, type TestDatabase } from '@smgw/testing';
import {
  createFolderMailboxKeyStore,
  decryptMessage,
  deleteMailbox,
  ensureActivationToken,
  ensureMailbox,
  findMailbox,
  findMailboxById,
  insertMailboxMessage,
  linkHash,
  listActivationTokens,
  listMailboxMessages,
  lockDuePinMails,
  type Mailbox,
  type MailboxKeyStore,
  MailboxStoreError,
  markPinMailSent,
  normalizeMailboxAddress,
  openMailboxKey,
  readMailboxMessage,
  releaseMailboxUsage,
  reserveMailboxUsage,
  setMailboxPassword,
} from '../src/index.ts';

const DAY = 86_400_000;

describe('mailbox store', () => {
  let db: TestDatabase;
  let keys: MailboxKeyStore;
  before(async () => {
    db = await createTestDatabase();
    keys = createFolderMailboxKeyStore(db.keys);
  });
  after(async () => {
    await db?.drop();
  });

  const store = async (client: PoolClient, mailbox: Mailbox, messageId: string, raw: Buffer) =>
    insertMailboxMessage(client, {
      mailboxId: mailbox.id,
      dataKey: await openMailboxKey(keys, mailbox),
      folder: 'inbox',
      messageId,
      recipient: mailbox.address,
      raw,
      receivedAt: new Date(),
    });

  it('normalises addresses and refuses what is not one (also one with a line break or another control character)', () => {
    assert.equal(normalizeMailboxAddress(' Max.Muster@BÜRGER.example '), 'max.muster@xn--brger-kva.example');
    for (const bad of ['kein-at', 'a\r\nBcc: v@x.example@mail.example', 'a\u0000b@mail.example', '@mail.example']) {
      assert.throws(
        () => normalizeMailboxAddress(bad),
        (e: unknown) => e instanceof MailboxStoreError,
        JSON.stringify(bad),
      );
    }
  });

  it('creates one mailbox per address, passive, with its own sealed data key', async () => {
    const first = await ensureMailbox(db.pool, 'Buerger@mail.example', keys);
    const again = await ensureMailbox(db.pool, 'buerger@MAIL.example', keys);
    assert.equal(first.created, true);
    assert.equal(again.created, false);
    assert.equal(again.mailbox.id, first.mailbox.id);
    assert.equal(first.mailbox.state, 'passive');
    assert.equal((await openMailboxKey(keys, first.mailbox)).length, 32);
    const otherMasterKey = createFolderMailboxKeyStore({
      keyStoreDir: db.keys.keyStoreDir,
      masterKey: randomBytes(32),
    });
    await assert.rejects(openMailboxKey(otherMasterKey, first.mailbox), { code: 'MAILBOX_KEY_STORE_FAILED' });
  });

  it('stores a message once, encrypted and bound to its row, and counts its size once', async () => {
    const { mailbox } = await ensureMailbox(db.pool, 'buerger@mail.example', keys);
    const raw = Buffer.from('Subject: Bescheid\r\n\r\nGEHEIM-123\r\n');
    const rowId = await withTransaction(db.pool, (c) => store(c, mailbox, '01TESTMESSAGE0000000000001', raw));
    const twice = await withTransaction(db.pool, (c) => store(c, mailbox, '01TESTMESSAGE0000000000001', raw));
    assert.ok(rowId);
    assert.equal(twice, undefined);
    assert.equal((await findMailbox(db.pool, mailbox.address))?.usageBytes, raw.length);
    const dataKey = await openMailboxKey(keys, mailbox);
    assert.deepEqual(await readMailboxMessage(db.pool, mailbox.id, dataKey, rowId), raw);
    const [listed] = await listMailboxMessages(db.pool, mailbox.id, 'inbox');
    assert.equal(listed?.size, raw.length);

    const stored = (await db.pool.query('select content from mailbox_messages where id = $1', [rowId])).rows[0];
    assert.equal(stored.content.includes(Buffer.from('GEHEIM-123')), false);
    assert.throws(() => decryptMessage(dataKey, mailbox.id, 'another-row', stored.content), {
      code: 'MAILBOX_CONTENT_TAMPERED',
    });
  });

  it('reuses the live activation token with the same link and PIN until it expires, then makes a new one', async () => {
    const { mailbox } = await ensureMailbox(db.pool, 'token@mail.example', keys);
    const now = new Date();
    const input = {
      mailbox,
      keys,
      now,
      lifetimeMs: 14 * DAY,
      pinDelayMs: 300_000,
      messageId: '01TESTMESSAGE0000000000002',
      traceId: 'a'.repeat(32),
    };
    const first = await ensureActivationToken(db.pool, input);
    const second = await ensureActivationToken(db.pool, { ...input, messageId: '01TESTMESSAGE0000000000003' });
    assert.equal(first.created, true);
    assert.equal(second.created, false);
    assert.deepEqual(second.secrets, first.secrets);
    assert.match(first.secrets.pin, /^\d{8}$/);
    assert.equal(first.secrets.link.length, 43);

    const row = (await db.pool.query('select * from mailbox_tokens where id = $1', [first.token.id])).rows[0];
    assert.deepEqual(row.link_hash, linkHash(first.secrets.link));
    assert.equal(await verifyPassword(first.secrets.pin, row.pin_hash), true);
    const dump = await dumpTestSchema(db);
    assert.equal(dumpHolds(dump, first.secrets.link), false, 'no link in clear');
    assert.equal(dumpHolds(dump, `"pin":"${first.secrets.pin}"`), false, 'no PIN in clear');

    const later = await ensureActivationToken(db.pool, { ...input, now: new Date(now.getTime() + 15 * DAY) });
    assert.equal(later.created, true);
    assert.notEqual(later.secrets.link, first.secrets.link);
    const tokens = await listActivationTokens(db.pool, mailbox.id);
    assert.equal(tokens.length, 2);
    const revoked = (
      await db.pool.query('select revoked_at, secrets_sealed from mailbox_tokens where id = $1', [first.token.id])
    ).rows[0];
    assert.ok(revoked.revoked_at);
    assert.equal(revoked.secrets_sealed, null);
  });

  it('hands out a due PIN mail once, with the PIN, and not before it is due', async () => {
    const { mailbox } = await ensureMailbox(db.pool, 'pin@mail.example', keys);
    const now = new Date();
    const { token, secrets } = await ensureActivationToken(db.pool, {
      mailbox,
      keys,
      now,
      lifetimeMs: DAY,
      pinDelayMs: 60_000,
      messageId: '01TESTMESSAGE0000000000004',
      traceId: 'b'.repeat(32),
    });
    const mine = <T extends { token: { id: string } }>(list: T[]) => list.filter((d) => d.token.id === token.id);
    assert.equal(mine(await withTransaction(db.pool, (c) => lockDuePinMails(c, keys, now, 50))).length, 0);
    const dueAt = new Date(now.getTime() + 60_000);
    const due = mine(await withTransaction(db.pool, (c) => lockDuePinMails(c, keys, dueAt, 50)));
    assert.equal(due.length, 1);
    assert.equal(due[0]?.secrets.pin, secrets.pin);
    await markPinMailSent(db.pool, token.id, dueAt);
    assert.equal(mine(await withTransaction(db.pool, (c) => lockDuePinMails(c, keys, dueAt, 50))).length, 0);
  });

  describe("a Sent copy's reserved usage", () => {
    async function activeMailbox(address: string): Promise<string> {
      const { mailbox } = await ensureMailbox(db.pool, address, keys);
      await setMailboxPassword(db.pool, mailbox.id, '$argon2id$placeholder', new Date());
      return mailbox.id;
    }
    const usage = async (id: string) => (await findMailboxById(db.pool, id))?.usageBytes;
    const reserve = (id: string, bytes: number) =>
      withTransaction(db.pool, (c) => reserveMailboxUsage(c, { mailboxId: id, bytes, quotaBytes: 30_000 }));
    const release = (id: string, bytes: number) => withTransaction(db.pool, (c) => releaseMailboxUsage(c, id, bytes));

    it('is given back as reserved, and the quota has room for it again', async () => {
      const id = await activeMailbox('reserviert@mail.example');
      assert.equal(await reserve(id, 20_000), true);
      assert.equal(await reserve(id, 20_000), false, 'the quota is full');
      assert.deepEqual(await release(id, 20_000), { releasedBytes: 20_000, usageBytes: 0 });
      assert.equal(await usage(id), 0);
      assert.equal(await reserve(id, 20_000), true, 'fits again');
    });

    it('never goes below 0, gives nothing back to a mailbox that is gone, and refuses a size that is not one', async () => {
      const id = await activeMailbox('wenig@mail.example');
      assert.equal(await reserve(id, 500), true);
      assert.deepEqual(await release(id, 2000), { releasedBytes: 500, usageBytes: 0 });
      assert.deepEqual(await release(id, 10), { releasedBytes: 0, usageBytes: 0 });
      assert.equal(await usage(id), 0);
      await withTransaction(db.pool, (c) => deleteMailbox(c, id));
      assert.equal(await release(id, 100), undefined);
      for (const bad of [-1, 1.5, Number.NaN, 2 ** 60]) {
        await assert.rejects(release(id, bad), RangeError, String(bad));
      }
    });
  });
});
