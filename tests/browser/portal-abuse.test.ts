// What strangers and careless users try on the Messenger portal, in a real browser against the whole gateway:
// guessing PINs, using a link and PIN after a re-activation replaced them, registering agency addresses or probing
// which addresses have a mailbox, keeping a session id across a login, idling past the session's end, and filling
// the mailbox (Sent and Trash count) until an agency's message bounces.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SunkMessage, TestGateway } from '@smgw/testing';
import { waitFor } from '@smgw/testing';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { keepScreenshot, launchBrowser } from './browser.ts';
import { AGENCY, agencySends, awaitMailMatch, linkAndPin, mailText, startPortalGateway } from './portal-gateway.ts';

const PASSWORD = 'Kastanienbaum im Herbst 1987 rot';
/** Small enough to fill in a test: two 120 KB messages do not fit. */
const QUOTA = 250_000;
const IDLE_SECONDS = 6;

describe('Messenger portal under abuse, in the browser', () => {
  let gw: TestGateway;
  let browser: Browser;
  const seen = new Set<SunkMessage>();

  async function freshPage(): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ locale: 'de-DE' });
    context.setDefaultTimeout(20_000);
    return { context, page: await context.newPage() };
  }

  async function activate(page: Page, link: string, pin: string): Promise<void> {
    await page.goto(link);
    await page.getByLabel('PIN (8 Ziffern)').fill(pin);
    await page.getByLabel('Neues Passwort', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Neues Passwort wiederholen').fill(PASSWORD);
    await page.getByRole('button', { name: 'Aktivieren' }).click();
  }

  before(async () => {
    gw = await startPortalGateway({
      SMGW_MAILBOX_QUOTA_BYTES: String(QUOTA),
      SMGW_PORTAL_SESSION_IDLE: `${IDLE_SECONDS}s`,
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
  });

  it('kills the link after five wrong PINs; then it offers no form to try the right one', async () => {
    const citizen = 'raten@example.org';
    await agencySends(gw, citizen, { subject: 'Bescheid', text: 'Text' });
    const { link, pin } = await linkAndPin(gw, citizen, seen);
    const { context, page } = await freshPage();
    const wrong = pin === '11111111' ? '22222222' : '11111111';
    for (let attempt = 1; attempt <= 5; attempt++) {
      await activate(page, link, wrong);
      if (attempt < 5) await page.getByText('Die PIN ist falsch.').waitFor();
    }
    await page.getByRole('heading', { name: 'Link nicht mehr gültig' }).waitFor();
    await keepScreenshot(page, 'abuse-pin-limit');
    // The link now shows only the way to a new one: no form to try the right PIN in.
    await page.goto(link);
    await page.getByRole('heading', { name: 'Link nicht mehr gültig' }).waitFor();
    assert.equal(await page.getByLabel('PIN (8 Ziffern)').count(), 0);
    await context.close();
  });

  it('after a re-activation, the old link and the old PIN are dead and the new pair works', async () => {
    const citizen = 'neu@example.org';
    await agencySends(gw, citizen, { subject: 'Bescheid', text: 'Text' });
    const first = await linkAndPin(gw, citizen, seen);
    const { context, page } = await freshPage();
    await page.goto(`http://127.0.0.1:${gw.portalPort}/reaktivieren`);
    await page.getByLabel('E-Mail-Adresse').fill(citizen);
    await page.getByRole('button', { name: 'Link anfordern' }).click();
    await page.getByRole('heading', { name: 'Anfrage erhalten' }).waitFor();
    const second = await linkAndPin(gw, citizen, seen);
    assert.notEqual(second.link, first.link);

    await page.goto(first.link);
    await page.getByRole('heading', { name: 'Link nicht mehr gültig' }).waitFor();
    if (first.pin !== second.pin) {
      await activate(page, second.link, first.pin);
      await page.getByText('Die PIN ist falsch.').waitFor();
    }
    await activate(page, second.link, second.pin);
    await page.waitForURL(/\/postfach\/eingang$/);
    await context.close();
  });

  it('refuses agency addresses with the reason, and answers the same for a new and an existing mailbox', async () => {
    const { context, page } = await freshPage();
    const register = async (address: string) => {
      await page.goto(`http://127.0.0.1:${gw.portalPort}/registrieren`);
      await page.getByLabel('E-Mail-Adresse').fill(address);
      await page.getByRole('button', { name: 'Postfach anfordern' }).click();
      await page.locator('main').waitFor();
      return ((await page.locator('main').textContent()) ?? '').replace(/\s+/g, ' ');
    };
    const agency = await register('poststelle@behoerde.example');
    assert.match(agency, /gehört zu einer angeschlossenen Behörde/);
    await keepScreenshot(page, 'abuse-register-agency');

    const forNew = await register('frisch@example.org');
    const forExisting = await register('neu@example.org'); // has a mailbox since the test before
    assert.equal(forExisting, forNew, 'the page does not tell which address has a mailbox');
    // The mails do: a new link for the new address, "you have one already" for the existing one.
    await awaitMailMatch('the registration link', gw.smarthost.messages, 'frisch@example.org', /\/aktivieren\//, seen);
    await awaitMailMatch(
      'the existing-mailbox mail',
      gw.smarthost.messages,
      'neu@example.org',
      /bereits ein Postfach/,
      seen,
    );
    await context.close();
  });

  it('gives a new session id at login, and a session ends after its idle time', async () => {
    const { context, page } = await freshPage();
    const portal = `http://127.0.0.1:${gw.portalPort}`;
    // A session id planted before login (fixation) is not the one the login gives.
    await context.addCookies([{ name: 'smgw-session', value: 'A'.repeat(43), url: portal }]);
    await page.goto(`${portal}/anmelden`);
    await page.getByLabel('E-Mail-Adresse').fill('neu@example.org');
    await page.getByLabel('Passwort').fill(PASSWORD);
    await page.getByRole('button', { name: 'Anmelden' }).click();
    await page.waitForURL(/\/postfach\/eingang$/);
    const session = (await context.cookies(portal)).find((c) => c.name === 'smgw-session');
    assert.ok(session && session.value !== 'A'.repeat(43), 'a new session id');
    assert.equal(session?.httpOnly, true);
    assert.equal(session?.sameSite, 'Strict');

    // Idle past SMGW_PORTAL_SESSION_IDLE: the next request finds no session.
    await new Promise((resolve) => setTimeout(resolve, (IDLE_SECONDS + 2) * 1000));
    await page.goto(`${portal}/postfach/eingang`);
    await page.waitForURL(/\/anmelden/);
    await context.close();
  });

  it('counts Sent and Trash against the quota and bounces an agency message that does not fit', async () => {
    const citizen = 'voll@example.org';
    const bulky = (tag: string) => ({
      subject: `Akte ${tag}`,
      text: 'Anbei die Akte.',
      attachments: [{ filename: `akte-${tag}.bin`, content: Buffer.alloc(110_000, 0x41) }],
    });
    await agencySends(gw, citizen, bulky('eins'));
    const { link, pin } = await linkAndPin(gw, citizen, seen);
    const { context, page } = await freshPage();
    await activate(page, link, pin);
    await page.waitForURL(/\/postfach\/eingang$/);

    // A reply with an attachment lands in Sent; the original goes to the trash. Both still count.
    await page.getByRole('link', { name: /Akte eins/ }).click();
    await page.getByRole('link', { name: 'Antworten' }).click();
    await page.getByLabel('Nachricht').fill('Meine Unterlagen anbei.');
    await page.getByLabel('Anhänge (freiwillig)').setInputFiles({
      name: 'unterlagen.txt',
      mimeType: 'text/plain',
      buffer: Buffer.alloc(60_000, 0x42),
    });
    await page.getByRole('button', { name: 'Senden' }).click();
    await page.waitForURL(/\/schreiben\/gesendet/);
    await page.goto(`http://127.0.0.1:${gw.portalPort}/postfach/eingang`);
    await page.getByRole('link', { name: /Akte eins/ }).click();
    await page.getByRole('button', { name: 'In den Papierkorb' }).click();
    await page.goto(`http://127.0.0.1:${gw.portalPort}/postfach/papierkorb`);
    const usage = /([\d,]+) MB von ([\d,]+) MB belegt/.exec((await page.locator('body').textContent()) ?? '');
    assert.ok(usage, 'the quota bar says how much is used');
    assert.ok(Number(usage[1]?.replace(',', '.')) >= 0.2, `Sent and Trash count: ${usage[0]}`);
    await keepScreenshot(page, 'abuse-quota');

    // The next message from the agency does not fit: a DSN to the agency, a notice to the citizen, nothing stored.
    await agencySends(gw, citizen, bulky('zwei'));
    await waitFor('the DSN at the agency', async () => {
      for (const m of gw.relay.messages) {
        if (m.rcptTo.includes(AGENCY) && /Postfach voll|mailbox full/i.test(m.raw.toString('latin1'))) return m;
      }
      return undefined;
    });
    const notice = await awaitMailMatch(
      'the notice to make room',
      gw.smarthost.messages,
      citizen,
      /Platz zu schaffen/,
      seen,
    );
    assert.doesNotMatch(await mailText(notice.mail), /Akte zwei/, 'the notice names no content');
    await page.goto(`http://127.0.0.1:${gw.portalPort}/postfach/eingang`);
    assert.equal(await page.getByRole('link', { name: /Akte zwei/ }).count(), 0, 'not stored');
    await context.close();
  });
});
