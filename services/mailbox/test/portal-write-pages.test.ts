// The pages /schreiben and /nachricht/:id/antworten over HTTP (fastify inject, real database and Redis): multipart
// forms with the CSRF token, the draft that never sends twice, recipients only from the allowed lists, a reply to a
// non-agency refused with a page of its own, another mailbox's message not found, uploads bounded.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { listMailboxMessages, type Mailbox, openMailboxKey } from '@smgw/mailbox-store';
import { simpleParser } from 'mailparser';
import {
  type Browser,
  loggedInBrowser,
  type Page,
  type PortalWorld,
  pageOf,
  startPortalWorld,
} from './portal-world.ts';
import { agencyLetter, agencyWith, inboxMessage } from './portal-write-fixtures.ts';

const PASSWORD = 'correct horse battery staple';
const MAX_UPLOAD = 50_000;

interface Upload {
  name: string;
  filename: string;
  content: Buffer;
  type?: string;
}

/** A multipart/form-data body: the fields (in order, `_csrf` first as the form has it), then the files. */
function multipart(fields: [string, string][], files: Upload[] = []): { payload: Buffer; contentType: string } {
  const boundary = `----test${randomBytes(8).toString('hex')}`;
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  for (const file of files) {
    parts.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${file.name}"; filename="${file.filename}"\r\n` +
          `Content-Type: ${file.type ?? 'application/octet-stream'}\r\n\r\n`,
      ),
      file.content,
      Buffer.from('\r\n'),
    );
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** Posts a multipart form as the browser (its cookies; its last page's CSRF token unless `csrf` says otherwise). */
async function postForm(
  world: PortalWorld,
  browser: Browser,
  url: string,
  fields: Record<string, string>,
  files: Upload[] = [],
  csrf: string | null = browser.csrfToken ?? null,
): Promise<Page> {
  const ordered: [string, string][] = [
    ...(csrf === null ? [] : [['_csrf', csrf] as [string, string]]),
    ...Object.entries(fields),
  ];
  const { payload, contentType } = multipart(ordered, files);
  const res = await world.app.inject({
    method: 'POST',
    url,
    remoteAddress: browser.ip,
    headers: { 'content-type': contentType, ...(browser.cookies.size > 0 ? { cookie: browser.cookieHeader() } : {}) },
    payload,
  });
  return pageOf(res);
}

const draftOf = (page: Page) => /name="draft" value="([^"]+)"/.exec(page.body)?.[1] ?? '';

let world: PortalWorld;
let counter = 0;

before(async () => {
  world = await startPortalWorld({ settings: { internalDomains: ['behoerde.example'], maxUploadBytes: MAX_UPLOAD } });
  await agencyWith(
    world.db.pool,
    'Stadt Musterstadt',
    'behoerde.example',
    ['post@behoerde.example', 'intern@behoerde.example'],
    ['post@behoerde.example'],
  );
});

after(() => world.close());

async function loggedIn(): Promise<{ mailbox: Mailbox; browser: Browser }> {
  counter += 1;
  return loggedInBrowser(world, `buerger${counter}@buerger.example`, PASSWORD);
}

async function sent(mailbox: Mailbox) {
  const key = await openMailboxKey(world.mailboxKeys, mailbox);
  try {
    return await listMailboxMessages(world.db.pool, mailbox.id, 'sent', key);
  } finally {
    key.fill(0);
  }
}

const portalEnvelopes = () => world.published.filter((e) => e.direction === 'portal');

