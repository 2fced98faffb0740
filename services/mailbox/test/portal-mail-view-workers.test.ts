// The message page's parse and sanitise run in worker threads under a time limit (message-view-workers.ts): 4 MB of
// plain HTML took seconds of the portal's one event loop per view, and a client may open 120 views a minute, so a
// few clients opening one big message kept everyone's logins and pages waiting. A view over its time falls back to
// the text part or the original; a worker that dies is a 500 page and is replaced; a view made in the last minute is
// not made again for the same mailbox. An attachment download and the reply form's quote parse the whole message
// too: they run in the same workers under the same limit; over it, the download answers a page offering the
// original, the reply form opens without its quote.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { attachmentPart, htmlPart, message, multipart, textPart } from './mime-fixtures.ts';
import { storeMessage } from './portal-mail-helpers.ts';
import { type Browser, loggedInBrowser, logIn, type PortalWorld, startPortalWorld } from './portal-world.ts';
import { agencyWith } from './portal-write-fixtures.ts';

const PASSWORD = 'correct horse battery staple';
const STALLING_VIEW_WORKER = new URL('./stalling-view-worker.ts', import.meta.url);

let counter = 0;
const loggedInUser = (world: PortalWorld) =>
  loggedInBrowser(world, `leser${++counter}-${Date.now().toString(36)}@example.org`, PASSWORD);

/**
 * Requests `url` of `browser` (a message that stalls its worker) and, while it runs, the login page of another client:
 * answered before the first, the portal's event loop was free. The first page, once answered.
 */
async function answeringOthersMeanwhile(world: PortalWorld, browser: Browser, url: string, what: string) {
  let answered = false;
  const running = browser.get(url).then((page) => {
    answered = true;
    return page;
  });
  assert.equal((await world.browser('192.0.2.7').get('/anmelden')).status, 200);
  assert.equal(answered, false, `the login page was answered while the ${what} was still running`);
  return running;
}

/** The log lines with `code`, parsed. */
const logged = (world: PortalWorld, code: string) =>
  world.logLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.code === code);

describe('a message view over its time limit (real worker, 300 ms)', () => {
  let world: PortalWorld;
  before(async () => {
    world = await startPortalWorld({ settings: { messageViewCpuLimitMs: 300 } });
  });
  after(() => world.close());

  it('stops sanitising 4 MB of plain HTML at the limit and shows the page without it', async () => {
    const { mailbox, browser } = await loggedInUser(world);
    // 4 MB of well-formed, flat HTML: seconds of sanitising (1.5–4.5 s measured), a fraction of that parsing.
    const paragraph = '<p>Sehr geehrte Damen und Herren, <b>hier</b> ist <a href="https://a.example/x">Text</a>.</p>\n';
    const html = paragraph.repeat(Math.floor((4 * 1024 * 1024 - 1024) / paragraph.length));
    const raw = message({ subject: 'Groß' }, multipart('alternative', [textPart('Der reine Text'), htmlPart(html)]));
    const stored = await storeMessage(world, mailbox, raw);

    const page = await browser.get(`/nachricht/${stored.rowId}`);
    assert.equal(page.status, 200);
    assert.doesNotMatch(page.body, /<iframe/);
    assert.match(page.body, /<h1 id="message-subject">Groß<\/h1>/);
    assert.match(page.body, /nicht rechtzeitig/);
    assert.match(page.body, /href="\/nachricht\/[0-9a-f-]{36}\/original"/);
    const [line] = logged(world, 'PORTAL_VIEW_TIME_LIMIT');
    assert.equal(line?.mailboxId, mailbox.id);
    assert.equal(line?.messageId, stored.messageId);
    assert.doesNotMatch(world.logLines.join('\n'), /Sehr geehrte|reine Text/, 'no content in the log');
  });
});

