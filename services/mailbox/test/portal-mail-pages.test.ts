// The folder and message pages over HTTP (inject) with the real database and Redis: lists, reading (marked read
// once, traced once), the sandboxed frame, downloads with hostile names, trash, quota, archive, deleting the mailbox.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { findMailboxById, listMailboxAudit, listMailboxMessages, type Mailbox } from '@smgw/mailbox-store';
import { getTrace } from '@smgw/trace';
import { MESSAGE_FRAME_CSP } from '../src/portal/pages/message.ts';
import { attachmentPart, htmlPart, message, multipart, textPart } from './mime-fixtures.ts';
import { storeMessage } from './portal-mail-helpers.ts';
import { type Browser, loggedInBrowser, logIn, type PortalWorld, startPortalWorld } from './portal-world.ts';
import { readZip } from './zip-reader.ts';

const PASSWORD = 'correct horse battery staple';
const MINUTE = 60_000;

let world: PortalWorld;
before(async () => {
  world = await startPortalWorld();
});
after(() => world.close());

let counter = 0;
async function loggedInUser(): Promise<{ mailbox: Mailbox; browser: Browser }> {
  counter++;
  return loggedInBrowser(world, `buerger${counter}@example.org`, PASSWORD);
}

/** The text of the table cells of a folder page, row by row (tags stripped, entities kept). */
function tableRows(html: string): string[][] {
  const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(html)?.[1] ?? '';
  return [...body.matchAll(/<tr[^>]*>([\s\S]*?)<\/tr>/g)].map((row) =>
    [...(row[1] ?? '').matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((cell) =>
      (cell[1] ?? '')
        .replace(/<[^>]+>/g, '')
        .replace(/\s+/g, ' ')
        .trim(),
    ),
  );
}

describe('the folders', () => {
  it('list each folder newest first with correspondent, subject, date, size and an unread marker', async () => {
    const { mailbox, browser } = await loggedInUser();
    const t0 = world.clock.now().getTime();
    await storeMessage(world, mailbox, message({ subject: 'Erster Bescheid' }, textPart('eins')), {
      receivedAt: new Date(t0 - 2 * MINUTE),
    });
    await storeMessage(
      world,
      mailbox,
      message(
        { subject: 'Zweiter', from: 'Stadt <stadt@behoerde.example>', date: 'Wed, 04 Mar 2026 08:15:00 +0100' },
        multipart('mixed', [textPart('zwei'), attachmentPart('application/pdf', 'a.pdf', Buffer.from('%PDF'))]),
      ),
      { receivedAt: new Date(t0 - MINUTE) },
    );
    await storeMessage(
      world,
      mailbox,
      message({ subject: 'Meine Antwort', to: 'amt@behoerde.example' }, textPart('x')),
      {
        folder: 'sent',
      },
    );

    const inbox = await browser.get('/postfach/eingang');
    assert.equal(inbox.status, 200);
    assert.match(inbox.body, /<caption>Posteingang: 2 Nachrichten, davon 2 ungelesen<\/caption>/);
    assert.equal((inbox.body.match(/<th scope="col">/g) ?? []).length, 5);
    const rows = tableRows(inbox.body);
    assert.deepEqual(
      rows.map((row) => row.slice(0, 4)),
      [
        ['Ungelesen', 'Stadt &lt;stadt@behoerde.example&gt;', 'Zweiter (mit 1 Anhang)', '04.03.2026, 08:15'],
        ['Ungelesen', 'Amt &lt;amt@behoerde.example&gt;', 'Erster Bescheid', '01.07.2025, 10:00'],
      ],
    );
    assert.match(rows[0]?.[4] ?? '', /^\d+ B$/);
    assert.match(inbox.body, /<time datetime="2026-03-04T07:15:00.000Z">/);

    const sent = await browser.get('/postfach/gesendet');
    assert.deepEqual(
      tableRows(sent.body).map((row) => row.slice(0, 3)),
      [['Gelesen', 'amt@behoerde.example', 'Meine Antwort']],
    );
    assert.match(sent.body, /<th scope="col">An<\/th>/);

    const trash = await browser.get('/postfach/papierkorb');
    assert.match(trash.body, /Keine Nachrichten\./);
  });

  it('show what a sender wrote in names and subjects as text, never as markup', async () => {
    const { mailbox, browser } = await loggedInUser();
    await storeMessage(
      world,
      mailbox,
      message(
        {
          from: '"<script>alert(1)</script>" <x@evil.example>',
          subject: '=?utf-8?q?<img_src=3Dx_onerror=3Dalert(1)>?=',
        },
        textPart('x'),
      ),
    );
    const inbox = await browser.get('/postfach/eingang');
    assert.doesNotMatch(inbox.body, /<script>alert|<img src=x/);
    assert.match(inbox.body, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.match(inbox.body, /&lt;img src=x onerror=alert\(1\)&gt;/);
  });

  it('need a login', async () => {
    const page = await world.browser().get('/postfach/eingang');
    assert.equal(page.status, 303);
    assert.equal(page.location, '/anmelden');
  });
});

describe('reading a message', () => {
  it('marks it read and records message.read in its trace, once', async () => {
    const { mailbox, browser } = await loggedInUser();
    const stored = await storeMessage(world, mailbox, message({ subject: 'Lesen' }, textPart('Text <b>fett</b>?')));
    const first = await browser.get(`/nachricht/${stored.rowId}`);
    assert.equal(first.status, 200);
    assert.match(first.body, /<pre class="message-text">Text &lt;b&gt;fett&lt;\/b&gt;\?<\/pre>/);
    assert.match(first.body, /<h1 id="message-subject">Lesen<\/h1>/);
    world.clock.advance(MINUTE);
    assert.equal((await browser.get(`/nachricht/${stored.rowId}`)).status, 200);

    const [row] = await listMailboxMessages(world.db.pool, mailbox.id, 'inbox');
    assert.ok(row?.readAt);
    const trace = await getTrace(world.db.pool, stored.messageId);
    const reads = trace?.events.filter((event) => event.event === 'message.read') ?? [];
    assert.equal(reads.length, 1);
    assert.equal(reads[0]?.stage, 'mailbox');
    assert.equal(reads[0]?.recipient, mailbox.address);
    assert.doesNotMatch((await browser.get('/postfach/eingang')).body, /unread-marker/);
  });

  it('does not record a read in the trace for a message the user sent', async () => {
    const { mailbox, browser } = await loggedInUser();
    const stored = await storeMessage(world, mailbox, message({}, textPart('x')), { folder: 'sent' });
    assert.equal((await browser.get(`/nachricht/${stored.rowId}`)).status, 200);
    const trace = await getTrace(world.db.pool, stored.messageId);
    assert.equal(trace?.events.filter((event) => event.event === 'message.read').length, 0);
  });

  it('shows the HTML body only in a sandboxed frame whose document has its own strict CSP', async () => {
    const { mailbox, browser } = await loggedInUser();
    const stored = await storeMessage(
      world,
      mailbox,
      message(
        {},
        htmlPart('<p onclick="steal()">Hallo<script>alert(1)</script><img src="https://t.example/p.gif"></p>'),
      ),
    );
    const page = await browser.get(`/nachricht/${stored.rowId}`);
    assert.equal(page.status, 200);
    const frame = /<iframe[^>]*>/.exec(page.body)?.[0] ?? '';
    assert.match(frame, /src="\/nachricht\/[0-9a-f-]{36}\/inhalt"/);
    const sandbox = /sandbox="([^"]*)"/.exec(frame)?.[1];
    assert.equal(sandbox, 'allow-popups allow-popups-to-escape-sandbox');
    assert.doesNotMatch(frame, /allow-scripts|allow-same-origin|allow-forms|allow-top-navigation/);
    assert.match(String(page.headers['content-security-policy']), /frame-src 'self'/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
    assert.match(page.body, /Externe Inhalte blockiert/);
    assert.doesNotMatch(page.body, /steal\(\)|alert\(1\)/, 'the body itself is not in the page');

    const content = await browser.get(`/nachricht/${stored.rowId}/inhalt`);
    assert.equal(content.status, 200);
    assert.equal(content.headers['content-security-policy'], MESSAGE_FRAME_CSP);
    const csp = String(content.headers['content-security-policy']);
    for (const directive of [
      "default-src 'none'",
      "style-src 'unsafe-inline'",
      'img-src data:',
      "frame-ancestors 'self'",
      "form-action 'none'",
    ]) {
      assert.ok(csp.includes(directive), directive);
    }
    assert.match(csp, /; sandbox allow-popups allow-popups-to-escape-sandbox$/);
    assert.doesNotMatch(csp, /allow-scripts|allow-same-origin|script-src/);
    assert.equal(content.headers['x-frame-options'], 'SAMEORIGIN');
    assert.equal(content.headers['x-content-type-options'], 'nosniff');
    assert.equal(content.headers['cache-control'], 'no-store');
    assert.match(String(content.headers['content-type']), /^text\/html; charset=utf-8/);
    assert.match(content.body, /<body><p>Hallo<span><\/span><\/p><\/body>/);
  });

  it('has no frame document for a plain-text message', async () => {
    const { mailbox, browser } = await loggedInUser();
    const stored = await storeMessage(world, mailbox, message({}, textPart('nur Text')));
    assert.equal((await browser.get(`/nachricht/${stored.rowId}/inhalt`)).status, 404);
  });

  it('says so, and still offers the original, when a message is beyond the parser limits', async () => {
    const { mailbox, browser } = await loggedInUser();
    let part = textPart('tief');
    for (let i = 0; i < 40; i++) part = multipart('mixed', [part], `deep${i}`);
    const stored = await storeMessage(world, mailbox, message({ subject: 'Zu tief' }, part));
    const page = await browser.get(`/nachricht/${stored.rowId}`);
    assert.equal(page.status, 200);
    assert.match(page.body, /kann hier nicht angezeigt werden/);
    assert.match(page.body, /<h1 id="message-subject">Zu tief<\/h1>/);
    const original = await browser.get(`/nachricht/${stored.rowId}/original`);
    assert.equal(original.status, 200);
    assert.equal(original.body, stored.raw.toString('latin1'));
  });
});

describe('attachments', () => {
  const evilNames: Array<[string, string, RegExp]> = [
    ['quotes', '"=?utf-8?q?a=22b=22.pdf?="', /^attachment; filename="a_b_.pdf"; filename\*=UTF-8''a_b_.pdf$/],
    [
      'CR LF',
      '"=?utf-8?q?x=0D=0ASet-Cookie:_a=3Db.txt?="',
      /^attachment; filename="x Set-Cookie_ a=b.txt"; filename\*=UTF-8''x%20Set-Cookie_%20a%3Db.txt$/,
    ],
    [
      'a path',
      '"../../../etc/passwd"',
      /^attachment; filename="_.._.._etc_passwd"; filename\*=UTF-8''_.._.._etc_passwd$/,
    ],
    [
      'a right-to-left override',
      '"=?utf-8?q?Rechnung=E2=80=AEfdp.exe?="',
      /^attachment; filename="Rechnungfdp.exe"; filename\*=UTF-8''Rechnungfdp.exe$/,
    ],
    [
      'umlauts',
      '"=?utf-8?q?Bescheid_M=C3=A4rz.pdf?="',
      /^attachment; filename="Bescheid Marz.pdf"; filename\*=UTF-8''Bescheid%20M%C3%A4rz.pdf$/,
    ],
  ];

  it('are downloaded with a safe Content-Disposition, a passive type, nosniff and a sandbox', async () => {
    const { mailbox, browser } = await loggedInUser();
    const longName = `${'x'.repeat(400)}.pdf`;
    const stored = await storeMessage(
      world,
      mailbox,
      message(
        {},
        multipart('mixed', [
          textPart('Anbei'),
          ...evilNames.map(([, name]) => attachmentPart('application/pdf', name, Buffer.from('%PDF-1.4'))),
          attachmentPart('text/html', 'seite.html', Buffer.from('<script>alert(1)</script>')),
          attachmentPart('image/svg+xml', 'bild.svg', Buffer.from('<svg onload="alert(1)"/>')),
          attachmentPart('image/png', 'bild.png', Buffer.from('png')),
          attachmentPart('application/pdf', longName, Buffer.from('%PDF')),
        ]),
      ),
    );
    const page = await browser.get(`/nachricht/${stored.rowId}`);
    assert.equal((page.body.match(/\/anhang\/\d+" download>/g) ?? []).length, evilNames.length + 4);

    for (const [i, [what, , disposition]] of evilNames.entries()) {
      const download = await browser.get(`/nachricht/${stored.rowId}/anhang/${i}`);
      assert.equal(download.status, 200, what);
      assert.match(String(download.headers['content-disposition']), disposition, what);
      assert.equal(download.headers['content-type'], 'application/octet-stream', what);
      assert.equal(download.headers['x-content-type-options'], 'nosniff');
      assert.equal(download.headers['content-security-policy'], "default-src 'none'; sandbox");
      assert.equal(download.body, '%PDF-1.4');
    }
    const n = evilNames.length;
    const html = await browser.get(`/nachricht/${stored.rowId}/anhang/${n}`);
    assert.equal(html.headers['content-type'], 'application/octet-stream');
    assert.equal(html.body, '<script>alert(1)</script>');
    assert.equal(
      (await browser.get(`/nachricht/${stored.rowId}/anhang/${n + 1}`)).headers['content-type'],
      'application/octet-stream',
    );
    assert.equal(
      (await browser.get(`/nachricht/${stored.rowId}/anhang/${n + 2}`)).headers['content-type'],
      'image/png',
    );
    const long = await browser.get(`/nachricht/${stored.rowId}/anhang/${n + 3}`);
    const fallback = /filename="([^"]*)"/.exec(String(long.headers['content-disposition']))?.[1] ?? '';
    assert.equal(fallback.length, 120);
    assert.ok(fallback.endsWith('.pdf'));

    for (const index of [String(n + 4), '-1', '1e1', 'abc', '99999']) {
      assert.equal((await browser.get(`/nachricht/${stored.rowId}/anhang/${index}`)).status, 404, index);
    }
  });
});

describe('trash, quota and emptying the trash', () => {
  it('counts inbox, sent and trash against the quota and gives the bytes back when the trash is emptied', async () => {
    const { mailbox, browser } = await loggedInUser();
    const big = Buffer.alloc(400 * 1024, 'a');
    const inbox = await storeMessage(world, mailbox, message({ subject: 'Eingang' }, textPart(big.toString())));
    const sent = await storeMessage(world, mailbox, message({ subject: 'Gesendet' }, textPart(big.toString())), {
      folder: 'sent',
    });
    const trashed = await storeMessage(world, mailbox, message({ subject: 'Weg' }, textPart(big.toString())));
    const total = inbox.raw.length + sent.raw.length + trashed.raw.length;

    await browser.get(`/nachricht/${trashed.rowId}`);
    const moved = await browser.post(`/nachricht/${trashed.rowId}/papierkorb`);
    assert.equal(moved.status, 303);
    assert.equal(moved.location, '/postfach/eingang?erledigt=papierkorb');

    assert.match((await browser.get(moved.location ?? '')).body, /in den Papierkorb verschoben/);
    const page = await browser.get('/postfach/papierkorb');
    assert.match(page.body, new RegExp(`<meter id="quota-meter" min="0" max="${30 * 1024 * 1024}" value="${total}"`));
    assert.match(page.body, /1,2 MB von 30 MB belegt/);
    assert.equal((await findMailboxById(world.db.pool, mailbox.id))?.usageBytes, total);

    const emptied = await browser.post('/postfach/papierkorb/leeren');
    assert.equal(emptied.status, 303);
    assert.equal((await findMailboxById(world.db.pool, mailbox.id))?.usageBytes, total - trashed.raw.length);
    const after = await browser.get(emptied.location ?? '');
    assert.match(after.body, /Der Papierkorb wurde geleert/);
    assert.match(after.body, /0,8 MB von 30 MB belegt/);
    assert.equal((await browser.get(`/nachricht/${trashed.rowId}`)).status, 404);
  });

  it('restores a message to where it came from and deletes one for good only from the trash', async () => {
    const { mailbox, browser } = await loggedInUser();
    const one = await storeMessage(world, mailbox, message({ subject: 'Eins' }, textPart('1')), { folder: 'sent' });
    const two = await storeMessage(world, mailbox, message({ subject: 'Zwei' }, textPart('2')));
    await browser.get('/postfach/eingang');

    assert.equal((await browser.post(`/nachricht/${two.rowId}/loeschen`)).status, 404, 'not from the inbox');
    assert.equal((await browser.post(`/nachricht/${two.rowId}/wiederherstellen`)).status, 404, 'not in the trash');

    assert.equal(
      (await browser.post(`/nachricht/${one.rowId}/papierkorb`)).location,
      '/postfach/gesendet?erledigt=papierkorb',
    );
    const inTrash = await browser.get(`/nachricht/${one.rowId}`);
    assert.match(inTrash.body, /action="\/nachricht\/[0-9a-f-]+\/wiederherstellen"/);
    assert.match(inTrash.body, /action="\/nachricht\/[0-9a-f-]+\/loeschen"/);
    assert.doesNotMatch(inTrash.body, /\/antworten"/);
    assert.equal((await browser.post(`/nachricht/${one.rowId}/wiederherstellen`)).status, 303);
    assert.equal((await listMailboxMessages(world.db.pool, mailbox.id, 'sent')).length, 1);

    await browser.get('/postfach/eingang');
    await browser.post(`/nachricht/${two.rowId}/papierkorb`);
    const before = (await findMailboxById(world.db.pool, mailbox.id))?.usageBytes ?? 0;
    const deleted = await browser.post(`/nachricht/${two.rowId}/loeschen`);
    assert.equal(deleted.location, '/postfach/papierkorb?erledigt=geloescht');
    assert.equal((await findMailboxById(world.db.pool, mailbox.id))?.usageBytes, before - two.raw.length);
    assert.equal((await browser.post(`/nachricht/${two.rowId}/loeschen`)).status, 404, 'gone');
  });
});

describe('the account', () => {
  it('offers every message of every folder as one zip', async () => {
    const { mailbox, browser } = await loggedInUser();
    const stored = [
      await storeMessage(world, mailbox, message({ subject: 'A' }, textPart('a'))),
      await storeMessage(world, mailbox, message({ subject: 'A' }, textPart('a2'))),
      await storeMessage(world, mailbox, message({ subject: '../B' }, textPart('b')), { folder: 'sent' }),
      await storeMessage(world, mailbox, message({ subject: 'C' }, textPart('c')), { folder: 'trash' }),
    ];
    const account = await browser.get('/konto');
    assert.match(account.body, /href="\/konto\/archiv"/);
    assert.match(account.body, /allen 4 Nachrichten/);

    const res = await world.app.inject({
      method: 'GET',
      url: '/konto/archiv',
      headers: { cookie: browser.cookieHeader() },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'application/zip');
    assert.match(String(res.headers['content-disposition']), /^attachment; filename="postfach-2026-03-02\.zip"/);
    const entries = await readZip(res.rawPayload);
    assert.deepEqual(entries.map((entry) => entry.path).sort(), [
      'Eingang/001-A.eml',
      'Eingang/002-A.eml',
      'Gesendet/001-_B.eml',
      'Papierkorb/001-C.eml',
    ]);
    for (const one of stored) {
      assert.ok(
        entries.some((entry) => entry.content.equals(one.raw)),
        'every message is in the zip, byte for byte',
      );
    }
    const audit = await listMailboxAudit(world.db.pool, mailbox.address);
    assert.ok(audit.some((entry) => entry.event === 'mailbox.archive-downloaded'));
  });

  it('deletes the mailbox only after the address is typed, the box ticked and the password given, destroys its key, ends every session', async () => {
    const { mailbox, browser } = await loggedInUser();
    const other = world.browser();
    assert.equal((await logIn(other, mailbox.address, PASSWORD)).status, 303);
    const stored = await storeMessage(world, mailbox, message({}, textPart('weg')));

    const confirm = await browser.get('/konto/loeschen');
    assert.equal(confirm.status, 200);
    assert.match(confirm.body, /<h1>Postfach endgültig löschen<\/h1>/);

    const wrong = await browser.post('/konto/loeschen', { address: 'someone@example.org', confirm: 'ja' });
    assert.equal(wrong.status, 400);
    assert.match(wrong.body, /stimmt nicht mit diesem Postfach überein/);
    assert.match(wrong.body, /aria-invalid="true"/);
    const unticked = await browser.post('/konto/loeschen', { address: mailbox.address });
    assert.equal(unticked.status, 400);
    assert.ok(await findMailboxById(world.db.pool, mailbox.id), 'still there');
    const kept = await world.mailboxKeys.get(mailbox.id);
    assert.ok(kept, 'and so is its key');
    kept.fill(0);

    const done = await browser.post('/konto/loeschen', {
      address: mailbox.address.toUpperCase(),
      confirm: 'ja',
      password: PASSWORD,
    });
    assert.equal(done.status, 200);
    assert.match(done.body, /Postfach gelöscht/);
    assert.equal(await findMailboxById(world.db.pool, mailbox.id), undefined);
    assert.deepEqual(await listMailboxMessages(world.db.pool, mailbox.id, 'inbox'), []);
    assert.equal(await world.mailboxKeys.get(mailbox.id), undefined, 'its key is gone from the key store');
    const audit = await listMailboxAudit(world.db.pool, mailbox.address);
    assert.deepEqual(audit.find((entry) => entry.event === 'mailbox.deleted')?.detail, {
      messages: 1,
      bytes: stored.raw.length,
      certificates: [],
      pgpKeys: [],
    });
    for (const b of [browser, other]) {
      const page = await b.get('/postfach/eingang');
      assert.equal(page.status, 303);
      assert.equal(page.location, '/anmelden');
    }
    const keys = await world.redis.keys(`${world.settings.redisPrefix}*${mailbox.id}*`);
    assert.deepEqual(keys, [], 'no session of the mailbox is left in Redis');
  });
});