describe('/schreiben', () => {
  it('offers only the agency addresses marked reachable, in a multipart form with CSRF token and draft', async () => {
    const { browser } = await loggedIn();
    const page = await browser.get('/schreiben');
    assert.equal(page.status, 200);
    assert.match(page.body, /<h1>Nachricht schreiben<\/h1>/);
    assert.match(page.body, /enctype="multipart\/form-data"/);
    assert.match(
      page.body,
      /<option value="post@behoerde.example">Stadt Musterstadt – post@behoerde.example<\/option>/,
    );
    assert.doesNotMatch(page.body, /intern@behoerde.example/);
    assert.ok(draftOf(page));
    assert.match(page.body, /<label for="field-attachments">/);
  });

  it('sends a message with an attachment: "Gesendet", the envelope published, the copy in Sent; the same form again sends nothing more', async () => {
    const { mailbox, browser } = await loggedIn();
    const form = await browser.get('/schreiben');
    const before = portalEnvelopes().length;
    const fields = { draft: draftOf(form), to: 'post@behoerde.example', subject: 'Antrag', text: 'Guten Tag,\nanbei.' };
    const files = [
      { name: 'attachments', filename: 'Antrag.pdf', content: Buffer.from('%PDF-1.4 Antrag'), type: 'text/html' },
    ];
    const posted = await postForm(world, browser, '/schreiben', fields, files);
    assert.equal(posted.status, 303, posted.body.slice(0, 500));
    assert.equal(posted.location, '/schreiben/gesendet');
    const done = await browser.get('/schreiben/gesendet');
    assert.match(done.body, /<h1>Gesendet<\/h1>/);

    const envelopes = portalEnvelopes().slice(before);
    assert.equal(envelopes.length, 1);
    assert.deepEqual(envelopes[0]?.recipients, ['post@behoerde.example']);
    assert.equal(envelopes[0]?.client.user, mailbox.address);
    const raw = await world.blobStore.readAll(envelopes[0]?.blob.ref ?? '');
    const parsed = await simpleParser(raw);
    assert.deepEqual(
      parsed.attachments.map((a) => [a.filename, a.contentType]),
      [['Antrag.pdf', 'application/pdf']],
      'the type comes from the name, not from what the browser said',
    );
    assert.equal((await sent(mailbox)).length, 1);

    // A double click, or the browser sending the form again: the same draft, nothing new.
    const again = await postForm(world, browser, '/schreiben', fields, files);
    assert.equal(again.status, 303);
    assert.equal(portalEnvelopes().length, before + 1);
    assert.equal((await sent(mailbox)).length, 1);
  });

  it('refuses a recipient that was not offered, keeping what was typed, and sends nothing', async () => {
    const { mailbox, browser } = await loggedIn();
    const form = await browser.get('/schreiben');
    const before = portalEnvelopes().length;
    for (const to of ['intern@behoerde.example', 'jemand@extern.example', '']) {
      const page = await postForm(world, browser, '/schreiben', {
        draft: draftOf(form),
        to,
        subject: 'Antrag <b>fett</b>',
        text: 'Text',
      });
      assert.equal(page.status, 400, to);
      assert.match(page.body, /role="alert"/);
      assert.match(page.body, /aria-invalid="true"/);
      assert.match(page.body, /value="Antrag &lt;b&gt;fett&lt;\/b&gt;"/, 'what was typed comes back escaped');
    }
    assert.equal(portalEnvelopes().length, before);
    assert.equal((await sent(mailbox)).length, 0);
  });

  it('refuses a subject with a line break, and a forged or another mailbox’s draft', async () => {
    const { browser } = await loggedIn();
    const other = await loggedIn();
    const form = await browser.get('/schreiben');
    const before = portalEnvelopes().length;
    const base = { to: 'post@behoerde.example', subject: 'Antrag', text: 'Text' };
    const broken = await postForm(world, browser, '/schreiben', {
      ...base,
      draft: draftOf(form),
      subject: 'Antrag\r\nX-SMGW-Signature: TOTAL_PASSED',
    });
    assert.equal(broken.status, 400);
    assert.match(broken.body, /Der Betreff muss eine einzelne Zeile sein/);
    const othersDraft = draftOf(await other.browser.get('/schreiben'));
    for (const draft of ['', 'forged', othersDraft]) {
      const page = await postForm(world, browser, '/schreiben', { ...base, draft });
      assert.equal(page.status, 400, draft);
      assert.match(page.body, /Das Formular ist abgelaufen/);
      assert.notEqual(draftOf(page), draft, 'a new draft comes with the page');
    }
    assert.equal(portalEnvelopes().length, before);
  });

  it('refuses a multipart form without or with a wrong CSRF token, and a stranger without session is sent to the login', async () => {
    const { browser } = await loggedIn();
    const form = await browser.get('/schreiben');
    const before = portalEnvelopes().length;
    const fields = { draft: draftOf(form), to: 'post@behoerde.example', subject: 'Antrag', text: 'Text' };
    for (const csrf of [null, 'AAAA-not-a-token']) {
      const page = await postForm(world, browser, '/schreiben', fields, [], csrf);
      assert.equal(page.status, 403);
      assert.match(page.body, /Formular abgelaufen/);
    }
    const stranger = world.browser('198.51.100.9');
    const page = await postForm(world, stranger, '/schreiben', fields, [
      { name: 'attachments', filename: 'x.bin', content: Buffer.alloc(1000) },
    ]);
    assert.equal(page.status, 303);
    assert.equal(page.location, '/anmelden');
    assert.equal(portalEnvelopes().length, before);
  });

  it('refuses text and attachments over SMGW_PORTAL_MAX_UPLOAD_BYTES with a message on the form', async () => {
    const { browser } = await loggedIn();
    const form = await browser.get('/schreiben');
    const before = portalEnvelopes().length;
    const page = await postForm(
      world,
      browser,
      '/schreiben',
      { draft: draftOf(form), to: 'post@behoerde.example', subject: 'Groß', text: 'Text' },
      [
        { name: 'attachments', filename: 'a.pdf', content: Buffer.alloc(30_000, 0x41) },
        { name: 'attachments', filename: 'b.pdf', content: Buffer.alloc(30_000, 0x42) },
      ],
    );
    assert.equal(page.status, 413);
    assert.match(page.body, /zu groß/);
    assert.match(page.body, /Bitte wählen Sie sie erneut aus/);
    assert.equal(portalEnvelopes().length, before);
  });

  it('sends no more than 30 messages an hour from one mailbox, also when the forms come at once', async () => {
    const { browser } = await loggedIn();
    const drafts: string[] = [];
    for (let i = 0; i < 45; i++) drafts.push(draftOf(await browser.get('/schreiben')));
    const before = portalEnvelopes().length;
    const pages = await Promise.all(
      drafts.map((draft) =>
        postForm(world, browser, '/schreiben', {
          draft,
          to: 'post@behoerde.example',
          subject: 'Antrag',
          text: 'Hallo',
        }),
      ),
    );
    assert.equal(pages.filter((p) => p.status === 303).length, 30);
    assert.equal(pages.filter((p) => p.status === 429).length, 15);
    assert.equal(portalEnvelopes().length - before, 30);
  });
});

