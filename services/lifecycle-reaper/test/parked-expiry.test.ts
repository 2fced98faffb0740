// A parked message given up (SMGW_PARKED_ACTION=remove, after SMGW_PARKED_RETENTION) against the real PostgreSQL and
// RabbitMQ, at injected times: its sender gets a DSN (RFC 5321 §6.1: it was answered 250), recorded in the expiry's
// transaction and published through the reaper's notice outbox, quoting at most the header block ingest received;
// nobody who asked for none gets one; and its blob stays for SMGW_MESSAGE_RETENTION after the expiry, so the parked
// envelope can still be replayed.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { BlobRef } from '@smgw/blob-store';
import { isPlainAddress } from '@smgw/config';
import { type Envelope, newMessageId } from '@smgw/envelope';
import { envelopeFixture } from '@smgw/testing';
import { type ExpiringMessage, getTrace, recordMessage, recordParkedAt } from '@smgw/trace';
import { simpleParser } from 'mailparser';
import { buildExpiryDsn, planExpiryDsn } from '../src/expiry-dsn.ts';
import { loadReaperTemplates } from '../src/notices.ts';
import { runSweeps } from '../src/run-sweeps.ts';
import { DAY_MS, World } from './world.ts';

const ORIGINAL = [
  'From: Absender <absender@behoerde.example>',
  'To: empfaenger@extern.example',
  'Subject: Bescheid 4711',
  'Message-ID: <bescheid-4711@behoerde.example>',
  '',
  'Der vertrauliche Inhalt.',
  '',
].join('\r\n');

const at = (days: number) => new Date(Date.now() + days * DAY_MS);

