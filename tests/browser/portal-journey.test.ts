// The Messenger portal in a real browser (Debian's chromium, driven by playwright-core), against the whole gateway
// as processes: an agency writes to a citizen without a key → the citizen gets the activation link and, later, the
// PIN; the agency gets the PIN notice → the citizen activates, reads, downloads the attachment, replies → the reply
// reaches the agency's relay after scan. Then an XSS corpus in every place a stranger controls, axe-core on every
// page, a cross-site form post, and a database dump without the portal message's text. Screenshots of each page are
// kept under .smgw/artifacts/portal/.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dumpHolds, dumpTestSchema, type TestGateway, waitFor } from '@smgw/testing';
import { simpleParser } from 'mailparser';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import {
  keepScreenshot,
  launchBrowser,
  type ScriptWatch,
  seriousAccessibilityViolations,
  watchedContext,
} from './browser.ts';
import { AGENCY, agencySends, mailText, startPortalGateway } from './portal-gateway.ts';
import { XSS_LINES, XSS_PAYLOADS } from './xss-corpus.ts';

const CITIZEN = 'buerger@example.org';
const PASSWORD = 'Sonnenblumen wachsen im Juli 42 Mal';
const ATTACHMENT = Buffer.from('%PDF-1.4\n% Bescheid Nr. 4711\n');
const SECRET_TEXT = 'Steuerbescheid Aktenzeichen 4711-geheim';