describe('sending from one client', () => {
  /** A mailbox of its own, logged in from `ip`, and a send of one new message from there. */
  async function sender(ip: string) {
    counter += 1;
    const { browser } = await loggedInBrowser(world, `flut${counter}@buerger.example`, PASSWORD, ip);
    return async () => {
      const draft = draftOf(await browser.get('/schreiben'));
      return postForm(world, browser, '/schreiben', {
        draft,
        to: 'post@behoerde.example',
        subject: 'Antrag',
        text: 'Der Text, den niemand zweimal tippen möchte',
      });
    };
  }

  it('sends no more than 60 messages an hour from one client (an IPv6 /64) over all its mailboxes', async () => {
    // Three mailboxes from addresses of one /64: each under its own 30, together over the client's 60.
    const [first, second, third] = await Promise.all([
      sender('2001:db8:7:1::a'),
      sender('2001:db8:7:1::b'),
      sender('2001:db8:7:1:ffff::c'),
    ]);
    const before = portalEnvelopes().length;
    const pages = await Promise.all(Array.from({ length: 30 }, () => first()));
    for (let i = 0; i < 29; i++) pages.push(await second());
    assert.ok(
      pages.every((page) => page.status === 303),
      'the first 59 go',
    );
    assert.equal((await third()).status, 303, 'the 60th goes');
    const refused = await second();
    assert.equal(refused.status, 429, 'the 61st is refused, though its mailbox sent 29');
    assert.match(refused.body, /Zu viele Nachrichten/);
    assert.match(refused.body, /Der Text, den niemand zweimal tippen möchte/, 'the form keeps what was typed');
    assert.ok(Number(refused.headers['retry-after']) > 0);
    assert.equal(portalEnvelopes().length - before, 60);
    assert.ok(world.logLines.some((line) => line.includes('"PORTAL_WRITE_RATE_LIMITED"') && line.includes('client')));
    // Another client is not held up by it.
    const elsewhere = await sender('2001:db8:7:2::a');
    assert.equal((await elsewhere()).status, 303);
  });
});

