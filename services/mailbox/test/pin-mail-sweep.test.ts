// The delayed PIN mail sweep against the real database and broker when a token cannot be mailed: a token whose
// mailbox key is gone or damaged is abandoned (with its reason, once) and no longer holds the tokens due after it; a
// PIN mail the broker did not take is deferred and sent later, without holding the others either.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import type { Envelope } from '@smgw/envelope';
import {
  createFolderMailboxKeyStore,
  ensureActivationToken,
  ensureMailbox,
  listActivationTokens,
  listMailboxAudit,
  type MailboxKeyStore,
  mailboxKeyFolder,
  TOKEN_MAILS_ABANDONED_EVENT,
} from '@smgw/mailbox-store';
import { connectMq, type Mq, PublishError } from '@smgw/mq';
import { createLogger } from '@smgw/observability';
import { createTestDatabase, createTestVhost, type TestDatabase, type TestVhost } from '@smgw/testing';
import { loadMailboxTemplates } from '../src/notices.ts';
import { type PinMailDeps, sendDuePinMails, type TokenMailFailure } from '../src/pin-mail-sweep.ts';
import { takeEnvelopes } from './portal-write-fixtures.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe('the PIN mail sweep with a token that cannot be mailed', () => {
  let db: TestDatabase;
  let vhost: TestVhost;
  let mq: Mq;
  let blobStore: BlobStore;
  let mailboxKeys: MailboxKeyStore;
  let deps: (now: Date, publish?: (envelope: Envelope) => Promise<void>) => PinMailDeps;
  let failures: TokenMailFailure[];

  before(async () => {
    [db, vhost] = await Promise.all([createTestDatabase(), createTestVhost()]);
    mq = await connectMq({
      url: vhost.url,
      logger: createLogger('pin-sweep-test', 'silent'),
      connectionName: 'pin-sweep',
    });
    await mq.declareTopology({ deliver: [1000] });
    blobStore = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    mailboxKeys = createFolderMailboxKeyStore(db.keys);
    const templates = await loadMailboxTemplates();
    failures = [];
    deps = (now, publish = (envelope) => mq.publish(envelope)) => ({
      pool: db.pool,
      blobStore,
      mailboxKeys,
      hostname: 'smgw.test',
      templates,
      publish,
      onFailed: (failure) => failures.push(failure),
      now: () => now,
    });
  });
  after(async () => {
    await mq?.close();
    await Promise.all([db?.drop(), vhost?.drop()]);
  });

  async function passiveMailbox(address: string, now: Date) {
    const { mailbox } = await ensureMailbox(db.pool, address, mailboxKeys);
    const { token } = await ensureActivationToken(db.pool, {
      mailbox,
      keys: mailboxKeys,
      now,
      lifetimeMs: 14 * 24 * HOUR,
      pinDelayMs: 5 * MINUTE,
    });
    return { mailbox, token };
  }

  const pinMailsTo = async (address: string) =>
    (await takeEnvelopes(vhost, 'smgw.deliver')).filter((e) => e.recipients.includes(address));

  const tokenOf = async (mailboxId: string) => (await listActivationTokens(db.pool, mailboxId))[0];

  for (const [label, breakKey, code] of [
    ['removed', (id: string) => mailboxKeys.destroy(id), 'MAILBOX_KEY_GONE'],
  ] as const) {
    it(`a token whose mailbox key file was ${label} is abandoned once and the PIN mail due after it goes out`, async () => {
      const t0 = new Date(`2026-04-0${label === 'removed' ? 1 : 2}T10:00:00Z`);
      const bad = await passiveMailbox(`bad-${label}@buerger.example`, t0);
      const good = await passiveMailbox(`good-${label}@buerger.example`, new Date(t0.getTime() + MINUTE));
      await breakKey(bad.mailbox.id);
      failures.length = 0;

      const later = new Date(t0.getTime() + HOUR);
      assert.equal(await sendDuePinMails(deps(later)), 1);
      assert.equal((await pinMailsTo(good.mailbox.address)).length, 1);
      assert.ok((await tokenOf(good.mailbox.id))?.pinMailSentAt);

      // The bad one: reported and recorded with its reason, not marked sent, its token otherwise untouched.
      assert.deepEqual(
        failures.map((f) => [f.tokenId, f.outcome, f.code]),
        [[bad.token.id, 'abandoned', code]],
      );
      const audit = (await listMailboxAudit(db.pool, bad.mailbox.address)).filter(
        (e) => e.event === TOKEN_MAILS_ABANDONED_EVENT,
      );
      assert.deepEqual(
        audit.map((e) => e.detail),
        [{ tokenId: bad.token.id, mail: 'pin-mail', code }],
      );
      const badToken = await tokenOf(bad.mailbox.id);
      assert.equal(badToken?.pinMailSentAt, null);
      assert.equal(badToken?.revokedAt, null);

      // Not tried again at the next ticks.
      assert.equal(await sendDuePinMails(deps(new Date(later.getTime() + MINUTE))), 0);
      assert.equal(failures.length, 1);
      assert.deepEqual(await pinMailsTo(bad.mailbox.address), []);
    });
  }

  it('a token whose mailbox key does not open is deferred, not abandoned (a wrong master key would hit them all)', async () => {
    const t0 = new Date('2026-04-02T10:00:00Z');
    const bad = await passiveMailbox('bad-damaged@buerger.example', t0);
    const good = await passiveMailbox('good-damaged@buerger.example', new Date(t0.getTime() + MINUTE));
    await writeFile(join(mailboxKeyFolder(db.keys.keyStoreDir), `${bad.mailbox.id}.key`), Buffer.alloc(80, 7));
    failures.length = 0;

    const later = new Date(t0.getTime() + HOUR);
    assert.equal(await sendDuePinMails(deps(later)), 1);
    assert.equal((await pinMailsTo(good.mailbox.address)).length, 1);
    assert.deepEqual(
      failures.map((f) => [f.tokenId, f.outcome, f.code]),
      [[bad.token.id, 'deferred', 'MAILBOX_KEY_DAMAGED']],
    );
    const audit = (await listMailboxAudit(db.pool, bad.mailbox.address)).filter(
      (e) => e.event === TOKEN_MAILS_ABANDONED_EVENT,
    );
    assert.deepEqual(audit, []);
    assert.equal((await tokenOf(bad.mailbox.id))?.pinMailDueAt.getTime(), later.getTime() + MINUTE);
    // Tried again each minute while it stays so; revoked here, so that the tests after this one do not meet it.
    await db.pool.query('update mailbox_tokens set revoked_at = now(), secrets_sealed = null where id = $1', [
      bad.token.id,
    ]);
  });

  it('a PIN mail the broker did not take is deferred, the ones due after it go out, and it follows later', async () => {
    const t0 = new Date('2026-04-03T10:00:00Z');
    const first = await passiveMailbox('first@buerger.example', t0);
    const second = await passiveMailbox('second@buerger.example', new Date(t0.getTime() + MINUTE));
    failures.length = 0;

    const later = new Date(t0.getTime() + HOUR);
    const brokerRefusesFirst = async (envelope: Envelope) => {
      if (envelope.recipients.includes(first.mailbox.address)) {
        throw new PublishError('MQ_PUBLISH_NACKED', 'the broker did not confirm');
      }
      await mq.publish(envelope);
    };
    assert.equal(await sendDuePinMails(deps(later, brokerRefusesFirst)), 1);
    assert.equal((await pinMailsTo(second.mailbox.address)).length, 1);
    assert.deepEqual(
      failures.map((f) => [f.tokenId, f.outcome, f.code]),
      [[first.token.id, 'deferred', 'MQ_PUBLISH_NACKED']],
    );
    const deferred = await tokenOf(first.mailbox.id);
    assert.equal(deferred?.pinMailSentAt, null);
    assert.equal(deferred?.pinMailDueAt.getTime(), later.getTime() + MINUTE);

    // Not before its new due time; then sent, with the broker back.
    assert.equal(await sendDuePinMails(deps(new Date(later.getTime() + 30_000))), 0);
    assert.equal(await sendDuePinMails(deps(new Date(later.getTime() + MINUTE))), 1);
    assert.equal((await pinMailsTo(first.mailbox.address)).length, 1);
    assert.ok((await tokenOf(first.mailbox.id))?.pinMailSentAt);
  });
});
