// A portal user trying another mailbox's messages: every message route answers exactly as for an id that does not
// exist (the same 404 page), and nothing of the other mailbox changes.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { findMailboxById, listMailboxMessages, type Mailbox } from '@smgw/mailbox-store';
import { getTrace } from '@smgw/trace';
import { attachmentPart, htmlPart, message, multipart } from './mime-fixtures.ts';
import { type StoredMessage, storeMessage } from './portal-mail-helpers.ts';
import { activeMailbox, type Browser, logIn, type PortalWorld, startPortalWorld } from './portal-world.ts';

const PASSWORD = 'correct horse battery staple';

let world: PortalWorld;
let victim: Mailbox;
let inInbox: StoredMessage;
let inTrash: StoredMessage;
let attacker: Browser;

before(async () => {
  // Replies go to agencies only: the fixtures' sender is one, so the reply form (and its kept quote) is reachable.
  world = await startPortalWorld({ settings: { internalDomains: ['behoerde.example'] } });
  victim = await activeMailbox(world, 'opfer@example.org', PASSWORD);
  await activeMailbox(world, 'angreifer@example.org', PASSWORD);
  const raw = message(
    { subject: 'Geheim' },
    multipart('mixed', [htmlPart('<p>geheim</p>'), attachmentPart('application/pdf', 'g.pdf', Buffer.from('%PDF'))]),
  );
  inInbox = await storeMessage(world, victim, raw);
  inTrash = await storeMessage(world, victim, raw, { folder: 'trash' });
  attacker = world.browser('198.51.100.7');
  assert.equal((await logIn(attacker, 'angreifer@example.org', PASSWORD)).status, 303);
  await attacker.get('/postfach/eingang');
});
after(() => world.close());

/** The page without what differs between any two requests (the CSRF token). */
const comparable = (body: string) => body.replace(/name="_csrf" value="[^"]*"/g, '');

const READS = [
  '/nachricht/ID',
  '/nachricht/ID/inhalt',
  '/nachricht/ID/anhang/0',
  '/nachricht/ID/original',
  '/nachricht/ID/antworten',
];
const WRITES = [
  '/nachricht/ID/papierkorb',
  '/nachricht/ID/wiederherstellen',
  '/nachricht/ID/loeschen',
  '/nachricht/ID/antworten',
];