describe('message views in workers (a worker that stalls or crashes on a marker, 2 s)', () => {
  let world: PortalWorld;
  before(async () => {
    world = await startPortalWorld({
      settings: { messageViewCpuLimitMs: 2000, messageViewWorkers: 1, internalDomains: ['behoerde.example'] },
      messageViewWorkerUrl: STALLING_VIEW_WORKER,
    });
    // The reply form is for messages from an agency (the fixtures' sender is amt@behoerde.example).
    await agencyWith(world.db.pool, 'Amt', 'behoerde.example', ['amt@behoerde.example'], ['amt@behoerde.example']);
  });
  after(() => world.close());

  it('shows the text part with a notice when the HTML is not sanitised in time, answering others meanwhile', async () => {
    const { mailbox, browser } = await loggedInUser(world);
    const raw = message(
      { subject: 'Langsam' },
      multipart('alternative', [textPart('Der reine Text'), htmlPart('<p>STALL-AFTER-PARSE</p>')]),
    );
    const stored = await storeMessage(world, mailbox, raw);
    const page = await answeringOthersMeanwhile(world, browser, `/nachricht/${stored.rowId}`, 'view');
    assert.equal(page.status, 200);
    assert.match(page.body, /<pre class="message-text">Der reine Text<\/pre>/);
    assert.match(page.body, /formatierte Fassung dieser Nachricht konnte nicht rechtzeitig aufbereitet werden/);
    assert.doesNotMatch(page.body, /<iframe/);
    // The frame and the page again come from the view cache: no second run into the limit.
    assert.equal((await browser.get(`/nachricht/${stored.rowId}/inhalt`)).status, 404);
    assert.equal((await browser.get(`/nachricht/${stored.rowId}?lang=en`)).status, 200);
    const lines = logged(world, 'PORTAL_VIEW_TIME_LIMIT').filter((line) => line.messageId === stored.messageId);
    assert.deepEqual(
      lines.map((line) => [line.stage, line.mailboxId]),
      [['sanitising', mailbox.id]],
    );
  });

  it('offers the original with a notice when the message is not parsed in time', async () => {
    const { mailbox, browser } = await loggedInUser(world);
    const stored = await storeMessage(world, mailbox, message({ subject: 'Zäh' }, textPart('STALL-BEFORE-PARSE')));
    const page = await browser.get(`/nachricht/${stored.rowId}?lang=en`);
    assert.equal(page.status, 200);
    assert.match(page.body, /<h1 id="message-subject">Zäh<\/h1>/, 'the subject from the sealed summary');
    assert.match(page.body, /could not be prepared for display in time\. Download the original/);
    assert.match(page.body, /href="\/nachricht\/[0-9a-f-]{36}\/original"/);
    const [line] = logged(world, 'PORTAL_VIEW_TIME_LIMIT').filter((entry) => entry.messageId === stored.messageId);
    assert.equal(line?.stage, 'parsing');
  });

  it('answers a worker that dies with an error page, and shows the next message with a new worker', async () => {
    const { mailbox, browser } = await loggedInUser(world);
    const crashing = await storeMessage(world, mailbox, message({}, textPart('CRASH-THE-WORKER')));
    const page = await browser.get(`/nachricht/${crashing.rowId}`);
    assert.equal(page.status, 500);
    const [line] = logged(world, 'PORTAL_VIEW_WORKER_FAILED');
    assert.equal(line?.messageId, crashing.messageId);
    assert.equal(line?.mailboxId, mailbox.id);

    const ordinary = await storeMessage(world, mailbox, message({}, textPart('Guten Tag')));
    const next = await browser.get(`/nachricht/${ordinary.rowId}`);
    assert.equal(next.status, 200);
    assert.match(next.body, /<pre class="message-text">Guten Tag<\/pre>/);
  });

  it('makes the view of a page and its frame once, for its own mailbox only, again after a minute or a deletion', async () => {
    const { mailbox, browser } = await loggedInUser(world);
    const stored = await storeMessage(world, mailbox, message({}, htmlPart('<p>Hallo <b>Welt</b></p>')));
    const made = () => logged(world, 'PORTAL_MESSAGE_VIEW').filter((line) => line.messageId === stored.messageId);

    assert.equal((await browser.get(`/nachricht/${stored.rowId}`)).status, 200);
    const frame = await browser.get(`/nachricht/${stored.rowId}/inhalt`);
    assert.match(frame.body, /<body><p>Hallo <b>Welt<\/b><\/p><\/body>/);
    assert.equal(made().length, 1);

    // Another mailbox does not see it, cached or not.
    const other = await loggedInUser(world);
    assert.equal((await other.browser.get(`/nachricht/${stored.rowId}/inhalt`)).status, 404);

    world.clock.advance(61_000);
    assert.equal((await browser.get(`/nachricht/${stored.rowId}/inhalt`)).status, 200);
    assert.equal(made().length, 2);

    assert.equal(
      (await browser.submit(`/nachricht/${stored.rowId}`, {}, `/nachricht/${stored.rowId}/papierkorb`)).status,
      303,
    );
    assert.equal(
      (await browser.submit(`/nachricht/${stored.rowId}`, {}, `/nachricht/${stored.rowId}/loeschen`)).status,
      303,
    );
    assert.equal((await browser.get(`/nachricht/${stored.rowId}/inhalt`)).status, 404);
  });

  it('keeps no view of a mailbox past a logout', async () => {
    const address = `abmelder${++counter}-${Date.now().toString(36)}@example.org`;
    const { mailbox, browser } = await loggedInBrowser(world, address, PASSWORD);
    const stored = await storeMessage(world, mailbox, message({}, htmlPart('<p>Nur bis zur Abmeldung</p>')));
    const made = () => logged(world, 'PORTAL_MESSAGE_VIEW').filter((line) => line.messageId === stored.messageId);
    assert.equal((await browser.get(`/nachricht/${stored.rowId}/inhalt`)).status, 200);
    await browser.get('/postfach/eingang');
    assert.equal((await browser.post('/abmelden')).status, 303);
    assert.equal((await logIn(browser, address, PASSWORD)).status, 303);
    assert.equal((await browser.get(`/nachricht/${stored.rowId}/inhalt`)).status, 200);
    assert.equal(made().length, 2);
  });

  it('keeps no view that was still being made when its mailbox logged out', async () => {
    const address = `abmelder${++counter}-${Date.now().toString(36)}@example.org`;
    const { mailbox, browser } = await loggedInBrowser(world, address, PASSWORD);
    const raw = message(
      { subject: 'Während der Abmeldung' },
      multipart('alternative', [textPart('Nur bis zur Abmeldung'), htmlPart('<p>STALL-AFTER-PARSE</p>')]),
    );
    const stored = await storeMessage(world, mailbox, raw);
    await browser.get('/postfach/eingang');
    // The view is in its worker (until the 2 s limit) while the same browser logs out.
    const running = browser.get(`/nachricht/${stored.rowId}`);
    assert.equal((await browser.post('/abmelden')).status, 303);
    assert.equal((await running).status, 200);

    assert.equal((await logIn(browser, address, PASSWORD)).status, 303);
    assert.equal((await browser.get(`/nachricht/${stored.rowId}`)).status, 200);
    const ofThis = (code: string) => logged(world, code).filter((line) => line.messageId === stored.messageId);
    assert.equal(ofThis('PORTAL_MESSAGE_VIEW_CACHED').length, 0, 'the view made before the logout was kept');
    assert.equal(ofThis('PORTAL_VIEW_TIME_LIMIT').length, 2);
  });

  it('answers an attachment not read in time with a page offering the original, answering others meanwhile', async () => {
    const { mailbox, browser } = await loggedInUser(world);
    const raw = message(
      { subject: 'Anlage' },
      multipart('mixed', [
        textPart('STALL-BEFORE-PARSE'),
        attachmentPart('application/pdf', 'bescheid.pdf', Buffer.from('%PDF-1.4 Inhalt der Anlage')),
      ]),
    );
    const stored = await storeMessage(world, mailbox, raw);
    const page = await answeringOthersMeanwhile(world, browser, `/nachricht/${stored.rowId}/anhang/0`, 'download');
    assert.equal(page.status, 503);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.equal(page.headers['content-disposition'], undefined, 'a page, not a file');
    assert.match(page.body, /Anhang konnte nicht rechtzeitig aus der Nachricht gelesen werden/);
    assert.match(page.body, new RegExp(`href="/nachricht/${stored.rowId}/original" download`));
    const lines = logged(world, 'PORTAL_VIEW_TIME_LIMIT').filter((line) => line.messageId === stored.messageId);
    assert.deepEqual(
      lines.map((line) => [line.job, line.stage, line.mailboxId]),
      [['attachment', 'parsing', mailbox.id]],
    );
    assert.doesNotMatch(world.logLines.join('\n'), /Inhalt der Anlage|bescheid\.pdf/, 'no content in the log');

    // The page's parse runs out of its time too; after it, a download does not try again within the minute.
    assert.equal((await browser.get(`/nachricht/${stored.rowId}`)).status, 200);
    const english = await browser.get(`/nachricht/${stored.rowId}/anhang/0?lang=en`);
    assert.equal(english.status, 503);
    assert.match(english.body, /attachment could not be read from the message in time/);
    assert.match(english.body, /Download original/);
    const after = logged(world, 'PORTAL_VIEW_TIME_LIMIT').filter((line) => line.messageId === stored.messageId);
    assert.deepEqual(
      after.map((line) => line.job ?? 'view'),
      ['attachment', 'view', 'attachment'],
    );
    assert.equal(after[2]?.ms, 0, 'answered from the page outcome, without a worker');
  });

  it('downloads an ordinary attachment through the workers, byte for byte, after a stalled one', async () => {
    const { mailbox, browser } = await loggedInUser(world);
    const content = Buffer.alloc(100 * 1024, 7);
    const stored = await storeMessage(
      world,
      mailbox,
      message({}, multipart('mixed', [textPart('Anbei'), attachmentPart('application/pdf', 'a.pdf', content)])),
    );
    const download = await browser.get(`/nachricht/${stored.rowId}/anhang/0`);
    assert.equal(download.status, 200);
    assert.equal(download.body, content.toString('latin1'));
    assert.equal((await browser.get(`/nachricht/${stored.rowId}/anhang/1`)).status, 404);
  });

  it('opens the reply form without its quote and with a notice when the original is not read in time', async () => {
    const { mailbox, browser } = await loggedInUser(world);
    const stored = await storeMessage(world, mailbox, message({ subject: 'Frage' }, textPart('STALL-BEFORE-PARSE')));
    const page = await answeringOthersMeanwhile(world, browser, `/nachricht/${stored.rowId}/antworten`, 'quote');
    assert.equal(page.status, 200);
    assert.match(page.body, /value="Re: Frage"/);
    assert.match(page.body, /amt@behoerde\.example/);
    assert.match(page.body, /konnte nicht rechtzeitig zum Zitieren gelesen werden/);
    assert.doesNotMatch(page.body, /STALL-BEFORE-PARSE|schrieb:/, 'nothing quoted');
    // Kept a minute as a view is: a reload does not run into the limit again.
    const again = await browser.get(`/nachricht/${stored.rowId}/antworten?lang=en`);
    assert.match(again.body, /could not be read in time to quote it/);
    const lines = logged(world, 'PORTAL_VIEW_TIME_LIMIT').filter((line) => line.messageId === stored.messageId);
    assert.deepEqual(
      lines.map((line) => [line.job, line.stage, line.mailboxId]),
      [['quote', 'parsing', mailbox.id]],
    );
  });

  it('answers a worker that dies on a download with an error page, and opens the reply form without the quote', async () => {
    const { mailbox, browser } = await loggedInUser(world);
    const raw = message(
      { subject: 'Absturz' },
      multipart('mixed', [textPart('CRASH-THE-WORKER'), attachmentPart('text/plain', 'a.txt', Buffer.from('a'))]),
    );
    const crashing = await storeMessage(world, mailbox, raw);
    assert.equal((await browser.get(`/nachricht/${crashing.rowId}/anhang/0`)).status, 500);
    const form = await browser.get(`/nachricht/${crashing.rowId}/antworten`);
    assert.equal(form.status, 200);
    assert.match(form.body, /value="Re: Absturz"/);
    assert.match(form.body, /konnte nicht rechtzeitig zum Zitieren gelesen werden/);
    const lines = logged(world, 'PORTAL_VIEW_WORKER_FAILED').filter((line) => line.messageId === crashing.messageId);
    assert.deepEqual(
      lines.map((line) => line.mailboxId),
      [mailbox.id, mailbox.id],
    );
  });

  it('quotes an ordinary original through the workers, once a minute, for its own mailbox only', async () => {
    const address = `zitierer${++counter}-${Date.now().toString(36)}@example.org`;
    const { mailbox, browser } = await loggedInBrowser(world, address, PASSWORD);
    const stored = await storeMessage(
      world,
      mailbox,
      message({ subject: 'Bescheid' }, textPart('Ihr Antrag\n\nist da.')),
    );
    const made = () => logged(world, 'PORTAL_REPLY_QUOTE').filter((line) => line.messageId === stored.messageId);
    const form = await browser.get(`/nachricht/${stored.rowId}/antworten`);
    assert.equal(form.status, 200);
    assert.equal((await browser.get(`/nachricht/${stored.rowId}/antworten`)).status, 200);
    assert.equal(made().length, 1, 'the reload quoted from the kept quote');
    assert.equal(made()[0]?.mailboxId, mailbox.id);
    assert.match(form.body, /Am 2025-07-01 schrieb amt@behoerde\.example:\n&gt; Ihr Antrag\n&gt;\n&gt; ist da\./);
    assert.doesNotMatch(form.body, /rechtzeitig/);
    // Another mailbox: not found, whatever is kept.
    assert.equal((await (await loggedInUser(world)).browser.get(`/nachricht/${stored.rowId}/antworten`)).status, 404);
    // A logout forgets the quote with the views: logged in again, the same form is quoted from the message again.
    await browser.get('/postfach/eingang');
    assert.equal((await browser.post('/abmelden')).status, 303);
    assert.equal((await logIn(browser, address, PASSWORD)).status, 303);
    assert.match((await browser.get(`/nachricht/${stored.rowId}/antworten`)).body, /&gt; ist da\./);
    assert.equal(made().length, 2);
    assert.doesNotMatch(world.logLines.join('\n'), /Ihr Antrag/, 'no content in the log');
  });
});