describe('Messenger portal in the browser', () => {
  let gw: TestGateway;
  let browser: Browser;
  let context: BrowserContext;
  let watch: ScriptWatch;
  let page: Page;
  let portal: string;

  /** axe-core finds nothing serious on the page; its screenshot is kept. */
  async function checkPage(name: string): Promise<void> {
    await keepScreenshot(page, name);
    assert.deepEqual(await seriousAccessibilityViolations(page), [], `accessibility of ${name}`);
  }

  before(async () => {
    gw = await startPortalGateway();
    portal = `http://127.0.0.1:${gw.portalPort}`;
    browser = await launchBrowser();
    ({ context, watch } = await watchedContext(browser));
    context.setDefaultTimeout(20_000);
    page = await context.newPage();
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
  });

  it('walks the whole journey: mails with link and PIN, activation, reading, download, reply to the agency', async () => {
    await agencySends(gw, CITIZEN, {
      subject: 'Ihr Bescheid',
      text: `Guten Tag,\n\nanbei Ihr Bescheid.\n\n${SECRET_TEXT}\n`,
      attachments: [{ filename: 'Bescheid.pdf', content: ATTACHMENT, contentType: 'application/pdf' }],
    });

    // The citizen: the link at once, the PIN in a second mail; neither carries the message.
    const linkMail = await waitFor('the activation link mail', () =>
      gw.smarthost.messages.find((m) => m.rcptTo.includes(CITIZEN) && m.raw.includes('/aktivieren/')),
    );
    const pinMail = await waitFor('the PIN mail', async () => {
      for (const m of gw.smarthost.messages) if (m !== linkMail && /\b\d{8}\b/.test(await mailText(m))) return m;
      return undefined;
    });
    // The agency: the same PIN to pass on by phone.
    const senderNotice = await waitFor('the PIN notice to the sender', async () => {
      for (const m of gw.relay.messages) if (m.rcptTo.includes(AGENCY) && /\b\d{8}\b/.test(await mailText(m))) return m;
      return undefined;
    });
    for (const mail of [linkMail, pinMail, senderNotice]) {
      const body = mail.raw.toString('latin1');
      assert.ok(!body.includes('4711'), 'no content of the message in a notification');
      assert.ok(!body.includes('Ihr Bescheid'), 'not even its subject');
    }
    const link = /https?:\/\/[^\s]+\/aktivieren\/[A-Za-z0-9_-]{43}/.exec(await mailText(linkMail))?.[0];
    assert.ok(link?.startsWith(portal), `a link to this portal: ${link}`);
    const pin = /\b(\d{8})\b/.exec(await mailText(pinMail))?.[1];
    assert.equal(/\b(\d{8})\b/.exec(await mailText(senderNotice))?.[1], pin, 'the sender was given the same PIN');

    await page.goto(link as string);
    await checkPage('activation');
    await page.getByLabel('PIN (8 Ziffern)').fill(pin as string);
    await page.getByLabel('Neues Passwort', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Neues Passwort wiederholen').fill(PASSWORD);
    await page.getByRole('button', { name: 'Aktivieren' }).click();
    await page.waitForURL(`${portal}/postfach/eingang`);
    await checkPage('inbox');

    await page.getByRole('link', { name: /Ihr Bescheid/ }).click();
    await page.waitForURL(/\/nachricht\/[0-9a-f-]{36}$/);
    assert.ok((await page.content()).includes(SECRET_TEXT), 'the text is shown');
    await checkPage('message');

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: /Bescheid\.pdf/ }).click(),
    ]);
    assert.equal(download.suggestedFilename(), 'Bescheid.pdf');
    const stream = await download.createReadStream();
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    assert.deepEqual(Buffer.concat(chunks), ATTACHMENT, 'the attachment byte for byte');

    await page.getByRole('link', { name: 'Antworten' }).click();
    await checkPage('reply');
    await page.getByLabel('Nachricht').fill('Vielen Dank, ich lege Widerspruch ein.');
    await page.getByRole('button', { name: 'Senden' }).click();
    await page.waitForURL(/\/schreiben\/gesendet/);
    await checkPage('sent-confirmation');

    const reply = await waitFor('the reply at the agency relay', () =>
      gw.relay.messages.find((m) => m.rcptTo.includes(AGENCY) && m.raw.includes('Widerspruch')),
    );
    const parsed = await simpleParser(reply.raw);
    assert.equal(parsed.from?.value[0]?.address, CITIZEN);
    assert.match(String(parsed.headers.get('authentication-results')), /auth=pass/);
    const scanned = await gw.db.pool.query(
      `select 1 from message_events e join messages m on m.id = e.message_id
        where m.mail_from = $1 and e.stage = 'scan' limit 1`,
      [CITIZEN],
    );
    assert.equal(scanned.rowCount, 1, 'the reply passed scan');

    await page.goto(`${portal}/postfach/gesendet`);
    assert.ok((await page.content()).includes('Re: Ihr Bescheid'), 'the reply is in Sent');
    await checkPage('sent');
    assert.deepEqual(watch.ran, []);
  });

  it('never runs a script a stranger put into a body, subject, sender name or attachment name', async () => {
    await agencySends(gw, CITIZEN, {
      from: { name: XSS_LINES[1]?.html ?? '', address: AGENCY },
      subject: `Prüfung ${XSS_LINES[0]?.html}`,
      html: `<p>Prüftext</p>${XSS_PAYLOADS.map((p) => p.html).join('\n')}`,
      text: XSS_PAYLOADS.map((p) => p.html).join('\n'),
      attachments: [{ filename: `${XSS_LINES[2]?.html}.html`, content: `<script>__xss('attachment')</script>` }],
    });
    await waitFor('the login-link notification', () =>
      gw.smarthost.messages.find((m) => m.rcptTo.includes(CITIZEN) && m.raw.includes('/anmelden')),
    );
    await page.goto(`${portal}/postfach/eingang`);
    await checkPage('inbox-with-xss');
    await page.getByRole('link', { name: /Prüfung/ }).click();
    await page.waitForURL(/\/nachricht\/[0-9a-f-]{36}$/);
    const frame = page.frameLocator('iframe');
    await frame.getByText('Prüftext').waitFor();
    await checkPage('message-with-xss');
    // Links in the frame are the remaining way to script: none is javascript:.
    const hrefs = await frame.locator('a').evaluateAll((links) => links.map((a) => a.getAttribute('href') ?? ''));
    assert.deepEqual(
      hrefs.filter((h) => !/^(https?:|mailto:)/i.test(h)),
      [],
      'only http(s) and mailto links',
    );
    await page.waitForTimeout(500); // lets onerror/onload handlers of anything that slipped through fire
    assert.deepEqual(watch.ran, [], 'no planted script ran');
    assert.deepEqual(watch.dialogs, []);
  });

  it('has no serious accessibility violation on any page', async () => {
    for (const [name, path] of [
      ['folder-trash', '/postfach/papierkorb'],
      ['compose', '/schreiben'],
      ['account', '/konto'],
      ['keys', '/schluessel'],
    ] as const) {
      await page.goto(`${portal}${path}`);
      await checkPage(name);
    }
    // A file that is no key: the page with its error beside the field (the password is asked again first).
    await page.locator('#field-key').setInputFiles({
      name: 'kein-schluessel.pem',
      mimeType: 'application/x-pem-file',
      buffer: Buffer.from('kein Schlüssel\n'),
    });
    await page.locator('form[action="/schluessel"] #field-password').fill(PASSWORD);
    await page.locator('form[action="/schluessel"] button[type="submit"]').click();
    await page.waitForSelector('#field-key-error');
    await checkPage('keys-error');
    // The deletion form asks for the password too; a wrong one is shown beside its field.
    await page.goto(`${portal}/konto/loeschen`);
    await page.locator('#field-address').fill(CITIZEN);
    await page.locator('#field-confirm').check();
    await page.locator('#field-password').fill('nicht das Passwort');
    await page.locator('form[action="/konto/loeschen"] button[type="submit"]').click();
    await page.waitForSelector('#field-password-error');
    await checkPage('delete-mailbox-wrong-password');

    const stranger = await browser.newContext({ locale: 'de-DE' });
    page = await stranger.newPage();
    for (const [name, path] of [
      ['login', '/anmelden'],
      ['reactivation', '/reaktivieren'],
      ['registration', '/registrieren'],
      ['agency-registration', '/behoerde-registrieren'],
      ['login-en', '/anmelden?lang=en'],
      ['registration-en', '/registrieren?lang=en'],
      ['dead-link', `/aktivieren/${'A'.repeat(43)}`],
      ['not-found', '/gibt-es-nicht'],
    ] as const) {
      await page.goto(`${portal}${path}`);
      await checkPage(name);
    }
    // The forms with their errors: an agency's address refused with the reason; every field of the agency form.
    await page.goto(`${portal}/registrieren`);
    await page.locator('#field-address').fill(AGENCY);
    await page.locator('form[action="/registrieren"] button[type="submit"]').click();
    await page.waitForSelector('#field-address-error');
    await checkPage('registration-refused');
    await page.goto(`${portal}/behoerde-registrieren`);
    await page.locator('form[action="/behoerde-registrieren"] button[type="submit"]').click();
    await page.waitForSelector('.error-summary');
    await checkPage('agency-registration-errors');
    // And the pages that answer a registration.
    await page.goto(`${portal}/registrieren`);
    await page.locator('#field-address').fill('neu-im-portal@example.net');
    await page.locator('form[action="/registrieren"] button[type="submit"]').click();
    await page.waitForSelector('form[action="/registrieren"]', { state: 'detached' });
    await checkPage('registration-sent');
    await page.goto(`${portal}/behoerde-registrieren`);
    await page.locator('#field-agencyName').fill('Gemeinde Neudorf');
    await page.locator('#field-contactName').fill('Erika Mustermann');
    await page.locator('#field-contactEmail').fill('it@gemeinde-neudorf.example');
    await page.locator('#field-domains').fill('gemeinde-neudorf.example');
    await page.locator('form[action="/behoerde-registrieren"] button[type="submit"]').click();
    await page.waitForSelector('form[action="/behoerde-registrieren"]', { state: 'detached' });
    await checkPage('agency-registration-sent');
    await stranger.close();
    page = await context.newPage();
  });

  it("refuses a form another site posts with the user's cookies, and the user stays logged in", async () => {
    // The attacker's page (another origin) submits the logged-in user's "log out everywhere" form on load.
    const attackerSite = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(
        `<!doctype html><html lang="de"><title>Gewinnspiel</title><body>
         <form id="f" method="post" action="${portal}/konto/ueberall-abmelden">
           <input type="hidden" name="_csrf" value="forged"></form>
         <script>document.getElementById('f').submit()</script></body></html>`,
      );
    });
    await new Promise<void>((resolve) => attackerSite.listen(0, '127.0.0.1', resolve));
    try {
      const attacker = await context.newPage();
      const answer = attacker.waitForResponse((r) => r.url().endsWith('/konto/ueberall-abmelden'));
      await attacker.goto(`http://127.0.0.1:${(attackerSite.address() as AddressInfo).port}/`);
      assert.equal((await answer).status(), 403);
      await attacker.close();
    } finally {
      attackerSite.close();
    }
    await page.goto(`${portal}/postfach/eingang`);
    assert.match(page.url(), /\/postfach\/eingang$/, 'still logged in: the forged form did nothing');
  });

  it('keeps no plaintext of portal messages in a database dump, nor in the blob files', async () => {
    const dump = await dumpTestSchema(gw.db);
    assert.ok(dump.length > 0);
    // The journey's messages are small (at most SMALL_BLOB_BYTES): their contents went through blob_chunks even with
    // SMGW_BLOB_DIR, which the dump holds (bytea as hex: dumpHolds looks for both); larger ones go to the files.
    const { rows } = await gw.db.pool.query('select count(*)::int as n from blob_chunks');
    assert.ok(rows[0].n > 0, 'the messages went through blob_chunks');
    const blobDir = gw.blobDir ?? assert.fail('this gateway keeps blob contents in files');
    const files = (await readdir(blobDir, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
    const stored = Buffer.concat(
      await Promise.all(files.map((entry) => readFile(join(entry.parentPath, entry.name)))),
    ).toString('latin1');
    for (const needle of [SECRET_TEXT, 'Widerspruch', 'Prüftext', 'Bescheid Nr. 4711']) {
      assert.ok(!dumpHolds(dump, needle), `"${needle}" is not in the dump`);
      assert.ok(!stored.includes(Buffer.from(needle).toString('latin1')), `"${needle}" is not in the blob files`);
    }
  });
});
