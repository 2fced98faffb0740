// The portal's defences that hold for every page: CSRF tokens on every POST route (whoever added it), the security
// headers, cookies that are __Host- and Secure behind https, and error pages that show no internals.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { limitKeySecretFrom, subjectName } from '../src/portal/limits.ts';
import { activeMailbox, logIn, type PortalWorld, startPortalWorld } from './portal-world.ts';

const ADDRESS = 'erika@buerger.example';
const PASSWORD = 'correct horse battery staple';

/** A URL for a route pattern: every :param becomes a harmless value. */
const urlOf = (pattern: string) => pattern.replace(/:[A-Za-z]+/g, 'x');

describe('portal: CSRF on every form', () => {
  let world: PortalWorld;
  before(async () => {
    world = await startPortalWorld();
    await activeMailbox(world, ADDRESS, PASSWORD);
  });
  after(() => world.close());

  it('has POST routes to check (login, logout, activation, re-activation, account)', () => {
    const posts = world.app.portalRoutes.filter((r) => r.method === 'POST').map((r) => r.url);
    for (const url of ['/anmelden', '/abmelden', '/aktivieren/:token', '/reaktivieren', '/konto/ueberall-abmelden']) {
      assert.ok(posts.includes(url), url);
    }
  });

  it('refuses every POST route without a token, with a wrong one, and with another browser’s, logged in or not', async () => {
    const posts = world.app.portalRoutes.filter((r) => r.method === 'POST');
    const stranger = world.browser('198.51.100.7');
    await stranger.get('/anmelden');
    const strangersToken = stranger.csrfToken as string;
    for (const loggedIn of [false, true]) {
      const browser = world.browser();
      if (loggedIn) assert.equal((await logIn(browser, ADDRESS, PASSWORD)).status, 303);
      await browser.get('/anmelden');
      for (const route of posts) {
        const url = urlOf(route.url);
        for (const [what, token] of [
          ['no token', null],
          ['a wrong token', 'AAAA-not-a-token'],
          ['another browser’s token', strangersToken],
        ] as const) {
          const page = await browser.post(url, { _csrf: token, address: ADDRESS, password: PASSWORD });
          assert.equal(page.status, 403, `${route.url} with ${what} (logged in: ${loggedIn})`);
          assert.match(page.body, /Formular abgelaufen/);
        }
      }
      if (loggedIn) {
        // The refused logouts changed nothing: still logged in.
        assert.equal((await browser.get('/postfach/eingang')).status, 200);
      }
    }
  });

  it('refuses a POST from a browser that never got the CSRF cookie', async () => {
    const browser = world.browser();
    await browser.get('/anmelden');
    const token = browser.csrfToken as string;
    browser.cookies.clear();
    const page = await browser.post('/anmelden', { _csrf: token, address: ADDRESS, password: PASSWORD });
    assert.equal(page.status, 403);
    assert.equal(browser.cookies.has('smgw-session'), false);
  });
});

