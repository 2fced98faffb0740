// Logging in and out of the portal: the session is rotated at login, ends when idle or too old, ends everywhere on
// request or when the mailbox is locked or deleted; wrong passwords lock the login per mailbox and per client; an
// unknown address is answered exactly like a wrong password.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { withTransaction } from '@smgw/db';
import {
  deleteMailbox,
  ensureMailbox,
  listMailboxAudit,
  setMailboxLocked,
  setMailboxPassword,
} from '@smgw/mailbox-store';
import { hashPassword } from '@smgw/submission-accounts';
import type { FastifyInstance, InjectOptions } from 'fastify';
import type { Redis } from 'ioredis';
import { limitKey, limitKeySecretFrom } from '../src/portal/limits.ts';
import { createSessionStore, sessionKey } from '../src/portal/session.ts';
import {
  activeMailbox,
  Browser,
  loggedInBrowser,
  logIn,
  portalWorldPerSuite,
  uniqueAddress,
  withoutCsrfToken,
} from './portal-world.ts';

const PASSWORD = 'correct horse battery staple';
const MINUTE = 60_000;

const newAddress = () => uniqueAddress('user');

describe('portal login and sessions', () => {
  // Limits are per client: every test its own counters (portalWorldPerSuite clears them).
  const world = portalWorldPerSuite();

  const inboxStatus = async (browser: Browser) => (await browser.get('/postfach/eingang')).status;

  it('logs in with the right password: a new session, the inbox, last login and an audit entry', async () => {
    const address = newAddress();
    const mailbox = await activeMailbox(world, address, PASSWORD);
    const browser = world.browser();
    assert.equal((await browser.get('/postfach/eingang')).location, '/anmelden');
    const page = await logIn(browser, address.toUpperCase(), PASSWORD);
    assert.equal(page.status, 303);
    assert.equal(page.location, '/postfach/eingang');
    assert.equal(await inboxStatus(browser), 200);
    assert.equal((await browser.get('/')).location, '/postfach/eingang');
    const { rows } = await world.db.pool.query('select last_login_at from mailboxes where id = $1', [mailbox.id]);
    assert.deepEqual(rows[0].last_login_at, world.clock.now());
    const audit = await listMailboxAudit(world.db.pool, address);
    assert.ok(audit.some((e) => e.event === 'mailbox.logged-in' && e.actor === 'portal'));
  });

  it('rotates the session at login: a planted or earlier session id is worthless afterwards', async () => {
    const address = newAddress();
    await activeMailbox(world, address, PASSWORD);
    const browser = world.browser();
    // An attacker plants a session id before the victim logs in (fixation).
    browser.cookies.set('smgw-session', 'A'.repeat(43));
    await logIn(browser, address, PASSWORD);
    const first = browser.cookies.get('smgw-session') as string;
    assert.notEqual(first, 'A'.repeat(43));
    assert.match(first, /^[A-Za-z0-9_-]{43}$/);
    // Logging in again (same browser, a form from an open tab) rotates again; the earlier id no longer works.
    await browser.get('/konto');
    assert.equal((await browser.post('/anmelden', { address, password: PASSWORD })).status, 303);
    const second = browser.cookies.get('smgw-session') as string;
    assert.notEqual(second, first);
    const old = world.browser();
    old.cookies.set('smgw-session', first);
    assert.equal((await old.get('/postfach/eingang')).location, '/anmelden');
    assert.equal(await inboxStatus(browser), 200);
  });

  it('keeps only the SHA-256 of the session id in Redis', async () => {
    const address = newAddress();
    const { browser } = await loggedInBrowser(world, address, PASSWORD);
    const id = browser.cookies.get('smgw-session') as string;
    const keys = await world.redis.keys(`${world.settings.redisPrefix}portal:session:*`);
    assert.equal(
      keys.some((k) => k.includes(id)),
      false,
    );
    for (const key of keys) assert.equal((await world.redis.get(key))?.includes(id), false);
  });

  it("counts an address's wrong passwords under a name nobody can test a guessed address against without the master key", async () => {
    const address = newAddress();
    await activeMailbox(world, address, PASSWORD);
    assert.equal((await logIn(world.browser(), address, 'a wrong password')).status, 401);
    const prefix = world.settings.redisPrefix;
    const names = await world.redis.keys(`${prefix}portal:limit:loginPerMailbox:*`);
    const secret = limitKeySecretFrom(world.db.keys.masterKey);
    assert.ok(names.includes(limitKey(prefix, secret, 'loginPerMailbox', address)), 'counted under the keyed name');
    // Not the address, not its plain SHA-256 (what Redis held before), not the name under another master key.
    const plainHash = `${prefix}portal:limit:loginPerMailbox:${createHash('sha256').update(address).digest('hex')}`;
    const otherKey = limitKey(prefix, limitKeySecretFrom(Buffer.alloc(32, 9)), 'loginPerMailbox', address);
    for (const guess of [plainHash, otherKey]) assert.ok(!names.includes(guess), guess);
    assert.ok(!names.some((name) => name.includes(address)));
  });

  it('ends a session after 30 minutes without a request, and not before', async () => {
    const address = newAddress();
    const { browser } = await loggedInBrowser(world, address, PASSWORD);
    world.clock.advance(29 * MINUTE);
    assert.equal(await inboxStatus(browser), 200); // a request: the idle time starts again
    world.clock.advance(29 * MINUTE);
    assert.equal(await inboxStatus(browser), 200);
    world.clock.advance(30 * MINUTE);
    assert.equal((await browser.get('/postfach/eingang')).location, '/anmelden');
    assert.equal(browser.cookies.has('smgw-session'), false);
  });

  it('ends a session 12 hours after login however active it is', async () => {
    const address = newAddress();
    const { browser } = await loggedInBrowser(world, address, PASSWORD);
    for (let elapsed = 0; elapsed < 12 * 60 - 20; elapsed += 20) {
      world.clock.advance(20 * MINUTE);
      assert.equal(await inboxStatus(browser), 200, `after ${elapsed + 20} minutes`);
    }
    world.clock.advance(20 * MINUTE);
    assert.equal((await browser.get('/postfach/eingang')).location, '/anmelden');
  });

  it('logs out (POST with the form token): the session is gone on the server', async () => {
    const address = newAddress();
    const { browser } = await loggedInBrowser(world, address, PASSWORD);
    const id = browser.cookies.get('smgw-session') as string;
    await browser.get('/postfach/eingang');
    const out = await browser.post('/abmelden');
    assert.equal(out.status, 303);
    assert.equal(out.location, '/anmelden?abgemeldet=1');
    assert.match((await browser.get(out.location)).body, /Sie sind abgemeldet/);
    const replay = world.browser();
    replay.cookies.set('smgw-session', id);
    assert.equal((await replay.get('/postfach/eingang')).location, '/anmelden');
  });

  it('logs out everywhere from /konto: every session of the mailbox ends, other mailboxes keep theirs', async () => {
    const address = newAddress();
    await activeMailbox(world, address, PASSWORD);
    const other = newAddress();
    await activeMailbox(world, other, PASSWORD);
    const [laptop, phone, neighbour] = [world.browser(), world.browser('192.0.2.10'), world.browser()];
    await logIn(laptop, address, PASSWORD);
    await logIn(phone, address, PASSWORD);
    await logIn(neighbour, other, PASSWORD);
    const konto = await laptop.get('/konto');
    assert.match(konto.body, /Überall abmelden/);
    const out = await laptop.post('/konto/ueberall-abmelden');
    assert.equal(out.status, 303);
    assert.equal((await laptop.get('/postfach/eingang')).location, '/anmelden');
    assert.equal((await phone.get('/postfach/eingang')).location, '/anmelden');
    assert.equal(await inboxStatus(neighbour), 200);
    const audit = await listMailboxAudit(world.db.pool, address);
    assert.ok(audit.some((e) => e.event === 'mailbox.logged-out-everywhere'));
  });

  it('does not bring back a session that "log out everywhere" ended while one of its requests was in flight', async () => {
    const address = newAddress();
    const { mailbox, browser } = await loggedInBrowser(world, address, PASSWORD);
    const cookieId = browser.cookies.get('smgw-session') as string;
    const options = {
      prefix: world.settings.redisPrefix,
      idleMs: world.settings.sessionIdleMs,
      maxMs: world.settings.sessionMaxMs,
      now: world.clock.now,
    };
    const owner = createSessionStore({ ...options, redis: world.redis });
    // The request has read its session when the owner logs out everywhere, then refreshes it.
    const inFlight = createSessionStore({
      ...options,
      redis: afterFirstRead(world.redis, () => owner.destroyAllOf(mailbox.id)),
    });
    assert.equal(await inFlight.resolve(cookieId), undefined);
    assert.equal((await browser.get('/postfach/eingang')).location, '/anmelden');
    assert.equal(await world.redis.exists(`${world.settings.redisPrefix}portal:session:${sessionKey(cookieId)}`), 0);
  });

  it('ends the sessions of a mailbox an operator locks, and refuses its login with a clear message', async () => {
    const address = newAddress();
    const { mailbox, browser } = await loggedInBrowser(world, address, PASSWORD);
    const id = browser.cookies.get('smgw-session') as string;
    await setMailboxLocked(world.db.pool, mailbox.id, true, 'admin:test', world.clock.now());
    assert.equal((await browser.get('/postfach/eingang')).location, '/anmelden');
    // Unlocking does not bring the ended session back.
    await setMailboxLocked(world.db.pool, mailbox.id, false, 'admin:test', world.clock.now());
    const replay = world.browser();
    replay.cookies.set('smgw-session', id);
    assert.equal((await replay.get('/postfach/eingang')).location, '/anmelden');
    await setMailboxLocked(world.db.pool, mailbox.id, true, 'admin:test', world.clock.now());
    const locked = await logIn(world.browser(), address, PASSWORD);
    assert.equal(locked.status, 403);
    assert.match(locked.body, /Dieses Postfach ist gesperrt/);
    const wrong = await logIn(world.browser(), address, 'wrong password for the lock');
    assert.equal(wrong.status, 401);
  });

  it('ends a session that made no request while its mailbox was locked: an unlock does not bring it back', async () => {
    // An operator locks a mailbox on a suspected takeover and unlocks it for its owner; the intruder's browser sent
    // nothing in between, so no request saw the lock.
    const address = newAddress();
    const { mailbox, browser: intruder } = await loggedInBrowser(world, address, PASSWORD);
    await setMailboxLocked(world.db.pool, mailbox.id, true, 'admin:test', world.clock.now());
    world.clock.advance(MINUTE);
    await setMailboxLocked(world.db.pool, mailbox.id, false, 'admin:test', world.clock.now());
    assert.equal((await intruder.get('/postfach/eingang')).location, '/anmelden');
    assert.equal(intruder.cookies.has('smgw-session'), false);
    // A login after the unlock is a new session and stays.
    const owner = world.browser('192.0.2.20');
    assert.equal((await logIn(owner, address, PASSWORD)).status, 303);
    assert.equal(await inboxStatus(owner), 200);
    assert.equal(await inboxStatus(owner), 200);
  });

  it('ends a session opened before a new password even when nothing ended it at the change (a crash after the commit)', async () => {
    const address = newAddress();
    const { mailbox, browser } = await loggedInBrowser(world, address, PASSWORD);
    world.clock.advance(MINUTE);
    // The password as activation sets it, without the sessions' end that follows the commit there.
    await setMailboxPassword(
      world.db.pool,
      mailbox.id,
      await hashPassword('a new password, set elsewhere'),
      world.clock.now(),
    );
    assert.equal((await browser.get('/postfach/eingang')).location, '/anmelden');
  });

  it('ends the sessions of a deleted mailbox', async () => {
    const address = newAddress();
    const { mailbox, browser } = await loggedInBrowser(world, address, PASSWORD);
    await withTransaction(world.db.pool, (c) => deleteMailbox(c, mailbox.id));
    assert.equal((await browser.get('/postfach/eingang')).location, '/anmelden');
    const keys = await world.redis.smembers(`${world.settings.redisPrefix}portal:mailbox-sessions:${mailbox.id}`);
    assert.deepEqual(keys, []);
  });

  it('answers an unknown address, a passive mailbox and a wrong password alike (status and page)', async () => {
    const address = newAddress();
    await activeMailbox(world, address, PASSWORD);
    const passive = newAddress();
    await ensureMailbox(world.db.pool, passive, world.mailboxKeys);
    const answers = [];
    for (const [who, password] of [
      [address, 'a wrong password here'],
      [newAddress(), 'a wrong password here'],
      [passive, 'a wrong password here'],
    ] as const) {
      const page = await logIn(world.browser(`203.0.113.${answers.length + 1}`), who, password);
      answers.push({ status: page.status, body: withoutCsrfToken(page.body).replace(who, 'ADDRESS') });
    }
    assert.equal(answers[0]?.status, 401);
    assert.deepEqual(answers[1], answers[0]);
    assert.deepEqual(answers[2], answers[0]);
  });

  it('locks the login of an address after 10 wrong passwords, even with the right one, and says so', async () => {
    const address = newAddress();
    await activeMailbox(world, address, PASSWORD);
    for (let i = 0; i < 9; i++) {
      const page = await logIn(world.browser(`198.51.100.${i + 1}`), address, `wrong password ${i}!`);
      assert.equal(page.status, 401, `attempt ${i + 1}`);
    }
    const tenth = await logIn(world.browser('198.51.100.100'), address, 'wrong password 10!');
    assert.equal(tenth.status, 429);
    assert.match(tenth.body, /Zu viele falsche Anmeldeversuche/);
    assert.ok(Number(tenth.headers['retry-after']) > 0);
    const right = await logIn(world.browser('198.51.100.101'), address, PASSWORD);
    assert.equal(right.status, 429);
    const audit = await listMailboxAudit(world.db.pool, address);
    assert.equal(audit.filter((e) => e.event === 'mailbox.login-locked-out').length, 1);
    // The same for an address without a mailbox: the lock-out tells nothing either.
    const unknown = newAddress();
    for (let i = 0; i < 9; i++) await logIn(world.browser(`198.51.100.${i + 1}`), unknown, `wrong password ${i}!`);
    assert.equal((await logIn(world.browser('198.51.100.100'), unknown, 'x')).status, 429);
  });

  it('checks no more than 10 passwords for an address from a burst of guesses sent at once', async () => {
    const address = newAddress();
    await activeMailbox(world, address, PASSWORD);
    const guesser = world.browser('203.0.113.7');
    await guesser.get('/anmelden');
    const pages = await Promise.all(
      Array.from({ length: 40 }, (_, i) => guesser.post('/anmelden', { address, password: `wrong guess ${i}!` })),
    );
    // Nine answered "wrong", the tenth "locked out", the others refused without their password being checked.
    assert.equal(pages.filter((p) => p.status === 401).length, 9);
    assert.equal(pages.filter((p) => p.status === 429).length, 31);
    assert.equal((await logIn(world.browser('203.0.113.8'), address, PASSWORD)).status, 429);
    const audit = await listMailboxAudit(world.db.pool, address);
    assert.equal(audit.filter((e) => e.event === 'mailbox.login-locked-out').length, 1);
    // The client has 10 wrong passwords counted, not 40: 20 more to other addresses are still answered.
    for (let i = 0; i < 19; i++) assert.equal((await logIn(guesser, newAddress(), 'Sommer2024!')).status, 401);
  });

  it('keeps the wrong passwords counted for an address when the right one is given between them', async () => {
    const address = newAddress();
    await activeMailbox(world, address, PASSWORD);
    for (let i = 0; i < 9; i++) await logIn(world.browser(`198.51.100.${i + 1}`), address, `wrong password ${i}!`);
    assert.equal((await logIn(world.browser('198.51.100.50'), address, PASSWORD)).status, 303);
    assert.equal((await logIn(world.browser('198.51.100.51'), address, 'wrong password 10!')).status, 429);
  });

  it('locks a client out after 30 wrong passwords over any addresses (password spraying)', async () => {
    const address = newAddress();
    await activeMailbox(world, address, PASSWORD);
    const sprayer = world.browser('192.0.2.99');
    for (let i = 0; i < 29; i++) {
      const page = await logIn(sprayer, newAddress(), 'Sommer2024!');
      assert.equal(page.status, 401, `attempt ${i + 1}`);
    }
    assert.equal((await logIn(sprayer, newAddress(), 'Sommer2024!')).status, 429);
    const page = await logIn(sprayer, address, PASSWORD);
    assert.equal(page.status, 429);
    assert.match(page.body, /Zu viele falsche Anmeldeversuche/);
    // Another client is not affected.
    assert.equal((await logIn(world.browser('192.0.2.100'), address, PASSWORD)).status, 303);
  });

  it('counts an IPv6 client by its /64', async () => {
    const address = newAddress();
    await activeMailbox(world, address, PASSWORD);
    for (let i = 0; i < 30; i++) {
      await logIn(world.browser(`2001:db8:1:2::${(i + 1).toString(16)}`), newAddress(), 'Sommer2024!');
    }
    assert.equal((await logIn(world.browser('2001:db8:1:2:ffff::1'), address, PASSWORD)).status, 429);
    assert.equal((await logIn(world.browser('2001:db8:1:3::1'), address, PASSWORD)).status, 303);
  });

  it('never writes passwords or session ids into the log', async () => {
    const address = newAddress();
    await activeMailbox(world, address, PASSWORD);
    const browser = world.browser();
    await logIn(browser, address, 'a wrong password that must not be logged');
    await logIn(browser, address, PASSWORD);
    const id = browser.cookies.get('smgw-session') as string;
    const log = world.logLines.join('\n');
    for (const secret of [PASSWORD, 'a wrong password that must not be logged', id]) {
      assert.equal(log.includes(secret), false, 'a secret in the log');
    }
    assert.ok(world.logLines.some((l) => l.includes('PORTAL_LOGGED_IN')));
  });
});

