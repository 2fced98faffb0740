// Self-registration (/registrieren): agency addresses are refused on the page with the reason; every other address
// gets the same page, and the mail says what happened (a new link, then the PIN; or "you already have a mailbox").
// Mails per address and requests per client are limited.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Envelope } from '@smgw/envelope';
import { createAgency } from '@smgw/key-directory';
import {
  ensureMailbox,
  findMailbox,
  findTokenByLink,
  listActivationTokens,
  listMailboxAudit,
  setMailboxLocked,
} from '@smgw/mailbox-store';
import { sendDuePinMails } from '../src/pin-mail-sweep.ts';
import { LIMIT_RULES } from '../src/portal/limits.ts';
import {
  liveActivationToken,
  mailText,
  pinMailSweepOf,
  portalWorldPerSuite,
  submitAndWait,
  uniqueAddress,
  withoutCsrfToken,
} from './portal-world.ts';

const PASSWORD = 'lange Nacht am blauen See';
const newAddress = () => uniqueAddress('register');

describe('portal self-registration', () => {
  const world = portalWorldPerSuite({
    settings: { internalDomains: ['behoerde.example', '*.land.example'] },
    setUp: (started) =>
      createAgency(started.db.pool, { name: 'Stadtverwaltung', domains: ['stadt.example'], now: new Date() }),
  });

  const register = (address: string, ip?: string) => submitAndWait(world, '/registrieren', { address }, ip);

  it('shows the form with a labelled address field', async () => {
    const page = await world.browser().get('/registrieren');
    assert.equal(page.status, 200);
    assert.match(page.body, /<h1>Sicheres Postfach einrichten<\/h1>/);
    assert.match(page.body, /<label for="field-address">/);
    assert.match(page.body, /aria-describedby="field-address-hint"/);
  });

  for (const address of ['amt@behoerde.example', 'x@kreis.land.example', 'Info@STADT.example']) {
    it(`refuses ${address} with the reason: an agency address gets no portal mailbox`, async () => {
      const page = await register(address);
      assert.equal(page.status, 400);
      assert.match(page.body, /gehört zu einer angeschlossenen Behörde/);
      assert.match(page.body, /aria-describedby="field-address-hint field-address-error"/);
      assert.match(page.body, /aria-invalid="true"/);
      assert.equal(world.published.length, 0);
      assert.equal(await findMailbox(world.db.pool, address), undefined);
    });
  }

  it('refuses something that is no address', async () => {
    const page = await register('not an address');
    assert.equal(page.status, 400);
    assert.match(page.body, /gültige E-Mail-Adresse/);
  });

  for (const address of [
    '"a b"@hostile.example',
    'a b@hostile.example',
    'a,b@hostile.example',
    '<v@x.example>@hostile.example',
    'a\r\nBcc: v@x.example@hostile.example',
    // 255 octets: longer than RFC 5321 lets an address be (a path of 256 with its brackets); the form took 320.
    `${'l'.repeat(239)}@hostile.example`,
  ]) {
    it(`refuses ${JSON.stringify(address)}: only a plain address gets a mailbox`, async () => {
      const page = await register(address);
      assert.equal(page.status, 400);
      assert.match(page.body, /gültige E-Mail-Adresse/);
      assert.equal(world.published.length, 0);
      const made = await world.db.pool.query("select from mailboxes where address like '%@hostile.example'");
      assert.equal(made.rowCount, 0);
    });
  }

  // The link would be mailed there: a host a stranger chose, not a domain of the internet (isInternetAddress).
  const notInternet = ['192.0.2.1', '127.1', 'localhost', 'mailhost', 'printer.local', 'db.corp.internal'];
  for (const [i, domain] of notInternet.entries()) {
    it(`refuses an address at ${domain}: no mailbox, no mail`, async () => {
      const address = `${newAddress().split('@')[0]}@${domain}`;
      const page = await register(address, `198.51.100.${i + 1}`);
      assert.equal(page.status, 400);
      assert.match(page.body, /gültige E-Mail-Adresse/);
      assert.equal(world.published.length, 0);
      assert.equal(await findMailbox(world.db.pool, address), undefined);
    });
  }

  it('makes a passive mailbox for a new address: the link at once, the PIN after the delay', async () => {
    const address = newAddress();
    const page = await register(address);
    assert.equal(page.status, 200);
    assert.match(page.body, /Wenn diese Adresse ein Postfach bekommen kann/);

    const mailbox = await findMailbox(world.db.pool, address);
    assert.equal(mailbox?.state, 'passive');
    assert.ok(mailbox);
    const [token] = await listActivationTokens(world.db.pool, mailbox.id);
    assert.equal(token?.purpose, 'registration');

    assert.equal(world.published.length, 1);
    const linkMail = await mailText(world, world.published[0] as Envelope);
    assert.deepEqual(linkMail.to, [address]);
    assert.match(linkMail.subject, /Registrierung abschließen/);
    const link = /http:\/\/127\.0\.0\.1:8080\/aktivieren\/([A-Za-z0-9_-]{43})/.exec(linkMail.text)?.[1];
    assert.ok(link);
    assert.doesNotMatch(linkMail.text, /\b\d{8}\b/, 'no PIN beside the link');
    assert.equal((await findTokenByLink(world.db.pool, link, world.clock.now())).kind, 'live');

    assert.equal(await sendDuePinMails(pinMailSweepOf(world, world.clock.now())), 0);
    const later = new Date(world.clock.now().getTime() + world.settings.pinDelayMs);
    assert.equal(await sendDuePinMails(pinMailSweepOf(world, later)), 1);
    const pinMail = await mailText(world, world.published[1] as Envelope);
    const pin = /^\s+(\d{8})\s*$/m.exec(pinMail.text)?.[1];
    assert.ok(pin);

    // The link and the PIN activate the mailbox.
    const browser = world.browser();
    await browser.get(`/aktivieren/${link}`);
    const done = await browser.post(`/aktivieren/${link}`, { pin, password: PASSWORD, passwordRepeat: PASSWORD });
    assert.equal(done.status, 303);
    assert.equal((await findMailbox(world.db.pool, address))?.state, 'active');
    assert.ok((await listMailboxAudit(world.db.pool, address)).some((e) => e.event === 'mailbox.registered'));
  });

  it('answers an existing mailbox with the same page, and mails "you already have one" without a new link', async () => {
    const fresh = newAddress();
    const existing = newAddress();
    const { mailbox } = await ensureMailbox(world.db.pool, existing, world.mailboxKeys);
    const earlier = await liveActivationToken(world, mailbox);

    const forFresh = await register(fresh);
    const forExisting = await register(existing);
    assert.equal(forExisting.status, forFresh.status);
    assert.equal(withoutCsrfToken(forExisting.body), withoutCsrfToken(forFresh.body));

    const mail = world.published.find((e) => e.recipients.includes(existing));
    assert.ok(mail);
    const { subject, text } = await mailText(world, mail);
    assert.match(subject, /bereits ein sicheres Postfach/);
    assert.match(text, /http:\/\/127\.0\.0\.1:8080\/anmelden/);
    assert.match(text, /http:\/\/127\.0\.0\.1:8080\/reaktivieren/);
    assert.doesNotMatch(text, /aktivieren\/[A-Za-z0-9_-]{43}/);
    // Nothing changed about the mailbox: its link still works, no new token.
    assert.equal((await findTokenByLink(world.db.pool, earlier.secrets.link, world.clock.now())).kind, 'live');
    assert.equal((await listActivationTokens(world.db.pool, mailbox.id)).length, 1);
    assert.ok(
      (await listMailboxAudit(world.db.pool, existing)).some((e) => e.event === 'mailbox.registration-repeated'),
    );
  });

  it('sends nothing to a locked mailbox, with the same page', async () => {
    const address = newAddress();
    const { mailbox } = await ensureMailbox(world.db.pool, address, world.mailboxKeys);
    await setMailboxLocked(world.db.pool, mailbox.id, true, 'admin:ops', world.clock.now());
    const page = await register(address);
    assert.equal(page.status, 200);
    assert.equal(world.published.length, 0);
  });

  it('limits mails per address (also for unknown ones) and requests per client', async () => {
    const address = newAddress();
    const { max } = LIMIT_RULES.registrationPerAddress;
    for (let i = 0; i < max; i++) {
      assert.equal((await register(address, `192.0.2.${10 + i}`)).status, 200);
    }
    const limited = await register(address, '192.0.2.20');
    assert.equal(limited.status, 429);
    // One mail made the mailbox; the next two were "you already have one"; the fourth none.
    assert.equal(world.published.filter((e) => e.recipients.includes(address)).length, 3);

    for (let i = 0; i < LIMIT_RULES.registrationPerClient.max; i++)
      assert.equal((await register(newAddress(), '192.0.2.99')).status, 200);
    assert.equal((await register(newAddress(), '192.0.2.99')).status, 429);
  });

  it('counts the mails to an address with its +tags: victim+1@, victim+2@ … share the limit of victim@', async () => {
    // Every +tag is a new address (a new mailbox, a link mail), and most providers deliver them all to victim@: from
    // ever new clients, a stranger would otherwise send one inbox any number of mails.
    const [local, domain] = newAddress().split('@') as [string, string];
    const { max } = LIMIT_RULES.registrationPerAddress;
    for (let i = 0; i < max; i++) {
      assert.equal((await register(`${local}+${i}@${domain}`, `192.0.2.${30 + i}`)).status, 200);
    }
    assert.equal((await register(`${local}+${max}@${domain}`, '192.0.2.40')).status, 429);
    assert.equal((await register(`${local}@${domain}`, '192.0.2.41')).status, 429);
    assert.equal(world.published.length, max);
  });

  it('refuses a post without the CSRF token', async () => {
    const browser = world.browser();
    await browser.get('/registrieren');
    const page = await browser.post('/registrieren', { address: newAddress(), _csrf: null });
    assert.equal(page.status, 403);
    assert.equal(world.published.length, 0);
  });
});
