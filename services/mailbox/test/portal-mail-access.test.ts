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
  world = await startPortalWorld();
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

const READS = ['/nachricht/ID', '/nachricht/ID/inhalt', '/nachricht/ID/anhang/0', '/nachricht/ID/original'];
const WRITES = ['/nachricht/ID/papierkorb', '/nachricht/ID/wiederherstellen', '/nachricht/ID/loeschen'];

describe("another mailbox's messages", () => {
  for (const route of [...READS, ...WRITES]) {
    it(`${route} answers for a stranger's id exactly as for a missing one`, async () => {
      const method = WRITES.includes(route) ? 'post' : 'get';
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