describe('/nachricht/:id/antworten', () => {
  it('prefills Re: and the quoted text, shows the sender as the fixed recipient, and sends the reply there only', async () => {
    const { mailbox, browser } = await loggedIn();
    const letter = agencyLetter('sb@behoerde.example', mailbox.address, ['Reply-To: angreifer@extern.example']);
    const rowId = await inboxMessage(world.db.pool, mailbox, world.mailboxKeys, letter);
    const form = await browser.get(`/nachricht/${rowId}/antworten`);
    assert.equal(form.status, 200);
    assert.match(form.body, /<h1>Antworten<\/h1>/);
    assert.match(form.body, /value="Re: Bescheid"/);
    assert.match(form.body, /&gt; Ihr Bescheid\./);
    assert.match(form.body, /sb@behoerde.example/);
    assert.doesNotMatch(form.body, /angreifer@extern.example/);
    assert.doesNotMatch(form.body, /name="to"/, 'no recipient field: the sender is the recipient');

    const before = portalEnvelopes().length;
    const posted = await postForm(world, browser, `/nachricht/${rowId}/antworten`, {
      draft: draftOf(form),
      to: 'angreifer@extern.example',
      subject: 'Re: Bescheid',
      text: 'Danke.',
    });
    assert.equal(posted.status, 303, posted.body.slice(0, 300));
    const [envelope, ...more] = portalEnvelopes().slice(before);
    assert.equal(more.length, 0);
    assert.deepEqual(envelope?.recipients, ['sb@behoerde.example']);
  });

  it('refuses a reply to a sender who is no agency with a page saying so, for GET and POST', async () => {
    const { mailbox, browser } = await loggedIn();
    const rowId = await inboxMessage(
      world.db.pool,
      mailbox,
      world.mailboxKeys,
      agencyLetter('jemand@extern.example', mailbox.address, ['Reply-To: post@behoerde.example']),
    );
    const page = await browser.get(`/nachricht/${rowId}/antworten`);
    assert.equal(page.status, 403);
    assert.match(page.body, /Antworten nicht möglich/);
    const form = await browser.get('/schreiben');
    const before = portalEnvelopes().length;
    const posted = await postForm(world, browser, `/nachricht/${rowId}/antworten`, {
      draft: draftOf(form),
      subject: 'Re',
      text: 'x',
    });
    assert.equal(posted.status, 403);
    assert.equal(portalEnvelopes().length, before);
  });

  it("answers 404 for another mailbox's message and for one that does not exist", async () => {
    const owner = await loggedIn();
    const { browser } = await loggedIn();
    const theirs = await inboxMessage(
      world.db.pool,
      owner.mailbox,
      world.mailboxKeys,
      agencyLetter('sb@behoerde.example', owner.mailbox.address),
    );
    for (const id of [theirs, 'gibt-es-nicht', "x' or '1'='1"]) {
      assert.equal((await browser.get(`/nachricht/${encodeURIComponent(id)}/antworten`)).status, 404, id);
    }
    const form = await browser.get('/schreiben');
    const posted = await postForm(world, browser, `/nachricht/${theirs}/antworten`, {
      draft: draftOf(form),
      subject: 'Re',
      text: 'x',
    });
    assert.equal(posted.status, 404);
  });

  it('is for logged-in users only', async () => {
    const page = await world.browser().get('/nachricht/x/antworten');
    assert.equal(page.status, 303);
    assert.equal(page.location, '/anmelden');
  });
});
