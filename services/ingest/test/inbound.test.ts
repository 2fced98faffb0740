// The inbound (MX) listener against the real PostgreSQL, RabbitMQ and Redis.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { assertQueued } from '@smgw/testing';
import { getTrace } from '@smgw/trace';
import type { IngestConfig } from '../src/config.ts';
import type { RunningIngest } from '../src/service.ts';
import { createTestWorld, type TestWorld } from './harness.ts';
import { SmtpTestClient } from './smtp-client.ts';

describe('the inbound listener', () => {
  let world: TestWorld;
  let ingest: RunningIngest;
  let config: IngestConfig;

  before(async () => {
    world = await createTestWorld();
    ({ ingest, config } = await world.start({
      SMGW_MAX_MESSAGE_BYTES: '4096',
      SMGW_SMTP_MAX_RECIPIENTS: '3',
      SMGW_MX_AGENCY_SENDER_EXCEPTIONS: 'newsletter@behoerde.example',
    }));
  });
  after(() => world.close());

  async function session() {
    const { client, greeting } = await SmtpTestClient.open(ingest.inboundPort);
    assert.equal(greeting.code, 220);
    assert.equal((await client.command('EHLO sender.example')).code, 250);
    return client;
  }

  async function messageCount(): Promise<number> {
    return Number((await world.db.pool.query('select count(*) from messages')).rows[0].count);
  }

  it('greets with SMGW_HOSTNAME and offers SIZE, 8BITMIME, PIPELINING, ENHANCEDSTATUSCODES, DSN and STARTTLS, no AUTH', async () => {
    const { client, greeting } = await SmtpTestClient.open(ingest.inboundPort);
    assert.match(greeting.text, /^220 smgw\.test ESMTP/);
    const ehlo = await client.command('EHLO sender.example');
    for (const feature of ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES', 'DSN', 'STARTTLS', 'SIZE 4096']) {
      assert.ok(
        ehlo.lines.some((line) => line.slice(4) === feature),
        `${feature} in ${ehlo.text}`,
      );
    }
    assert.ok(!ehlo.lines.some((line) => line.slice(4).startsWith('AUTH')), ehlo.text);
    assert.equal((await client.command('AUTH PLAIN AGEAYg==')).code, 500);
    await client.quit();
  });

  it('accepts mail for an agency address with 250 and the gateway message id, stores it and queues it for scan (plain: past encrypt)', async () => {
    const client = await session();
    const original =
      'From: a@sender.example\r\nTo: x@behoerde.example\r\nSubject: hello\r\n\r\nBody line\r\n.dotted (stuffed on the wire)\r\n';
    const reply = await client.sendMail({
      from: 'a@sender.example',
      to: ['x@behoerde.example'],
      body: original,
      mailParams: 'RET=HDRS ENVID=abc123',
    });
    await client.quit();
    const id = assertQueued(reply.final?.text);

    assert.deepEqual(await world.takeEnvelopes('smgw.encrypt'), [], 'nothing to decrypt or harvest: not for encrypt');
    const envelopes = await world.takeEnvelopes('smgw.scan');
    assert.equal(envelopes.length, 1);
    const envelope = envelopes[0];
    assert.ok(envelope);
    assert.equal(envelope.id, id);
    assert.equal(envelope.direction, 'inbound');
    assert.deepEqual(envelope.recipients, ['x@behoerde.example']);
    assert.equal(envelope.mailFrom, 'a@sender.example');
    assert.deepEqual(envelope.itinerary, ['scan', 'verify', 'deliver']);
    assert.equal(envelope.hop, 0);
    assert.equal(envelope.attempt, 0);
    // Nothing decided yet but mail authentication (mail-auth.test.ts; the stub DNS of the test world knows no name)
    // and, for encrypt, that the message is plain.
    assert.deepEqual(Object.keys(envelope.verdicts).sort(), ['auth', 'crypto']);
    assert.equal(envelope.verdicts.auth?.status, 'none');
    assert.deepEqual(envelope.verdicts.crypto, { status: 'plain', at: envelope.receivedAt, by: 'ingest' });
    assert.deepEqual(envelope.dsn, { ret: 'HDRS', envid: 'abc123' });
    assert.deepEqual(envelope.client, { listener: 'inbound', ip: '127.0.0.1', helo: 'sender.example', tls: false });

    // The blob: exactly our Received header, then the client's bytes (dot-unstuffed: the original).
    const stored = await createBlobStore(world.db.pool, { keyStore: createFolderKeyStore(world.db.keys) }).readAll(
      envelope.blob.ref,
    );
    const text = stored.toString('latin1');
    const headerEnd = text.indexOf('\r\n', text.indexOf('\r\n\tfor <x@behoerde.example>;') + 2) + 2;
    assert.match(
      text.slice(0, headerEnd),
      new RegExp(
        `^Received: from sender\\.example \\(\\[127\\.0\\.0\\.1\\]\\)\\r\\n\\tby smgw\\.test with ESMTP id ${id}\\r\\n` +
          '\\tfor <x@behoerde\\.example>; \\w{3}, \\d{2} \\w{3} \\d{4} \\d{2}:\\d{2}:\\d{2} \\+0000\\r\\n$',
      ),
    );
    assert.equal(text.slice(headerEnd), original);
    assert.equal(envelope.blob.size, stored.length);

    const trace = await getTrace(world.db.pool, id);
    assert.ok(trace);
    assert.equal(trace.direction, 'inbound');
    assert.deepEqual(
      trace.recipients.map((r) => [r.address, r.state]),
      [['x@behoerde.example', 'pending']],
    );
    assert.deepEqual(
      trace.events.map((e) => [e.stage, e.event, e.outcome]),
      [['ingest', 'message.received', 'next']],
    );
  });

  it('accepts many messages at once, each 250 naming a message recorded whole (rows, event, blob) and queued once', async () => {
    const bodies = Array.from(
      { length: 12 },
      (_, i) => `From: a@sender.example\r\nSubject: at once ${i}\r\n\r\n${i}\r\n`,
    );
    // Sessions reaching their commit together share statements (group commit); each hears 250 after its own.
    const ids = await Promise.all(
      bodies.map(async (body) => {
        const client = await session();
        const reply = await client.sendMail({ from: 'a@sender.example', to: ['x@behoerde.example'], body });
        await client.quit();
        return assertQueued(reply.final?.text);
      }),
    );
    assert.equal(new Set(ids).size, bodies.length);
    const queued = await world.takeEnvelopes('smgw.scan');
    assert.deepEqual(queued.map((e) => e.id).sort(), [...ids].sort());
    const blobs = createBlobStore(world.db.pool, { keyStore: createFolderKeyStore(world.db.keys) });
    for (const [i, id] of ids.entries()) {
      const trace = await getTrace(world.db.pool, id);
      assert.deepEqual(
        trace?.events.map((e) => e.event),
        ['message.received'],
      );
      assert.deepEqual(
        trace?.recipients.map((r) => [r.address, r.state]),
        [['x@behoerde.example', 'pending']],
      );
      const envelope = queued.find((e) => e.id === id);
      const stored = (await blobs.readAll(envelope?.blob.ref as string)).toString('latin1');
      assert.ok(stored.endsWith(bodies[i] as string), `message ${i} stored whole under its own id`);
    }
  });

  it('takes several agency recipients in one envelope, with their DSN requests', async () => {
    const client = await session();
    assert.equal((await client.command('MAIL FROM:<>')).code, 250);
    assert.equal(
      (await client.command('RCPT TO:<a@behoerde.example> NOTIFY=FAILURE,DELAY ORCPT=rfc822;a@old.example')).code,
      250,
    );
    assert.equal((await client.command('RCPT TO:<b@amt.sachsen.example>')).code, 250);
    assert.equal((await client.command('DATA')).code, 354);
    client.writeRaw('Subject: bounce\r\n\r\nx\r\n.\r\n');
    const final = await client.readReply();
    await client.quit();
    assertQueued(final.text);
    const [envelope] = await world.takeInboundEnvelopes();
    assert.deepEqual(envelope?.recipients, ['a@behoerde.example', 'b@amt.sachsen.example']);
    assert.equal(envelope?.mailFrom, '');
    assert.deepEqual(envelope?.dsn, {
      notify: { 'a@behoerde.example': ['FAILURE', 'DELAY'] },
      orcpt: { 'a@behoerde.example': 'rfc822;a@old.example' },
    });
  });

  it('answers pipelined commands in order (PIPELINING)', async () => {
    const client = await session();
    client.writeRaw(
      'MAIL FROM:<a@sender.example>\r\nRCPT TO:<x@behoerde.example>\r\nRCPT TO:<y@evil.example>\r\nDATA\r\n',
    );
    const replies = [];
    for (let i = 0; i < 4; i++) replies.push((await client.readReply()).text);
    assert.deepEqual(replies, [
      '250 2.1.0 Accepted',
      '250 2.1.5 Accepted',
      '550 5.7.1 Relaying denied',
      '354 End data with <CR><LF>.<CR><LF>',
    ]);
    client.writeRaw('Subject: pipelined\r\n\r\nx\r\n.\r\nQUIT\r\n');
    assertQueued((await client.readReply()).text);
    assert.equal((await client.readReply()).code, 221);
    await client.closed;
    const [envelope] = await world.takeInboundEnvelopes();
    assert.deepEqual(envelope?.recipients, ['x@behoerde.example']);
  });

  it('denies relaying with 550 5.7.1 (never an open relay), also for tricky address forms', async () => {
    const client = await session();
    assert.equal((await client.command('MAIL FROM:<spammer@evil.example>')).code, 250);
    for (const rcpt of [
      '<victim@gmail.example>',
      '<@relay.example:victim@evil.example>',
      '<@a,@b:victim@evil.example>',
      '<victim@behoerde.example.evil.example>',
    ]) {
      assert.equal((await client.command(`RCPT TO:${rcpt}`)).text, '550 5.7.1 Relaying denied', rcpt);
    }
    // Two '@' never reach the policy: smtp-server refuses them as bad syntax. Either way: refused for good.
    for (const rcpt of ['<user@behoerde.example@evil.example>', '<"user@behoerde.example"@evil.example>']) {
      const reply = await client.command(`RCPT TO:${rcpt}`);
      assert.ok(reply.code === 501 || reply.code === 550, `${rcpt}: ${reply.text}`);
    }
    assert.equal((await client.command('DATA')).code, 503);
    await client.quit();
    assert.deepEqual(await world.takeInboundEnvelopes(), []);
  });

  it('refuses local parts a server after us might route (%, !, quoted) with 550 5.1.3, also for agency domains', async () => {
    const client = await session();
    assert.equal((await client.command('MAIL FROM:<a@sender.example>')).code, 250);
    for (const rcpt of [
      '<u%evil.example@behoerde.example>',
      '<u%behoerde.example@evil.example>',
      '<evil.example!u@behoerde.example>',
      '<"u"@behoerde.example>',
      // An address literal is no plain address either (deliver would not send to it): refused for good, not relayed.
      '<victim@[192.0.2.1]>',
    ]) {
      assert.equal((await client.command(`RCPT TO:${rcpt}`)).text, '550 5.1.3 Recipient address not accepted', rcpt);
    }
    assert.equal((await client.command('DATA')).code, 503);
    await client.quit();
    assert.deepEqual(await world.takeInboundEnvelopes(), []);
  });

  // RFC 5321 §4.5.3.1.3: an address of at most 254 octets (@smgw/config addressTooLong). smtp-server refuses over 253
  // characters itself (501, "Bad … address syntax"), but counts characters: 200 two-octet letters, or a domain whose
  // A-labels (the spelling kept) are longer than as written, were taken.
  it('refuses a recipient or sender longer than 254 octets with 501 Path too long, and takes one at the limit', async () => {
    const client = await session();
    const wideLabel = `${'a'.repeat(55)}ü`;
    const wideSender = `${'ü'.repeat(120)}@sender.example`;
    assert.equal((await client.command(`MAIL FROM:<${wideSender}>`)).text, '501 5.1.7 Path too long');
    assert.equal((await client.command(`MAIL FROM:<${'l'.repeat(9_986)}@sender.example>`)).code, 501);
    const srsSender = `SRS0=HHH=TT=${'verwaltung'.repeat(5)}.example=${'b'.repeat(9)}@forward.example`;
    assert.equal((await client.command(`MAIL FROM:<${srsSender}>`)).code, 250, 'a local part over 64 octets');
    for (const rcpt of [`${'l'.repeat(64)}@${wideLabel}.${wideLabel}.${wideLabel}.behoerde.example`]) {
      assert.equal((await client.command(`RCPT TO:<${rcpt}>`)).text, '501 5.1.3 Path too long', rcpt);
    }
    assert.equal((await client.command(`RCPT TO:<${'l'.repeat(9_983)}@behoerde.example>`)).code, 501);
    // 253 characters: smtp-server's own limit, one below ours.
    const atLimit = `${'l'.repeat(236)}@behoerde.example`;
    assert.equal((await client.command(`RCPT TO:<${atLimit}>`)).code, 250);
    assert.equal((await client.command('RSET')).code, 250);
    const reply = await client.sendMail({ from: srsSender, to: [atLimit], body: 'Subject: lang\r\n\r\nx\r\n' });
    await client.quit();
    assertQueued(reply.final?.text);
    const [envelope, ...more] = await world.takeInboundEnvelopes();
    assert.equal(more.length, 0);
    assert.deepEqual(envelope?.recipients, [atLimit]);
    assert.equal(envelope?.mailFrom, srsSender);
  });

  it('takes an agency domain written in capitals as that agency domain', async () => {
    const client = await session();
    const reply = await client.sendMail({
      from: 'a@sender.example',
      to: ['x@BEHOERDE.Example'],
      body: 'Subject: x\r\n\r\ny\r\n',
    });
    await client.quit();
    assertQueued(reply.final?.text);
    const [envelope] = await world.takeInboundEnvelopes();
    assert.equal(envelope?.direction, 'inbound');
  });

  it('refuses a message over SMGW_MAX_MESSAGE_BYTES with 552 5.3.4 and stores nothing', async () => {
    const before = await messageCount();
    const client = await session();
    assert.equal((await client.command('MAIL FROM:<a@sender.example> SIZE=5000')).code, 552);
    const reply = await client.sendMail({
      from: 'a@sender.example',
      to: ['x@behoerde.example'],
      body: `Subject: big\r\n\r\n${'x'.repeat(70)}\r\n`.repeat(80),
    });
    assert.equal(reply.final?.text, '552 5.3.4 Message too big');
    // The session goes on: the next message is fine.
    const next = await client.sendMail({ from: 'a@sender.example', to: ['x@behoerde.example'], body: 'small\r\n' });
    assertQueued(next.final?.text);
    await client.quit();
    assert.equal(await messageCount(), before + 1);
    assert.equal((await world.takeInboundEnvelopes()).length, 1);
  });

  it('answers 452 4.5.3 beyond SMGW_SMTP_MAX_RECIPIENTS', async () => {
    const client = await session();
    await client.command('MAIL FROM:<a@sender.example>');
    for (const n of [1, 2, 3]) assert.equal((await client.command(`RCPT TO:<r${n}@behoerde.example>`)).code, 250);
    assert.equal(
      (await client.command('RCPT TO:<r1@behoerde.example>')).code,
      250,
      'a repeated recipient is no new one',
    );
    assert.equal((await client.command('RCPT TO:<r4@behoerde.example>')).text, '452 4.5.3 Too many recipients');
    await client.quit();
  });

  const smugglingProbes: [string, string][] = [
    ['\\n.\\n', 'Subject: a\r\n\r\nfirst\n.\nMAIL FROM:<x@evil.example>\r\n'],
    ['\\r.\\r', 'Subject: a\r\n\r\nfirst\r.\rMAIL FROM:<x@evil.example>\r\n'],
    ['\\n.\\r\\n', 'Subject: a\r\n\r\nfirst\n.\r\nMAIL FROM:<x@evil.example>\r\n'],
    ['\\r\\n.\\n', 'Subject: a\r\n\r\nfirst\r\n.\nMAIL FROM:<x@evil.example>\r\n'],
    ['bare LF lines', 'Subject: a\n\nline one\nline two\n'],
    ['a bare CR', 'Subject: a\r\n\r\nline\rone\r\n'],
  ];
  for (const [name, body] of smugglingProbes) {
    it(`refuses a message with ${name} with 550 5.6.0 and publishes nothing`, async () => {
      const before = await messageCount();
      const client = await session();
      const reply = await client.sendMail({
        from: 'a@sender.example',
        to: ['x@behoerde.example'],
        body: `${body}\r\n.\r\n`,
        raw: true,
      });
      assert.equal(reply.final?.text, '550 5.6.0 Bare CR or LF in message (SMTP smuggling protection)');
      // The smuggled command was part of the refused DATA, not a command: the session is clean.
      assert.equal((await client.command('RSET')).code, 250);
      await client.quit();
      assert.equal(await messageCount(), before);
      assert.deepEqual(await world.takeInboundEnvelopes(), []);
    });
  }

  it('removes X-SMGW-* fields and Authentication-Results in our name from what the sender wrote', async () => {
    const client = await session();
    const reply = await client.sendMail({
      from: 'a@sender.example',
      to: ['x@behoerde.example'],
      body:
        'X-SMGW-Signature: TOTAL_PASSED; level=QES; signatures=1\r\n' +
        'X-SMGW-Decrypted: smime\r\nx-smgw-decryption : failed; reason=none\r\n' +
        'Authentication-Results: smgw.test; dmarc=pass\r\n' +
        'Authentication-Results: mx.sender.example; spf=pass\r\nSubject: forged\r\n\r\nbody\r\n',
    });
    await client.quit();
    assertQueued(reply.final?.text);
    // Plain mail skips encrypt, which removed a forged X-SMGW-Decrypted before: ingest has removed it already.
    const [envelope] = await world.takeEnvelopes('smgw.scan');
    assert.ok(envelope);
    assert.deepEqual(envelope.itinerary, ['scan', 'verify', 'deliver']);
    const stored = (
      await createBlobStore(world.db.pool, { keyStore: createFolderKeyStore(world.db.keys) }).readAll(envelope.blob.ref)
    ).toString('latin1');
    assert.ok(!/X-SMGW-/i.test(stored), stored);
    assert.ok(!stored.includes('Authentication-Results: smgw.test'), stored);
    assert.ok(stored.includes('Authentication-Results: mx.sender.example; spf=pass\r\nSubject: forged\r\n\r\nbody'));
    const received = (await getTrace(world.db.pool, envelope.id))?.events.find((e) => e.event === 'message.received');
    assert.ok(received, 'message.received recorded');
    assert.deepEqual((received.data as { removedGatewayFields?: string[] }).removedGatewayFields, [
      'X-SMGW-Signature',
      'X-SMGW-Decrypted',
      'x-smgw-decryption',
      'Authentication-Results',
    ]);
  });

  it('refuses a message with a NUL byte with 550 5.6.0 and publishes nothing', async () => {
    const before = await messageCount();
    const client = await session();
    const reply = await client.sendMail({
      from: 'a@sender.example',
      to: ['x@behoerde.example'],
      body: 'Subject: a\r\n\r\nvisible\u0000hidden\r\n.\r\n',
      raw: true,
    });
    assert.equal(reply.final?.text, '550 5.6.0 NUL byte in message');
    await client.quit();
    assert.equal(await messageCount(), before);
    assert.deepEqual(await world.takeInboundEnvelopes(), []);
  });

  it('refuses an agency domain as envelope sender from the internet with 550 5.7.1, but not its exceptions', async () => {
    const client = await session();
    // (A trailing dot never gets this far: smtp-server refuses it as bad syntax.)
    for (const sender of ['<chefin@behoerde.example>', '<chefin@BEHOERDE.Example>', '<x@amt.behoerde.example>']) {
      const reply = await client.command(`MAIL FROM:${sender}`);
      if (sender.includes('amt.')) assert.equal(reply.code, 250, sender);
      else assert.equal(reply.text, '550 5.7.1 Agency sender addresses are not accepted from the internet', sender);
      await client.command('RSET');
    }
    assert.equal((await client.command('MAIL FROM:<newsletter@behoerde.example>')).code, 250);
    await client.quit();
  });

  it('refuses an agency address in From or Sender from the internet with 550 5.7.1, but not its exceptions', async () => {
    const before = await messageCount();
    for (const field of ['From: Chefin <chefin@behoerde.example>', 'Sender: poststelle@BEHOERDE.example']) {
      const client = await session();
      const reply = await client.sendMail({
        from: 'a@sender.example',
        to: ['x@behoerde.example'],
        body: `${field}\r\nSubject: Anweisung\r\n\r\nBitte sofort ueberweisen.\r\n`,
      });
      await client.quit();
      assert.equal(reply.final?.text, '550 5.7.1 From or Sender address not allowed for this sender', field);
    }
    assert.equal(await messageCount(), before);
    assert.deepEqual(await world.takeInboundEnvelopes(), []);
    const client = await session();
    const reply = await client.sendMail({
      from: 'a@sender.example',
      to: ['x@behoerde.example'],
      body: 'From: newsletter@behoerde.example\r\nSubject: ok\r\n\r\nx\r\n',
    });
    await client.quit();
    assertQueued(reply.final?.text);
    assert.equal((await world.takeInboundEnvelopes()).length, 1);
  });

  const brokenMime: [string, Buffer][] = [
    ['no headers at all', Buffer.from('just some text\r\nand more\r\n')],
    [
      'binary junk (every byte value but NUL, CR and LF only as CRLF)',
      Buffer.concat([
        Buffer.from([...Array(256).keys()].filter((b) => b !== 0x0a && b !== 0x0d && b !== 0x00)),
        Buffer.from('\r\n\u0001\u00ff\r\n', 'latin1'),
      ]),
    ],
    ['8-bit text without MIME headers', Buffer.from('Subject: Grüße\r\n\r\nÄÖÜ äöü ß € \u00a0\r\n', 'utf8')],
    ['an empty message', Buffer.alloc(0)],
  ];
  for (const [name, body] of brokenMime) {
    it(`accepts ${name} and stores it byte-identical`, async () => {
      const client = await session();
      await client.command('MAIL FROM:<a@sender.example> BODY=8BITMIME');
      await client.command('RCPT TO:<x@behoerde.example>');
      assert.equal((await client.command('DATA')).code, 354);
      const stuffed = Buffer.from(body.toString('latin1').replace(/(^|\r\n)\./g, '$1..'), 'latin1');
      client.writeRaw(Buffer.concat([stuffed, Buffer.from(body.length ? '\r\n.\r\n' : '.\r\n')]));
      const final = await client.readReply();
      await client.quit();
      assertQueued(final.text);
      const [envelope] = await world.takeInboundEnvelopes();
      assert.ok(envelope);
      const stored = await createBlobStore(world.db.pool, { keyStore: createFolderKeyStore(world.db.keys) }).readAll(
        envelope.blob.ref,
      );
      const bodyStart = stored.indexOf('\r\n', stored.indexOf('\r\n\tfor <x@behoerde.example>;') + 2) + 2;
      const expected = body.length ? Buffer.concat([body, Buffer.from('\r\n')]) : body;
      assert.ok(stored.subarray(bodyStart).equals(expected));
    });
  }

  it('stores and publishes nothing when the client goes away in the middle of DATA', async () => {
    const before = await messageCount();
    const client = await session();
    await client.command('MAIL FROM:<a@sender.example>');
    await client.command('RCPT TO:<x@behoerde.example>');
    assert.equal((await client.command('DATA')).code, 354);
    client.writeRaw(`Subject: cut off\r\n\r\n${'half a message\r\n'.repeat(200)}`);
    client.destroy();
    await client.closed;
    // The listener is fine afterwards, and the cut-off message left no trace.
    const next = await session();
    const reply = await next.sendMail({ from: 'a@sender.example', to: ['x@behoerde.example'], body: 'whole\r\n' });
    await next.quit();
    assertQueued(reply.final?.text);
    assert.equal(await messageCount(), before + 1);
    assert.equal((await world.takeInboundEnvelopes()).length, 1);
  });

  it('survives a client that sends garbage instead of a TLS handshake after STARTTLS', async () => {
    const client = await session();
    assert.equal((await client.command('STARTTLS')).code, 220);
    client.writeRaw('this is not a TLS ClientHello\r\n'.repeat(20));
    await client.closed;
    const next = await session();
    assert.equal((await next.command('NOOP')).code, 250);
    await next.quit();
  });

  it('answers malformed commands with 5xx and keeps going', async () => {
    const client = await session();
    assert.equal((await client.command('MAIL FROM:not-an-address')).code, 501);
    assert.equal((await client.command('RCPT TO:<x@behoerde.example>')).code, 503);
    assert.equal((await client.command('BOGUS')).code, 500);
    assert.equal((await client.command('DATA')).code, 503);
    assert.equal((await client.command(`EHLO ${'x'.repeat(400)}`)).code, 501);
    assert.equal((await client.command('NOOP')).code, 250);
    await client.quit();
  });

  it('serves /readyz and /metrics with the ingest metrics', async () => {
    const ready = await fetch(`http://127.0.0.1:${ingest.healthPort}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(((await ready.json()) as { checks: unknown }).checks, { amqp: true, db: true, redis: true });
    const metrics = await (await fetch(`http://127.0.0.1:${ingest.healthPort}/metrics`)).text();
    assert.match(metrics, /smgw_ingest_messages_total\{listener="inbound",outcome="accepted",service="ingest"\} \d+/);
    assert.match(metrics, /smgw_ingest_messages_total\{listener="inbound",outcome="BARE_LINE_ENDING"/);
    assert.match(metrics, /smgw_ingest_bytes_total\{listener="inbound",service="ingest"\} \d+/);
    assert.match(metrics, /smgw_ingest_connections\{listener="inbound",service="ingest"\} \d+/);
    assert.match(metrics, /smgw_ingest_accept_duration_seconds_count\{[^}]*listener="inbound"[^}]*\} [1-9]\d*/);
    assert.equal(config.smtpBindHost, '127.0.0.1');
  });
});
