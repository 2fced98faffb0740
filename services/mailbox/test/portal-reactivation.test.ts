// Asking for a new activation link: every address gets the same page; a mailbox that exists (and is not locked)
// gets a new link at once and its PIN SMGW_PIN_DELAY later (the PIN mail sweep), and every earlier link and PIN
// stops working. Limited per address and per client.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Envelope } from '@smgw/envelope';
import { ensureMailbox, listActivationTokens, listMailboxAudit, setMailboxLocked } from '@smgw/mailbox-store';
import { sendDuePinMails } from '../src/pin-mail-sweep.ts';
import {
  activeMailbox,
  liveActivationToken,
  logIn,
  mailText,
  pinMailSweepOf,
  portalWorldPerSuite,
  submitAndWait,
  uniqueAddress,
  withoutCsrfToken,
} from './portal-world.ts';

const OLD_PASSWORD = 'correct horse battery staple';
const NEW_PASSWORD = 'lange Nacht am blauen See';

const newAddress = () => uniqueAddress('reactivate');

describe('portal re-activation', () => {
  const world = portalWorldPerSuite();

  /** Posts the form and waits for the work after the answer. */
  const request = (address: string, ip?: string) => submitAndWait(world, '/reaktivieren', { address }, ip);

  it('mails a new link at once and the PIN later; the old link and PIN die; the new ones set a new password', async () => {
    const address = newAddress();
    const mailbox = await activeMailbox(world, address, OLD_PASSWORD);
    const old = await liveActivationToken(world, mailbox);
    const page = await request(address);
    assert.equal(page.status, 200);
    assert.match(page.body, /Anfrage erhalten/);

    assert.equal(world.published.length, 1);
    const linkMail = await mailText(world, world.published[0] as Envelope);
    assert.deepEqual(linkMail.to, [address]);
    assert.match(linkMail.subject, /Neuer Link/);
    const link = /http:\/\/127\.0\.0\.1:8080\/aktivieren\/([A-Za-z0-9_-]{43})/.exec(linkMail.text)?.[1];
    assert.ok(link, 'the link is in the mail');
    assert.doesNotMatch(linkMail.text, /\b\d{8}\b/, 'no PIN beside the link');

    // The old link is dead at once.
    assert.equal((await world.browser().get(`/aktivieren/${old.secrets.link}`)).status, 410);
    const tokens = await listActivationTokens(world.db.pool, mailbox.id);
    const live = tokens.filter((t) => !t.revokedAt && !t.usedAt);
    assert.equal(live.length, 1);
    assert.equal(live[0]?.purpose, 'reactivation');

    // The PIN mail comes from the sweep, SMGW_PIN_DELAY later, for a token that belongs to no message.
    assert.equal(await sendDuePinMails(pinMailSweepOf(world, world.clock.now())), 0);
    const later = new Date(world.clock.now().getTime() + world.settings.pinDelayMs);
    assert.equal(await sendDuePinMails(pinMailSweepOf(world, later)), 1);
    const pinMail = await mailText(world, world.published[1] as Envelope);
    assert.deepEqual(pinMail.to, [address]);
    const pin = /^\s+(\d{8})\s*$/m.exec(pinMail.text)?.[1];
    assert.ok(pin);
    assert.notEqual(pin, old.secrets.pin);

    // The old PIN does not open the new link; the new PIN does, and the old password is gone.
    const browser = world.browser();
    await browser.get(`/aktivieren/${link}`);
    const withOldPin = await browser.post(`/aktivieren/${link}`, {
      pin: old.secrets.pin,
      password: NEW_PASSWORD,
      passwordRepeat: NEW_PASSWORD,
    });
    assert.equal(withOldPin.status, 400);
    const done = await browser.post(`/aktivieren/${link}`, {
      pin,
      password: NEW_PASSWORD,
      passwordRepeat: NEW_PASSWORD,
    });
    assert.equal(done.status, 303);
    assert.equal((await logIn(world.browser(), address, OLD_PASSWORD)).status, 401);
    assert.equal((await logIn(world.browser(), address, NEW_PASSWORD)).status, 303);
    const audit = await listMailboxAudit(world.db.pool, address);
    assert.ok(audit.some((e) => e.event === 'mailbox.reactivation-requested'));
    assert.ok(audit.some((e) => e.event === 'mailbox.reactivated'));
  });

  /** Requests a new link for the address and returns it, with its PIN from the PIN mail sweep. */
  async function resetLink(address: string): Promise<{ link: string; pin: string; mail: string }> {
    const sent = world.published.length;
    await request(address);
    const mail = (await mailText(world, world.published[sent] as Envelope)).text;
    const link = /aktivieren\/([A-Za-z0-9_-]{43})/.exec(mail)?.[1];
    assert.ok(link, 'the link is in the mail');
    const later = new Date(world.clock.now().getTime() + world.settings.pinDelayMs);
    await sendDuePinMails(pinMailSweepOf(world, later));
    const pinMail = (await mailText(world, world.published.at(-1) as Envelope)).text;
    const pin = /^\s+(\d{8})\s*$/m.exec(pinMail)?.[1];
    assert.ok(pin, 'the PIN is in its mail');
    return { link, pin, mail };
  }

  const setPassword = async (link: string, pin: string) => {
    const browser = world.browser();
    // A form's CSRF token also when the link is dead (its page has no form): the dead link, not CSRF, must refuse.
    await browser.get('/reaktivieren');
    return browser.post(`/aktivieren/${link}`, { pin, password: NEW_PASSWORD, passwordRepeat: NEW_PASSWORD });
  };

  it('gives a reset link (a mailbox with a password) SMGW_REACTIVATION_LINK_LIFETIME, not the 14 days of activation', async () => {
    const address = newAddress();
    const mailbox = await activeMailbox(world, address, OLD_PASSWORD);
    const { link, pin } = await resetLink(address);
    const [token] = (await listActivationTokens(world.db.pool, mailbox.id)).filter((t) => !t.revokedAt && !t.usedAt);
    assert.equal(token?.expiresAt.getTime(), world.clock.now().getTime() + world.settings.reactivationLinkLifetimeMs);
    world.clock.advance(world.settings.reactivationLinkLifetimeMs);
    assert.equal((await world.browser().get(`/aktivieren/${link}`)).status, 410, 'dead after its lifetime');
    assert.equal((await setPassword(link, pin)).status, 410);
    assert.equal((await logIn(world.browser(), address, OLD_PASSWORD)).status, 303, 'the old password still works');
  });

  it('gives a mailbox never activated the activation lifetime when it asks for a new link', async () => {
    const address = newAddress();
    const { mailbox } = await ensureMailbox(world.db.pool, address, world.mailboxKeys);
    await request(address);
    const [token] = (await listActivationTokens(world.db.pool, mailbox.id)).filter((t) => !t.revokedAt && !t.usedAt);
    assert.equal(token?.expiresAt.getTime(), world.clock.now().getTime() + world.settings.linkLifetimeMs);
  });

  it('a second reset request kills the first link, and a used link does not work again', async () => {
    const address = newAddress();
    await activeMailbox(world, address, OLD_PASSWORD);
    const first = await resetLink(address);
    const second = await resetLink(address);
    assert.equal((await setPassword(first.link, first.pin)).status, 410, 'superseded');
    assert.equal((await setPassword(first.link, second.pin)).status, 410);
    assert.equal((await setPassword(second.link, second.pin)).status, 303);
    assert.equal((await setPassword(second.link, second.pin)).status, 410, 'used');
    assert.equal((await world.browser().get(`/aktivieren/${second.link}`)).status, 410);
  });

  it('ends the sessions opened with the old password when the new one is set', async () => {
    const address = newAddress();
    await activeMailbox(world, address, OLD_PASSWORD);
    const thief = world.browser('192.0.2.66');
    await logIn(thief, address, OLD_PASSWORD);
    await request(address);
    const link = /aktivieren\/([A-Za-z0-9_-]{43})/.exec(
      (await mailText(world, world.published[0] as Envelope)).text,
    )?.[1];
    assert.ok(link);
    // The PIN comes in its mail, SMGW_PIN_DELAY later.
    const later = new Date(world.clock.now().getTime() + world.settings.pinDelayMs);
    await sendDuePinMails(pinMailSweepOf(world, later));
    const pin = /^\s+(\d{8})\s*$/m.exec((await mailText(world, world.published[1] as Envelope)).text)?.[1] as string;
    const owner = world.browser();
    await owner.get(`/aktivieren/${link}`);
    const activated = await owner.post(`/aktivieren/${link}`, {
      pin,
      password: NEW_PASSWORD,
      passwordRepeat: NEW_PASSWORD,
    });
    assert.equal(activated.status, 303);
    assert.equal((await thief.get('/postfach/eingang')).location, '/anmelden');
    assert.equal((await owner.get('/postfach/eingang')).status, 200);
  });

  it('answers an unknown, a passive, an active and a locked address with the same page, mailing only where it should', async () => {
    const active = newAddress();
    await activeMailbox(world, active, OLD_PASSWORD);
    const passive = newAddress();
    await ensureMailbox(world.db.pool, passive, world.mailboxKeys);
    const locked = newAddress();
    const lockedBox = await activeMailbox(world, locked, OLD_PASSWORD);
    await setMailboxLocked(world.db.pool, lockedBox.id, true, 'admin:test', world.clock.now());
    const answers = [];
    for (const [i, address] of [newAddress(), passive, active, locked].entries()) {
      const page = await request(address, `198.51.100.${i + 1}`);
      answers.push({ status: page.status, body: withoutCsrfToken(page.body) });
    }
    for (const answer of answers) assert.deepEqual(answer, answers[0]);
    assert.deepEqual(
      world.published.map((e) => e.recipients[0]),
      [passive, active],
    );
  });

  it('refuses what is not a plain address with a form error, and sends nothing', async () => {
    for (const typed of ['kein-at-zeichen', '"a b"@buerger.example', 'a,b@buerger.example', 'a\r\nb@buerger.example']) {
      const page = await request(typed);
      assert.equal(page.status, 400, typed);
      assert.match(page.body, /gültige E-Mail-Adresse/);
      assert.match(page.body, /aria-invalid="true"/);
    }
    assert.equal(world.published.length, 0);
  });

  it('refuses an address at an IPv4 address or a bare host, and mails nothing, even when such a mailbox exists', async () => {
    // A mailbox made before the portal refused such addresses (or for an agency's recipient before ingest did).
    for (const domain of ['192.0.2.1', 'localhost']) {
      const address = `${newAddress().split('@')[0]}@${domain}`;
      await activeMailbox(world, address, OLD_PASSWORD);
      const page = await request(address, '198.51.100.7');
      assert.equal(page.status, 400, address);
      assert.match(page.body, /gültige E-Mail-Adresse/);
    }
    assert.equal(world.published.length, 0);
  });

  it('sends at most 3 mails per address an hour (counted for unknown addresses too), and 10 requests per client', async () => {
    const address = newAddress();
    await activeMailbox(world, address, OLD_PASSWORD);
    for (let i = 0; i < 3; i++) assert.equal((await request(address, `203.0.113.${i + 1}`)).status, 200);
    const fourth = await request(address, '203.0.113.9');
    assert.equal(fourth.status, 429);
    assert.match(fourth.body, /Zu viele Versuche/);
    assert.equal(world.published.length, 3);
    const unknown = newAddress();
    for (let i = 0; i < 3; i++) await request(unknown, `203.0.113.${i + 20}`);
    assert.equal((await request(unknown, '203.0.113.30')).status, 429);

    for (let i = 0; i < 10; i++) assert.equal((await request(newAddress(), '192.0.2.200')).status, 200);
    assert.equal((await request(newAddress(), '192.0.2.200')).status, 429);
  });

  it('counts the mails to an address with its +tags: victim+1@, victim+2@ … share the limit of victim@', async () => {
    const [local, domain] = newAddress().split('@') as [string, string];
    const tagged = (i: number) => `${local}+${i}@${domain}`;
    for (let i = 0; i < 4; i++) await activeMailbox(world, tagged(i), OLD_PASSWORD);
    for (let i = 0; i < 3; i++) assert.equal((await request(tagged(i), `203.0.113.${i + 40}`)).status, 200);
    assert.equal((await request(tagged(3), '203.0.113.50')).status, 429);
    assert.equal(world.published.length, 3);
  });

  it('never writes the address, the link or the PIN into the log', async () => {
    const address = newAddress();
    await activeMailbox(world, address, OLD_PASSWORD);
    await request(address);
    const link = /aktivieren\/([A-Za-z0-9_-]{43})/.exec(
      (await mailText(world, world.published[0] as Envelope)).text,
    )?.[1];
    const log = world.logLines.join('\n');
    assert.ok(link);
    assert.equal(log.includes(link), false);
    assert.equal(log.includes(address), false);
    assert.ok(world.logLines.some((l) => l.includes('PORTAL_REACTIVATION_SENT')));
  });
});
