// An operator's resend (recorded by the admin API through @smgw/mailbox-store) as the mailbox service's sweep sees
// it, against the real database and blob store: the link mail goes out once with the new link, the PIN mail follows
// after the delay with the new PIN, and tokens made otherwise (arrival, the portal's own re-activation) are not
// mailed by this sweep.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BlobStore } from '@smgw/blob-store';
import { withTransaction } from '@smgw/db';
import type { Envelope } from '@smgw/envelope';
import {
  checkTokenPin,
  deleteMailbox,
  ensureActivationToken,
  ensureMailbox,
  findTokenByLink,
  listMailboxAudit,
  type MailboxKeyStore,
  replaceActivationToken,
  requestActivationResend,
} from '@smgw/mailbox-store';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { simpleParser } from 'mailparser';
import { sendDuePinMails } from '../src/pin-mail-sweep.ts';
import { sendDueResentLinkMails } from '../src/resent-link-mails.ts';
import { type SweepWorld, sweepWorld } from './sweep-world.ts';

const HOUR = 3_600_000;
const ACTIVATION = /https:\/\/portal\.test\/aktivieren\/([A-Za-z0-9_-]{43})/;
const PIN = /^\s+(\d{8})\s*$/m;

describe('link mails of an operator resend', () => {
  let db: TestDatabase;
  let blobStore: BlobStore;
  let published: Envelope[];
  let deps: SweepWorld['deps'];
  let mailboxKeys: MailboxKeyStore;

  before(async () => {
    db = await createTestDatabase();
    ({ blobStore, mailboxKeys, published, deps } = await sweepWorld(db));
  });
  after(async () => {
    await db?.drop();
  });

  async function mailTo(address: string) {
    const envelope = published.find((e) => e.recipients.includes(address));
    assert.ok(envelope, `a mail to ${address}`);
    published.splice(published.indexOf(envelope), 1);
    const parsed = await simpleParser(await blobStore.readAll(envelope.blob.ref));
    return { envelope, subject: parsed.subject ?? '', text: parsed.text ?? '' };
  }

  async function passiveMailbox(address: string, now: Date) {
    const { mailbox } = await ensureMailbox(db.pool, address, mailboxKeys);
    const first = await ensureActivationToken(db.pool, {
      mailbox,
      keys: mailboxKeys,
      now,
      lifetimeMs: 24 * HOUR,
      pinDelayMs: HOUR,
    });
    return { mailbox, first };
  }

  const resend = (mailbox: Awaited<ReturnType<typeof passiveMailbox>>['mailbox'], now: Date) =>
    withTransaction(db.pool, (client) =>
      requestActivationResend(client, {
        mailbox,
        keys: mailboxKeys,
        now,
        lifetimeMs: 24 * HOUR,
        pinDelayMs: HOUR,
        actor: 'admin:ops',
      }),
    );

  it('sends the new link at once and once only, then the new PIN after the delay', async () => {
    const t0 = new Date('2026-03-01T10:00:00Z');
    const { mailbox, first } = await passiveMailbox('erika@buerger.example', t0);
    // The arrival's own PIN mail went out earlier.
    assert.equal(await sendDuePinMails(deps(new Date(t0.getTime() + HOUR))), 1);
    await mailTo('erika@buerger.example');

    const t1 = new Date(t0.getTime() + 2 * HOUR);
    await resend(mailbox, t1);
    assert.equal(await sendDueResentLinkMails(deps(t1)), 1);
    const linkMail = await mailTo('erika@buerger.example');
    assert.match(linkMail.subject, /Neuer Zugangslink/);
    assert.match(linkMail.text, /Alle früheren Links und PINs gelten/);
    const link = ACTIVATION.exec(linkMail.text)?.[1];
    assert.ok(link);
    assert.notEqual(link, first.secrets.link);
    assert.equal((await findTokenByLink(db.pool, link, t1)).kind, 'live');
    assert.equal((await findTokenByLink(db.pool, first.secrets.link, t1)).kind, 'dead');
    assert.ok(!linkMail.text.match(PIN), 'the link mail carries no PIN');

    // Not again, and the PIN only after the delay.
    assert.equal(await sendDueResentLinkMails(deps(t1)), 0);
    assert.equal(await sendDuePinMails(deps(t1)), 0);
    const t2 = new Date(t1.getTime() + HOUR);
    assert.equal(await sendDuePinMails(deps(t2)), 1);
    const pinMail = await mailTo('erika@buerger.example');
    assert.equal(pinMail.envelope.traceId, linkMail.envelope.traceId);
    const pin = PIN.exec(pinMail.text)?.[1];
    assert.ok(pin);
    const live = await findTokenByLink(db.pool, link, t2);
    assert.equal(live.kind, 'live');
    assert.equal(live.kind === 'live' && (await checkTokenPin(db.pool, live.token.id, pin, 5, t2)), 'right');

    const events = (await listMailboxAudit(db.pool, 'erika@buerger.example')).map((e) => [e.event, e.actor]);
    assert.deepEqual(events, [
      ['mailbox.activation-resent', 'admin:ops'],
      ['mailbox.activation-link-mailed', 'mailbox-stage'],
    ]);
  });

  it('mails only the latest of two resends', async () => {
    const t0 = new Date('2026-03-02T10:00:00Z');
    const { mailbox } = await passiveMailbox('zweimal@buerger.example', t0);
    await resend(mailbox, t0);
    const second = await resend(mailbox, new Date(t0.getTime() + 1000));
    assert.equal(await sendDueResentLinkMails(deps(new Date(t0.getTime() + 2000))), 1);
    const { text } = await mailTo('zweimal@buerger.example');
    const link = ACTIVATION.exec(text)?.[1];
    assert.ok(link);
    const found = await findTokenByLink(db.pool, link, t0);
    assert.equal(found.kind !== 'unknown' && found.token.id, second.id);
  });

  it('sends no link mail for tokens it did not make: arrivals and the portal re-activation mail their own', async () => {
    const t0 = new Date('2026-03-03T10:00:00Z');
    const { mailbox } = await passiveMailbox('selbst@buerger.example', t0);
    await withTransaction(db.pool, (client) =>
      replaceActivationToken(client, {
        mailbox,
        keys: mailboxKeys,
        now: t0,
        lifetimeMs: 24 * HOUR,
        pinDelayMs: HOUR,
        purpose: 'reactivation',
      }),
    );
    assert.equal(await sendDueResentLinkMails(deps(t0)), 0);
  });

  it('sends nothing for a mailbox deleted after the resend', async () => {
    const t0 = new Date('2026-03-04T10:00:00Z');
    const { mailbox } = await passiveMailbox('geloescht@buerger.example', t0);
    await resend(mailbox, t0);
    await withTransaction(db.pool, (c) => deleteMailbox(c, mailbox.id));
    assert.equal(await sendDueResentLinkMails(deps(t0)), 0);
    assert.equal(await sendDuePinMails(deps(new Date(t0.getTime() + 2 * HOUR))), 0);
  });
});
