// What one logged-in client can make the portal do per minute with a 30 MB message: every route that decrypts the
// whole message (page, frame, attachment, original, reply form and its sending) counts against the message-view limit (messageViewsPerClientPerMinute),
// not only against the portal's general request limit.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { message, textPart } from './mime-fixtures.ts';
import { type StoredMessage, storeMessage } from './portal-mail-helpers.ts';
import { activeMailbox, logIn, type PortalWorld, startPortalWorld } from './portal-world.ts';

const PASSWORD = 'correct horse battery staple';
const VIEWS = 2;

let world: PortalWorld;
let stored: StoredMessage;

before(async () => {
  world = await startPortalWorld({ settings: { messageViewsPerClientPerMinute: VIEWS } });
  const mailbox = await activeMailbox(world, 'leser@example.org', PASSWORD);
  stored = await storeMessage(world, mailbox, message({ subject: 'Bescheid' }, textPart('Ihr Bescheid.')));
});
after(() => world.close());

describe('routes that decrypt a whole message', () => {
  for (const route of ['/nachricht/ID/original', '/nachricht/ID/antworten']) {
    it(`${route} is limited like the message page`, async () => {
      const browser = world.browser(route.endsWith('original') ? '198.51.100.21' : '198.51.100.22');
      assert.equal((await logIn(browser, 'leser@example.org', PASSWORD)).status, 303);
      const url = route.replace('ID', stored.rowId);
      for (let i = 0; i < VIEWS; i++) assert.notEqual((await browser.get(url)).status, 429);
      const over = await browser.get(url);
      assert.equal(over.status, 429);
      assert.ok(over.headers['retry-after']);
    });
  }

  it('sending a reply (which decrypts the original again) is limited like the reply form', async () => {
    const browser = world.browser('198.51.100.23');
    assert.equal((await logIn(browser, 'leser@example.org', PASSWORD)).status, 303);
    const url = `/nachricht/${stored.rowId}/antworten`;
    assert.equal((await browser.get('/schreiben')).status, 200, 'a page with a CSRF token');
    // Each post decrypts the original, then is refused (its sender is no agency): nothing is sent and no send slot
    // is spent, so only the message-view limit can stop them.
    for (let i = 0; i < VIEWS; i++) assert.notEqual((await browser.post(url, { draft: '' })).status, 429);
    const over = await browser.post(url, { draft: '' });
    assert.equal(over.status, 429);
    assert.ok(over.headers['retry-after']);
  });
});
