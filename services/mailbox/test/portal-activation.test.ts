// Activating a mailbox from the link of the activation mail: PIN plus a new password, then logged in. Wrong PINs
// kill the link after SMGW_PIN_MAX_ATTEMPTS (in the database) and block a client after 20 (in Redis, also for PINs
// sent at once); used,
// revoked, expired and unknown links all show the page that offers a new link.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ActivationSecrets,
  ensureMailbox,
  listActivationTokens,
  listMailboxAudit,
  type Mailbox,
  mailboxPasswordHash,
  setMailboxLocked,
} from '@smgw/mailbox-store';
import { verifyPassword } from '@smgw/submission-accounts';
import { liveActivationToken, logIn, type PortalWorld, portalWorldPerSuite, uniqueAddress } from './portal-world.ts';

const NEW_PASSWORD = 'lange Nacht am blauen See';
const DAY = 86_400_000;

const newAddress = () => uniqueAddress('citizen');

/** A passive mailbox with a live activation token, as after a message arrived. */
async function passiveWithLink(world: PortalWorld): Promise<{ mailbox: Mailbox; secrets: ActivationSecrets }> {
  const { mailbox } = await ensureMailbox(world.db.pool, newAddress(), world.mailboxKeys);
  const { secrets } = await liveActivationToken(world, mailbox);
  return { mailbox, secrets };
}

const wrongPin = (pin: string) => String((Number(pin) + 1) % 1e8).padStart(8, '0');