describe('a parked message given up', () => {
  let world: World;
  before(async () => {
    world = await World.create();
  });
  after(() => world.drop());

  /**
   * A message as ingest records it (its `message.received` names the blob), parked at encrypt with the envelope
   * `parked` (by default the one ingest made). Returns its id and blob.
   */
  const parkedMessage = async (
    overrides: Partial<Envelope> = {},
    parked: (received: Envelope) => Envelope = (e) => e,
    raw: string = ORIGINAL,
  ): Promise<{ id: string; blob: BlobRef }> => {
    const id = newMessageId();
    const blob = await world.store.put(Readable.from([Buffer.from(raw)]), { messageId: id });
    const envelope = envelopeFixture({
      id,
      blob,
      direction: 'outbound',
      mailFrom: 'absender@behoerde.example',
      recipients: ['empfaenger@extern.example'],
      ...overrides,
    });
    await recordMessage(world.db.pool, envelope, [
      { stage: 'ingest', event: 'message.received', outcome: 'next', data: { blob: blob.ref } },
    ]);
    await recordParkedAt(world.db.pool, 'encrypt')(
      parked(envelope),
      'RETRIES_EXHAUSTED',
      'ENCRYPT_FAILED: CRL fetch failed',
    );
    return { id, blob };
  };

  const dsnsAbout = (id: string) => world.published.filter((e) => e.relatesTo === id);
  const expiredData = async (id: string) =>
    (await getTrace(world.db.pool, id))?.events.find((e) => e.event === 'envelope.expired')?.data as {
      dsn: Record<string, unknown>;
    };

  it('tells the sender with a DSN (failed, 4.4.7) recorded in the outbox and published, quoting the header block as received', async () => {
    const { id } = await parkedMessage({
      dsn: { envid: 'ENV-4711', orcpt: { 'empfaenger@extern.example': 'rfc822;e@x' } },
    });
    const remove = world.reaperDeps({ parkedAction: 'remove' });
    assert.equal((await runSweeps(remove, { now: at(29) })).find((r) => r.sweep === 'parked')?.items, 0);
    assert.equal(dsnsAbout(id).length, 0, 'nothing before SMGW_PARKED_RETENTION');

    const reports = await runSweeps(remove, { now: at(31) });
    assert.equal(reports.find((r) => r.sweep === 'parked')?.items, 1);
    const trace = await getTrace(world.db.pool, id);
    assert.equal(trace?.recipients[0]?.state, 'bounced');
    assert.equal(trace?.recipients[0]?.detail, 'PARKED_EXPIRED');

    const [dsn, ...more] = dsnsAbout(id);
    assert.ok(dsn, 'a DSN was published');
    assert.equal(more.length, 0);
    assert.deepEqual(dsn.recipients, ['absender@behoerde.example']);
    assert.equal(dsn.mailFrom, '', 'a DSN has the null sender');
    assert.equal(dsn.direction, 'generated');
    assert.deepEqual((await expiredData(id)).dsn, {
      sent: true,
      messageId: dsn.id,
      recipients: ['empfaenger@extern.example'],
      headersQuoted: true,
    });
    const dsnTrace = await getTrace(world.db.pool, dsn.id);
    assert.deepEqual(
      dsnTrace?.events.map((e) => e.event),
      ['notice.generated', 'notice.published'],
      'recorded in the outbox, then confirmed',
    );

    const mail = (await world.store.readAll(dsn.blob.ref)).toString('utf8');
    assert.match(mail, /Content-Type: multipart\/report; report-type=delivery-status/);
    assert.match(mail, /Auto-Submitted: auto-replied/);
    assert.match(mail, /In-Reply-To: <bescheid-4711@behoerde\.example>/);
    assert.match(mail, /Original-Envelope-Id: ENV-4711/);
    assert.match(mail, /Final-Recipient: rfc822; empfaenger@extern\.example\r\nOriginal-Recipient: rfc822; e@x/);
    assert.match(mail, /Action: failed\r\nStatus: 4\.4\.7\r\nDiagnostic-Code: X-SMGW; PARKED_EXPIRED/);
    assert.match(mail, /Content-Type: text\/rfc822-headers[\s\S]*Subject: Bescheid 4711/);
    assert.doesNotMatch(mail, /vertrauliche Inhalt/, 'never the body');
    assert.doesNotMatch(mail, /CRL fetch failed|encrypt/i, 'never a stage’s error text');
  });

  it('quotes of the header block only the fields that identify the message, not kilobytes a stranger wrote (bounce spam)', async () => {
    const spam = Array.from({ length: 600 }, (_, i) => `X-Offer-${i}: Buy cheap pills at https://spam.example/${i}`);
    const { id } = await parkedMessage(
      { direction: 'inbound', mailFrom: 'opfer@anderswo.example', recipients: ['eingang@behoerde.example'] },
      (e) => e,
      `${spam.join('\r\n')}\r\n${ORIGINAL}`,
    );
    await runSweeps(world.reaperDeps({ parkedAction: 'remove' }), { now: at(31) });
    const [dsn] = dsnsAbout(id);
    assert.ok(dsn, 'a DSN was published');
    assert.deepEqual(dsn.recipients, ['opfer@anderswo.example']);
    const mail = (await world.store.readAll(dsn.blob.ref)).toString('utf8');
    assert.doesNotMatch(mail, /spam\.example|X-Offer/);
    assert.ok(mail.length < 12_000, `the DSN is ${mail.length} characters`);
    assert.match(mail, /Content-Type: text\/rfc822-headers[\s\S]*Subject: Bescheid 4711/);
    assert.match(mail, /In-Reply-To: <bescheid-4711@behoerde\.example>/);
  });

  it('quotes no header block that is not the one ingest received (a blob the gateway made, decrypted say)', async () => {
    // The parked envelope's blob is what the gateway made of it; the message row written by the parked stage (ingest
    // never recorded it) names that one: not what the sender sent.
    const id = newMessageId();
    const decrypted = await world.store.put(
      Readable.from([Buffer.from('Subject: Entschluesselter Betreff\r\n\r\nKlartext\r\n')]),
      { messageId: id },
    );
    await recordParkedAt(world.db.pool, 'encrypt')(
      envelopeFixture({
        id,
        blob: decrypted,
        mailFrom: 'fremd@extern.example',
        recipients: ['eingang@behoerde.example'],
      }),
      'RETRIES_EXHAUSTED',
      'ENCRYPT_FAILED: no key',
    );
    await runSweeps(world.reaperDeps({ parkedAction: 'remove' }), { now: at(31) });
    const [dsn] = dsnsAbout(id);
    assert.ok(dsn, 'the sender is told all the same');
    assert.equal((await expiredData(id)).dsn.headersQuoted, false);
    const mail = (await world.store.readAll(dsn.blob.ref)).toString('utf8');
    assert.doesNotMatch(mail, /text\/rfc822-headers|Entschluesselter|Klartext/);
    assert.match(mail, /Status: 4\.4\.7/);
  });

  it('sends no DSN to the null sender, for portal mail, or to a sender whose NOTIFY excludes FAILURE', async () => {
    const cases: { overrides: Partial<Envelope>; reason: string }[] = [
      { overrides: { mailFrom: '' }, reason: 'null-sender' },
      { overrides: { direction: 'portal' as const }, reason: 'portal' },
      {
        overrides: { dsn: { notify: { 'empfaenger@extern.example': ['NEVER' as const] } } },
        reason: 'notify',
      },
      {
        overrides: { dsn: { notify: { 'EMPFAENGER@extern.example': ['SUCCESS' as const, 'DELAY' as const] } } },
        reason: 'notify',
      },
    ];
    const ids: string[] = [];
    for (const c of cases) ids.push((await parkedMessage(c.overrides)).id);
    await runSweeps(world.reaperDeps({ parkedAction: 'remove' }), { now: at(31) });
    for (const [i, c] of cases.entries()) {
      const id = ids[i] ?? '';
      assert.equal(dsnsAbout(id).length, 0, `${c.reason}: nothing published`);
      assert.deepEqual((await expiredData(id)).dsn, { sent: false, reason: c.reason });
      const recorded = await world.db.pool.query(
        "select 1 from messages where direction = 'generated' and relates_to = $1",
        [id],
      );
      assert.equal(recorded.rowCount, 0, `${c.reason}: nothing recorded`);
    }
  });

  it('publishes in a later round the DSN a round committed but could not publish (the notice outbox)', async () => {
    const { id } = await parkedMessage();
    const broken = world.reaperDeps({
      parkedAction: 'remove',
      publisher: { publish: async () => Promise.reject(new Error('broker away')) },
    });
    await runSweeps(broken, { now: at(31) });
    assert.equal(dsnsAbout(id).length, 0);
    assert.equal((await expiredData(id)).dsn.sent, true, 'decided and recorded with the expiry');

    const reports = await runSweeps(world.reaperDeps({ parkedAction: 'remove' }), { now: at(31) });
    assert.equal(reports.find((r) => r.sweep === 'notice-outbox')?.items, 1);
    assert.equal(dsnsAbout(id).length, 1);
    await runSweeps(world.reaperDeps({ parkedAction: 'remove' }), { now: at(31) });
    assert.equal(dsnsAbout(id).length, 1, 'once');
  });

  it('keeps the blob of a given-up message for SMGW_MESSAGE_RETENTION after its expiry, not after its arrival', async () => {
    const { id, blob } = await parkedMessage();
    const delivered = await world.message('delivered');
    const remove = world.reaperDeps({ parkedAction: 'remove' });
    await runSweeps(remove, { now: at(31) });
    assert.equal((await getTrace(world.db.pool, id))?.recipients[0]?.state, 'bounced');

    await runSweeps(remove, { now: at(32) });
    assert.equal(await world.exists('blobs', 'id', delivered.blob.ref), false, 'finished 32 days after arrival: gone');
    assert.equal(await world.exists('blobs', 'id', blob.ref), true, 'given up a day ago: kept for a replay');
    await runSweeps(remove, { now: at(37.9) });
    assert.equal(await world.exists('blobs', 'id', blob.ref), true);

    await runSweeps(remove, { now: at(38.1) });
    assert.equal(await world.exists('blobs', 'id', blob.ref), false, 'SMGW_MESSAGE_RETENTION after the expiry: gone');
  });
});