describe('portal login behind a reverse proxy (SMGW_PORTAL_TRUST_PROXY)', () => {
  const INGRESS = '10.42.0.7';
  const world = portalWorldPerSuite({ settings: { trustProxy: ['10.42.0.0/16'] } });

  /** A browser whose requests come from `peer`, naming `client` in X-Forwarded-For (as ingress-nginx does). */
  const via = (peer: string, client: string) => {
    const app = world.app;
    const proxied = {
      inject: (opts: InjectOptions) =>
        app.inject({ ...opts, headers: { ...(opts.headers ?? {}), 'x-forwarded-for': client } }),
    } as unknown as FastifyInstance;
    return new Browser(proxied, peer);
  };

  it("counts wrong passwords per forwarded client: a stranger's do not lock out others behind the same proxy", async () => {
    const address = newAddress();
    await activeMailbox(world, address, PASSWORD);
    const sprayer = via(INGRESS, '198.51.100.66');
    for (let i = 0; i < 29; i++) assert.equal((await logIn(sprayer, newAddress(), 'Sommer2024!')).status, 401);
    assert.equal((await logIn(sprayer, newAddress(), 'Sommer2024!')).status, 429);
    assert.equal((await logIn(via(INGRESS, '203.0.113.5'), address, PASSWORD)).status, 303);
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', async () => {
    const address = newAddress();
    await activeMailbox(world, address, PASSWORD);
    for (let i = 0; i < 30; i++) await logIn(via('192.0.2.77', `198.51.100.${i + 1}`), newAddress(), 'Sommer2024!');
    assert.equal((await logIn(via('192.0.2.77', '203.0.113.9'), address, PASSWORD)).status, 429);
  });
});

/** The real Redis, with `interleave` run (once) after the first GET has answered and before its caller goes on. */
function afterFirstRead(redis: Redis, interleave: () => Promise<unknown>): Redis {
  let done = false;
  return new Proxy(redis, {
    get(target, name) {
      if (name === 'get' && !done) {
        done = true;
        return async (key: string) => {
          const value = await target.get(key);
          await interleave();
          return value;
        };
      }
      const value = Reflect.get(target, name, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