describe('portal activation', () => {
  const world = portalWorldPerSuite();

  it('activates with the right PIN and a strong password: active, token used, audited, logged in', async () => {
    const { mailbox, secrets } = await passiveWithLink(world);
    const browser = world.browser();
    const form = await browser.get(`/aktivieren/${secrets.link}`);
    assert.equal(form.status, 200);
    assert.match(form.body, /<h1>Postfach aktivieren<\/h1>/);
    assert.match(form.body, /<label for="field-pin">/);
    const done = await browser.post(`/aktivieren/${secrets.link}`, {
      pin: secrets.pin,
      password: NEW_PASSWORD,
      passwordRepeat: NEW_PASSWORD,
    });
    assert.equal(done.status, 303);
    assert.equal(done.location, '/postfach/eingang');
    assert.equal((await browser.get('/postfach/eingang')).status, 200);

    const { rows } = await world.db.pool.query('select state from mailboxes where id = $1', [mailbox.id]);
    assert.equal(rows[0].state, 'active');
    const hash = await mailboxPasswordHash(world.db.pool, mailbox.id);
    assert.ok(hash?.startsWith('$argon2id$'));
    assert.ok(await verifyPassword(NEW_PASSWORD, hash as string));
    const [token] = await listActivationTokens(world.db.pool, mailbox.id);
    assert.ok(token?.usedAt);
    const audit = await listMailboxAudit(world.db.pool, mailbox.address);
    assert.ok(audit.some((e) => e.event === 'mailbox.activated'));

    // The link works once; the password works for the login.
    assert.equal((await world.browser().get(`/aktivieren/${secrets.link}`)).status, 410);
    assert.equal((await logIn(world.browser(), mailbox.address, NEW_PASSWORD)).status, 303);
  });

  it('refuses short, weak, address-based and mismatched passwords without spending a PIN attempt', async () => {
    const { mailbox, secrets } = await passiveWithLink(world);
    const browser = world.browser();
    await browser.get(`/aktivieren/${secrets.link}`);
    const local = mailbox.address.split('@')[0] as string;
    for (const [password, repeated, says] of [
      ['kurz', 'kurz', /mindestens 12 Zeichen/],
      ['password1234', 'password1234', /zu leicht zu erraten/],
      [`${local}2026`, `${local}2026`, /zu leicht zu erraten/],
      [NEW_PASSWORD, `${NEW_PASSWORD}!`, /stimmen nicht überein/],
    ] as const) {
      const page = await browser.post(`/aktivieren/${secrets.link}`, {
        pin: secrets.pin,
        password,
        passwordRepeat: repeated,
      });
      assert.equal(page.status, 400, password);
      assert.match(page.body, says);
      assert.match(page.body, /aria-invalid="true"/);
      assert.match(page.body, /aria-describedby="[^"]*-error"/);
    }
    const [token] = await listActivationTokens(world.db.pool, mailbox.id);
    assert.equal(token?.attempts, 0);
    assert.equal(token?.usedAt, null);
  });

  it('kills the link after 5 wrong PINs: then even the right PIN gets the dead-link page', async () => {
    const { mailbox, secrets } = await passiveWithLink(world);
    const browser = world.browser();
    await browser.get(`/aktivieren/${secrets.link}`);
    for (let i = 1; i <= 4; i++) {
      const page = await browser.post(`/aktivieren/${secrets.link}`, {
        pin: wrongPin(secrets.pin),
        password: NEW_PASSWORD,
        passwordRepeat: NEW_PASSWORD,
      });
      assert.equal(page.status, 400, `attempt ${i}`);
      assert.match(page.body, new RegExp(`Noch ${5 - i} Versuche`));
    }
    // The fifth wrong PIN, from somewhere else: the limit is the link's, not the client's.
    const elsewhere = world.browser('192.0.2.55');
    await elsewhere.get(`/aktivieren/${secrets.link}`);
    const dead = await elsewhere.post(`/aktivieren/${secrets.link}`, {
      pin: wrongPin(secrets.pin),
      password: NEW_PASSWORD,
      passwordRepeat: NEW_PASSWORD,
    });
    assert.equal(dead.status, 410);
    assert.match(dead.body, /Link nicht mehr gültig/);
    assert.match(dead.body, /href="\/reaktivieren"/);
    const right = await browser.post(`/aktivieren/${secrets.link}`, {
      pin: secrets.pin,
      password: NEW_PASSWORD,
      passwordRepeat: NEW_PASSWORD,
    });
    assert.equal(right.status, 410);
    const [token] = await listActivationTokens(world.db.pool, mailbox.id);
    assert.ok(token?.revokedAt);
    assert.equal(await mailboxPasswordHash(world.db.pool, mailbox.id), undefined);
  });

  it('blocks a client after 20 wrong PINs over several links, other clients go on', async () => {
    const links = await Promise.all([1, 2, 3, 4, 5].map(() => passiveWithLink(world)));
    const guesser = world.browser('203.0.113.66');
    let wrong = 0;
    for (const { secrets } of links.slice(0, 4)) {
      await guesser.get(`/aktivieren/${secrets.link}`);
      for (let i = 0; i < 5; i++) {
        await guesser.post(`/aktivieren/${secrets.link}`, {
          pin: wrongPin(secrets.pin),
          password: NEW_PASSWORD,
          passwordRepeat: NEW_PASSWORD,
        });
        wrong++;
      }
    }
    assert.equal(wrong, 20);
    const last = links[4] as { mailbox: Mailbox; secrets: ActivationSecrets };
    await guesser.get(`/aktivieren/${last.secrets.link}`);
    const blocked = await guesser.post(`/aktivieren/${last.secrets.link}`, {
      pin: last.secrets.pin,
      password: NEW_PASSWORD,
      passwordRepeat: NEW_PASSWORD,
    });
    assert.equal(blocked.status, 429);
    assert.match(blocked.body, /Zu viele Versuche/);
    const [token] = await listActivationTokens(world.db.pool, last.mailbox.id);
    assert.equal(token?.attempts, 0, 'a blocked client spends no attempt of the link');
    const owner = world.browser('203.0.113.67');
    await owner.get(`/aktivieren/${last.secrets.link}`);
    const ok = await owner.post(`/aktivieren/${last.secrets.link}`, {
      pin: last.secrets.pin,
      password: NEW_PASSWORD,
      passwordRepeat: NEW_PASSWORD,
    });
    assert.equal(ok.status, 303);
  });

  it('checks no more than 20 PINs of a client sent at once over several links', async () => {
    const links = await Promise.all([1, 2, 3, 4, 5].map(() => passiveWithLink(world)));
    const guesser = world.browser('203.0.113.70');
    for (const { secrets } of links) await guesser.get(`/aktivieren/${secrets.link}`);
    const pages = await Promise.all(
      links.flatMap(({ secrets }) =>
        [1, 2, 3, 4, 5].map(() =>
          guesser.post(`/aktivieren/${secrets.link}`, {
            pin: wrongPin(secrets.pin),
            password: NEW_PASSWORD,
            passwordRepeat: NEW_PASSWORD,
          }),
        ),
      ),
    );
    // Five refused unchecked; the one that took the 20th slot may say so too.
    assert.ok(pages.filter((p) => p.status === 429).length >= 5);
    const tokens = await Promise.all(links.map(({ mailbox }) => listActivationTokens(world.db.pool, mailbox.id)));
    const checked = tokens.flat().reduce((sum, token) => sum + token.attempts, 0);
    assert.equal(checked, 20, 'PINs checked against the links');
  });

  it('shows the same dead-link page for an expired, an unknown and a malformed link', async () => {
    const { secrets } = await passiveWithLink(world);
    const pages = [];
    world.clock.advance(15 * DAY);
    try {
      for (const link of [secrets.link, 'A'.repeat(43), 'kaputt']) {
        const page = await world.browser().get(`/aktivieren/${link}`);
        pages.push({ status: page.status, h1: /<h1>(.*)<\/h1>/.exec(page.body)?.[1] });
      }
      const browser = world.browser();
      await browser.get('/anmelden');
      const post = await browser.post(`/aktivieren/${secrets.link}`, {
        pin: secrets.pin,
        password: NEW_PASSWORD,
        passwordRepeat: NEW_PASSWORD,
      });
      assert.equal(post.status, 410);
    } finally {
      world.clock.advance(-15 * DAY);
    }
    for (const page of pages) assert.deepEqual(page, { status: 410, h1: 'Link nicht mehr gültig' });
  });

  it('does not activate a mailbox an operator locked: the lock revoked its link, also for after the unlock', async () => {
    const { mailbox, secrets } = await passiveWithLink(world);
    await setMailboxLocked(world.db.pool, mailbox.id, true, 'admin:test', world.clock.now());
    const browser = world.browser();
    assert.equal((await browser.get(`/aktivieren/${secrets.link}`)).status, 410);
    const [token] = await listActivationTokens(world.db.pool, mailbox.id);
    assert.equal(token?.usedAt, null, 'the token is not spent on a locked mailbox');
    assert.ok(token?.revokedAt, 'the lock revoked it');
    // Unlocked again: the link made before the lock stays dead (the owner asks for a new one).
    await setMailboxLocked(world.db.pool, mailbox.id, false, 'admin:test', world.clock.now());
    assert.equal((await world.browser().get(`/aktivieren/${secrets.link}`)).status, 410);
    assert.equal(browser.cookies.has('smgw-session'), false);
  });

  it('lets exactly one of two simultaneous right answers use the link, and that one set the password', async () => {
    const { mailbox, secrets } = await passiveWithLink(world);
    const [a, b] = [world.browser('192.0.2.1'), world.browser('192.0.2.2')];
    await a.get(`/aktivieren/${secrets.link}`);
    await b.get(`/aktivieren/${secrets.link}`);
    const [first, second] = await Promise.all([
      a.post(`/aktivieren/${secrets.link}`, { pin: secrets.pin, password: NEW_PASSWORD, passwordRepeat: NEW_PASSWORD }),
      b.post(`/aktivieren/${secrets.link}`, {
        pin: secrets.pin,
        password: 'ein anderes langes Passwort',
        passwordRepeat: 'ein anderes langes Passwort',
      }),
    ]);
    assert.deepEqual([first.status, second.status].sort(), [303, 410]);
    const winner = first.status === 303 ? NEW_PASSWORD : 'ein anderes langes Passwort';
    assert.ok(await verifyPassword(winner, (await mailboxPasswordHash(world.db.pool, mailbox.id)) as string));
  });

  it('never writes the password, the PIN or the link into the log', async () => {
    const { secrets } = await passiveWithLink(world);
    const browser = world.browser();
    await browser.get(`/aktivieren/${secrets.link}`);
    await browser.post(`/aktivieren/${secrets.link}`, {
      pin: wrongPin(secrets.pin),
      password: NEW_PASSWORD,
      passwordRepeat: NEW_PASSWORD,
    });
    await browser.post(`/aktivieren/${secrets.link}`, {
      pin: secrets.pin,
      password: NEW_PASSWORD,
      passwordRepeat: NEW_PASSWORD,
    });
    const log = world.logLines.join('\n');
    for (const secret of [NEW_PASSWORD, secrets.pin, wrongPin(secrets.pin), secrets.link]) {
      assert.equal(log.includes(secret), false, 'a secret in the log');
    }
    assert.ok(world.logLines.some((l) => l.includes('"route":"/aktivieren/:token"')));
    assert.ok(world.logLines.some((l) => l.includes('PORTAL_ACTIVATED')));
  });
});