describe('whom a DSN about a given-up message goes to', () => {
  const message = (overrides: Partial<ExpiringMessage> = {}, data?: ExpiringMessage['parked']['data']) =>
    ({
      messageId: 'm',
      traceId: 't',
      direction: 'outbound',
      mailFrom: 'a@behoerde.example',
      receivedAt: new Date(0),
      bounced: ['x@extern.example', 'y@extern.example'],
      parked: { messageId: 'm', stage: 'deliver', code: null, parkedAt: new Date(0), data },
      receivedBlob: undefined,
      ...overrides,
    }) satisfies ExpiringMessage;

  it('uses the parked envelope’s direction over the message row’s, and NOTIFY per recipient (none means FAILURE)', () => {
    const data = (notify: Record<string, ('NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY')[]>) => ({
      direction: 'outbound' as const,
      recipients: ['x@extern.example', 'y@extern.example'],
      dsn: { notify },
    });
    const table: [ExpiringMessage, ReturnType<typeof planExpiryDsn>][] = [
      [message(), { send: true, recipients: ['x@extern.example', 'y@extern.example'] }],
      [message({ direction: 'portal' }), { send: false, reason: 'portal' }],
      [
        message({ direction: 'portal' }, data({})),
        { send: true, recipients: ['x@extern.example', 'y@extern.example'] },
      ],
      [message({}, { ...data({}), direction: 'portal' }), { send: false, reason: 'portal' }],
      [message({ direction: 'generated', mailFrom: '' }), { send: false, reason: 'null-sender' }],
      [message({}, data({ 'x@extern.example': ['NEVER'] })), { send: true, recipients: ['y@extern.example'] }],
      [
        message({}, data({ 'X@Extern.example': ['FAILURE', 'DELAY'] })),
        { send: true, recipients: ['x@extern.example', 'y@extern.example'] },
      ],
      [
        message({}, data({ 'x@extern.example': ['NEVER'], 'y@extern.example': ['SUCCESS'] })),
        { send: false, reason: 'notify' },
      ],
    ];
    for (const [input, expected] of table) assert.deepEqual(planExpiryDsn(input), expected);
  });
});