describe("another mailbox's messages", () => {
  for (const [method, route] of [
    ...READS.map((route) => ['get', route] as const),
    ...WRITES.map((route) => ['post', route] as const),
  ]) {
    it(`${method.toUpperCase()} ${route} answers for a stranger's id exactly as for a missing one`, async () => {
      for (const target of [inInbox, inTrash]) {
        const foreign = await attacker[method](route.replace('ID', target.rowId));
        const missing = await attacker[method](route.replace('ID', randomUUID()));
        assert.equal(foreign.status, 404, `${route} of a stranger's message`);
        assert.equal(missing.status, 404);
        assert.equal(comparable(foreign.body), comparable(missing.body));
        assert.equal(foreign.headers['content-type'], missing.headers['content-type']);
        assert.doesNotMatch(foreign.body, /Geheim|geheim|g\.pdf/);
      }
    });
  }

  it('stay as they were: not read, not moved, not deleted, no trace event', async () => {
    const inbox = await listMailboxMessages(world.db.pool, victim.id, 'inbox');
    const trash = await listMailboxMessages(world.db.pool, victim.id, 'trash');
    assert.deepEqual(
      inbox.map((row) => [row.id, row.readAt]),
      [[inInbox.rowId, null]],
    );
    assert.deepEqual(
      trash.map((row) => row.id),
      [inTrash.rowId],
    );
    assert.equal((await findMailboxById(world.db.pool, victim.id))?.usageBytes, inInbox.raw.length * 2);
    const trace = await getTrace(world.db.pool, inInbox.messageId);
    assert.equal(trace?.events.filter((event) => event.event === 'message.read').length, 0);
  });

  it("do not show up in the stranger's folders, and emptying his trash leaves the victim's", async () => {
    for (const path of ['/postfach/eingang', '/postfach/gesendet', '/postfach/papierkorb']) {
      assert.doesNotMatch((await attacker.get(path)).body, /Geheim/);
    }
    assert.equal((await attacker.post('/postfach/papierkorb/leeren')).status, 303);
    assert.equal((await listMailboxMessages(world.db.pool, victim.id, 'trash')).length, 1);
  });

  it("are not in the stranger's archive", async () => {
    const res = await world.app.inject({
      method: 'GET',
      url: '/konto/archiv',
      headers: { cookie: attacker.cookieHeader() },
      remoteAddress: '198.51.100.7',
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.rawPayload.includes(Buffer.from('Geheim')), false);
  });

  it('answer malformed ids with the same 404', async () => {
    for (const id of ['x', '.x', `${inInbox.rowId}x`, inInbox.rowId.toUpperCase(), "' or 1=1 --"]) {
      assert.equal((await attacker.get(`/nachricht/${encodeURIComponent(id)}`)).status, 404, id);
    }
  });

  it('need a login before anything else', async () => {
    const anonymous = world.browser('203.0.113.9');
    for (const route of READS) {
      const page = await anonymous.get(route.replace('ID', inInbox.rowId));
      assert.equal(page.status, 303, route);
      assert.equal(page.location, '/anmelden');
    }
  });
});

describe("another mailbox's messages, once their owner's views are kept (the minute's view cache)", () => {
  let kept: StoredMessage;
  let owner: Browser;
  const routes = (id: string) => [
    `/nachricht/${id}`,
    `/nachricht/${id}/inhalt`,
    `/nachricht/${id}/anhang/0`,
    `/nachricht/${id}/antworten`,
  ];

  before(async () => {
    const raw = message(
      { subject: 'Steuerbescheid 4711' },
      multipart('mixed', [
        htmlPart('<p>Inhalt 4711</p>'),
        attachmentPart('application/pdf', 'bescheid-4711.pdf', Buffer.from('%PDF')),
      ]),
    );
    kept = await storeMessage(world, victim, raw);
    owner = world.browser('198.51.100.20');
    assert.equal((await logIn(owner, 'opfer@example.org', PASSWORD)).status, 303);
    for (const url of routes(kept.rowId)) assert.equal((await owner.get(url)).status, 200, url);
  });

  it('are kept for their owner (the page again comes from the cache)', async () => {
    const before = world.logLines.length;
    assert.equal((await owner.get(`/nachricht/${kept.rowId}`)).status, 200);
    assert.ok(world.logLines.slice(before).some((line) => line.includes('"PORTAL_MESSAGE_VIEW_CACHED"')));
  });

  it('answer a stranger asking for the same id as for a missing one, and show him nothing of them', async () => {
    const missingId = randomUUID();
    for (const foreignUrl of routes(kept.rowId)) {
      const foreign = await attacker.get(foreignUrl);
      const missing = await attacker.get(foreignUrl.replace(kept.rowId, missingId));
      assert.equal(foreign.status, 404, foreignUrl);
      assert.equal(comparable(foreign.body), comparable(missing.body));
      assert.doesNotMatch(foreign.body, /4711/);
    }
  });

  it("are not served after the owner's mailbox is deleted and one is made again for the same address", async () => {
    const page = await owner.submit('/konto/loeschen', {
      address: 'opfer@example.org',
      confirm: 'ja',
      password: PASSWORD,
    });
    assert.equal(page.status, 200);
    assert.equal(await findMailboxById(world.db.pool, victim.id), undefined);
    const again = await activeMailbox(world, 'opfer@example.org', PASSWORD);
    assert.notEqual(again.id, victim.id);
    // The old session is over; a new login sees the new mailbox only.
    assert.equal((await owner.get(`/nachricht/${kept.rowId}`)).location, '/anmelden');
    const newcomer = world.browser('198.51.100.21');
    assert.equal((await logIn(newcomer, 'opfer@example.org', PASSWORD)).status, 303);
    for (const url of routes(kept.rowId)) {
      const res = await newcomer.get(url);
      assert.equal(res.status, 404, url);
      assert.doesNotMatch(res.body, /4711/);
    }
  });
});
