// The forms that cannot be undone or hand the mailbox's mail to someone else ask for the password again: deleting the
// mailbox (every message, its key) and uploading a key (mail is encrypted to it instead of coming to the portal). A
// stolen session or an unlocked shared computer does not suffice. The password asked again is checked under the
// login's limits (per address, per client): asking again is no second way to guess it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { findMailboxById, listMailboxAudit } from '@smgw/mailbox-store';
import { type Browser, loggedInBrowser, logIn, pageOf, portalWorldPerSuite, uniqueAddress } from './portal-world.ts';

const PASSWORD = 'correct horse battery staple';
const newAddress = () => uniqueAddress('reauth');

describe('asking for the password again', () => {
  const world = portalWorldPerSuite();

  async function deleteForm(browser: Browser, fields: Record<string, string>) {
    await browser.get('/konto/loeschen');
    return browser.post('/konto/loeschen', fields);
  }

  /** A multipart upload of a file that is no key (the password is checked before the file is looked at). */
  async function uploadKey(browser: Browser, password: string | undefined) {
    await browser.get('/schluessel');
    const boundary = `----test${randomBytes(8).toString('hex')}`;
    const field = (name: string, value: string) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
    const payload = Buffer.from(
      field('_csrf', browser.csrfToken ?? '') +
        (password === undefined ? '' : field('password', password)) +
        `--${boundary}\r\nContent-Disposition: form-data; name="key"; filename="key.pem"\r\n` +
        'Content-Type: application/octet-stream\r\n\r\nkein Schlüssel\r\n' +
        `--${boundary}--\r\n`,
    );
    const res = await world.app.inject({
      method: 'POST',
      url: '/schluessel',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, cookie: browser.cookieHeader() },
      payload,
    });
    return pageOf(res);
  }

  it('keeps the mailbox when the deletion form comes without the password or with a wrong one', async () => {
    const { mailbox, browser } = await loggedInBrowser(world, newAddress(), PASSWORD);
    const form = await browser.get('/konto/loeschen');
    assert.match(form.body, /name="password" type="password"/);
    assert.match(form.body, /autocomplete="current-password"/);

    const without = await deleteForm(browser, { address: mailbox.address, confirm: 'ja' });
    assert.equal(without.status, 400);
    assert.match(without.body, /id="field-password-error"/);
    const wrong = await deleteForm(browser, { address: mailbox.address, confirm: 'ja', password: 'not the password' });
    assert.equal(wrong.status, 400);
    assert.match(wrong.body, /Das Passwort ist falsch/);
    assert.ok(await findMailboxById(world.db.pool, mailbox.id), 'the mailbox is still there');

    const right = await deleteForm(browser, { address: mailbox.address, confirm: 'ja', password: PASSWORD });
    assert.equal(right.status, 200);
    assert.equal(await findMailboxById(world.db.pool, mailbox.id), undefined);
  });

  it('counts wrong passwords on the deletion form against the login limits of the address', async () => {
    const { mailbox, browser } = await loggedInBrowser(world, newAddress(), PASSWORD, '198.51.100.20');
    const max = 10; // LIMIT_RULES.loginPerMailbox
    for (let i = 1; i < max; i++) {
      const page = await deleteForm(browser, { address: mailbox.address, confirm: 'ja', password: `wrong ${i}` });
      assert.equal(page.status, 400, `attempt ${i}`);
    }
    const last = await deleteForm(browser, { address: mailbox.address, confirm: 'ja', password: 'wrong 10' });
    assert.equal(last.status, 429, 'the tenth wrong password locks the address');
    assert.match(last.body, /Zu viele falsche/);
    // Locked now: not even the right password deletes, and the login form is locked for the address too.
    const right = await deleteForm(browser, { address: mailbox.address, confirm: 'ja', password: PASSWORD });
    assert.equal(right.status, 429);
    assert.ok(await findMailboxById(world.db.pool, mailbox.id));
    assert.equal((await logIn(world.browser('203.0.113.30'), mailbox.address, PASSWORD)).status, 429);
    const audit = await listMailboxAudit(world.db.pool, mailbox.address);
    assert.ok(audit.some((entry) => entry.event === 'mailbox.login-locked-out'));
    assert.ok(world.logLines.some((line) => line.includes('"PORTAL_REAUTH_FAILED"')));
  });

  it('counts wrong passwords on the deletion form against the client as the login does', async () => {
    const { mailbox, browser } = await loggedInBrowser(world, newAddress(), PASSWORD, '198.51.100.21');
    // The client's 30 wrong passwords spread over addresses (below each address's 10): the 31st is refused.
    for (let i = 0; i < 30; i++) {
      const page = await logIn(world.browser('198.51.100.21'), newAddress(), 'Sommer2024!');
      assert.equal(page.status, i < 29 ? 401 : 429);
    }
    const page = await deleteForm(browser, { address: mailbox.address, confirm: 'ja', password: PASSWORD });
    assert.equal(page.status, 429);
    assert.ok(await findMailboxById(world.db.pool, mailbox.id));
  });

  it('takes no key upload without the password, nor with a wrong one', async () => {
    const { mailbox, browser } = await loggedInBrowser(world, newAddress(), PASSWORD);
    const form = await browser.get('/schluessel');
    assert.match(form.body, /name="password" type="password"/);

    const without = await uploadKey(browser, undefined);
    assert.equal(without.status, 400);
    assert.match(without.body, /id="field-password-error"/);
    assert.doesNotMatch(without.body, /weder ein lesbares Zertifikat/, 'the file is not looked at');
    const wrong = await uploadKey(browser, 'not the password');
    assert.equal(wrong.status, 400);
    assert.match(wrong.body, /Das Passwort ist falsch/);
    assert.doesNotMatch(wrong.body, /weder ein lesbares Zertifikat/);
    // With the password the file is looked at (and this one is no key).
    const right = await uploadKey(browser, PASSWORD);
    assert.equal(right.status, 422);
    assert.match(right.body, /weder ein lesbares Zertifikat/);
    assert.ok(world.logLines.some((line) => line.includes('"PORTAL_REAUTH_FAILED"') && line.includes(mailbox.id)));
  });
});