describe('the recipients a DSN about a given-up message names', () => {
  const injected = 'x@behoerde.example\r\n\r\nBitte überweisen Sie die Gebühr an DE00 1234 5678';

  it('are plain addresses: ingest takes no recipient with a line break or control character', () => {
    // The recipients are those ingest accepted at RCPT TO (portal and generated mail get no such DSN): one rule,
    // isPlainAddress, refuses there what could break a line of the text part.
    for (const address of [injected, 'x@behoerde.example\n', 'x\u0000y@behoerde.example', 'x\ty@behoerde.example']) {
      assert.equal(isPlainAddress(address), false, JSON.stringify(address));
    }
  });

  it('are written one line each all the same, as deliver and scan write theirs', async () => {
    const templates = await loadReaperTemplates();
    const message = {
      messageId: 'm',
      traceId: 't',
      direction: 'inbound',
      mailFrom: 'fremder@extern.example',
      receivedAt: new Date(0),
      bounced: [injected],
      parked: { messageId: 'm', stage: 'deliver', code: null, parkedAt: new Date(0), data: undefined },
      receivedBlob: undefined,
    } satisfies ExpiringMessage;
    const mail = buildExpiryDsn({
      message,
      recipients: [injected],
      reportingMta: 'smgw.test',
      dsnMessageId: 'dsn',
      now: new Date(0),
      receivedHeaders: undefined,
      templates: templates['parked-expired-dsn'],
    });
    const parsed = await simpleParser(mail.createReadStream());
    assert.doesNotMatch(parsed.text ?? '', /^\s*Bitte überweisen/m);
    assert.match(parsed.text ?? '', /^ {2}<x@behoerde\.example Bitte überweisen Sie die Gebühr an DE00 1234 5678>$/m);
  });
});