describe('portal: headers, cookies and error pages over http (local)', () => {
  let world: PortalWorld;
  before(async () => {
    world = await startPortalWorld({
      beforeReady: (app) => {
        app.get('/test-boom', async () => {
          throw new Error('internal detail that must not be shown');
        });
      },
    });
    await activeMailbox(world, ADDRESS, PASSWORD);
  });
  after(() => world.close());

  it('sends a strict CSP, nosniff, DENY framing, no referrer, no caching, and no HSTS over http', async () => {
    const page = await world.browser().get('/anmelden');
    const csp = String(page.headers['content-security-policy']);
    for (const directive of [
      "default-src 'none'",
      "style-src 'self'",
      "img-src 'self' data:",
      "form-action 'self'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ]) {
      assert.ok(csp.includes(directive), directive);
    }
    assert.equal(csp.includes('script-src'), false);
    assert.equal(csp.includes('unsafe'), false);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.equal(page.headers['x-frame-options'], 'DENY');
    assert.equal(page.headers['referrer-policy'], 'no-referrer');
    assert.equal(page.headers['cache-control'], 'no-store');
    assert.equal(page.headers['strict-transport-security'], undefined);
  });

  it('uses cookies without __Host- and Secure over http, HttpOnly and SameSite=Strict', async () => {
    const browser = world.browser();
    await browser.get('/anmelden');
    const res = await world.app.inject({ method: 'GET', url: '/anmelden' });
    const csrf = String(res.headers['set-cookie']);
    assert.match(csrf, /^smgw-csrf=/);
    assert.match(csrf, /HttpOnly/);
    assert.match(csrf, /SameSite=Strict/);
    assert.doesNotMatch(csrf, /Secure/);
    const login = await logIn(browser, ADDRESS, PASSWORD);
    assert.equal(login.status, 303);
    assert.ok(browser.cookies.has('smgw-session'));
  });

  it('answers unknown pages with the 404 page and failures with the 500 page, never a stack trace', async () => {
    const missing = await world.browser().get('/gibt-es-nicht');
    assert.equal(missing.status, 404);
    assert.match(missing.body, /<h1>Seite nicht gefunden<\/h1>/);
    const boom = await world.browser().get('/test-boom?lang=en');
    assert.equal(boom.status, 500);
    assert.match(boom.body, /<h1>Something went wrong<\/h1>/);
    assert.doesNotMatch(boom.body, /internal detail|at .*\.ts:\d+/);
    assert.ok(world.logLines.some((line) => line.includes('PORTAL_INTERNAL_ERROR')));
  });

  it('answers a client over 300 requests a minute with the 429 page, other clients go on', async () => {
    const busy = world.browser('192.0.2.250');
    for (let i = 0; i < 300; i++) assert.equal((await busy.get('/reaktivieren')).status, 200, `request ${i + 1}`);
    const limited = await busy.get('/reaktivieren');
    assert.equal(limited.status, 429);
    assert.match(limited.body, /<h1>Zu viele Versuche<\/h1>/);
    assert.ok(Number(limited.headers['retry-after']) > 0);
    assert.equal((await world.browser('192.0.2.251').get('/reaktivieren')).status, 200);
    // Counted under a keyed name: Redis keeps no client addresses.
    const names = await world.redis.keys(`${world.settings.redisPrefix}portal:requests:*`);
    assert.ok(!names.some((name) => name.includes('192.0.2')), names.join(' '));
    const secret = limitKeySecretFrom(world.db.keys.masterKey);
    assert.ok(
      names.some((name) => name.endsWith(subjectName(secret, '192.0.2.250'))),
      names.join(' '),
    );
  });

  it('serves the one stylesheet', async () => {
    const css = await world.browser().get('/static/portal.css');
    assert.equal(css.status, 200);
    assert.match(String(css.headers['content-type']), /^text\/css/);
    assert.match(css.body, /:focus-visible/);
  });

  it('speaks English after ?lang=en and remembers it', async () => {
    const browser = world.browser();
    const en = await browser.get('/anmelden?lang=en');
    assert.match(en.body, /<html lang="en">/);
    assert.match(en.body, /<h1>Log in<\/h1>/);
    const again = await browser.get('/reaktivieren');
    assert.match(again.body, /<html lang="en">/);
    const de = await browser.get('/anmelden?lang=de');
    assert.match(de.body, /<html lang="de">/);
  });
});

describe('portal: behind https', () => {
  let world: PortalWorld;
  before(async () => {
    world = await startPortalWorld({ settings: { publicUrl: 'https://messenger.example' } });
    await activeMailbox(world, ADDRESS, PASSWORD);
  });
  after(() => world.close());

  it('sends HSTS and uses __Host- cookies that are Secure, HttpOnly, SameSite=Strict, Path=/', async () => {
    const browser = world.browser();
    const page = await browser.get('/anmelden');
    assert.match(String(page.headers['strict-transport-security']), /max-age=31536000/);
    const login = await browser.post('/anmelden', { address: ADDRESS, password: PASSWORD });
    assert.equal(login.status, 303);
    const cookies = [login.headers['set-cookie']].flat().map(String);
    const session = cookies.find((c) => c.startsWith('__Host-smgw-session='));
    assert.ok(session, 'a __Host- session cookie');
    for (const flag of ['Secure', 'HttpOnly', 'SameSite=Strict', 'Path=/']) assert.ok(session.includes(flag), flag);
    assert.doesNotMatch(session, /Domain=/);
    assert.equal((await browser.get('/postfach/eingang')).status, 200);
    assert.equal(
      cookies.some((c) => c.startsWith('smgw-session=')),
      false,
    );
  });
});
