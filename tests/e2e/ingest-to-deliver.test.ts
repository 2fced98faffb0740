// The walking skeleton end to end: a real SMTP client (swaks, nodemailer) → ingest → RabbitMQ → scan (clamd) → deliver → an SMTP
// sink standing in for the agency's mail server, with the gateway running as real processes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { assertQueued, startTestGateway, type TestGateway, waitFor } from '@smgw/testing';
import nodemailer from 'nodemailer';

const run = promisify(execFile);

/** The message id from swaks' transcript, where the server's lines follow `<-  `. */
function queuedIdInTranscript(stdout: string): string {
  const reply = stdout.split('\n').find((line) => line.includes('queued as'));
  return assertQueued(reply?.replace(/^<-\s+/, '').trimEnd());
}

/** Length of the fields the gateway puts on top: Authentication-Results (mail from the internet), then Received. */
function headerLength(raw: Buffer): number {
  const text = raw.toString('latin1');
  const fieldEnd = (start: number) => {
    let end = text.indexOf('\r\n', start) + 2;
    while (text[end] === ' ' || text[end] === '\t') end = text.indexOf('\r\n', end) + 2;
    return end;
  };
  const start = text.startsWith('Authentication-Results: smgw.test;') ? fieldEnd(0) : 0;
  assert.ok(text.startsWith('Received: ', start), 'the Received header follows');
  return fieldEnd(start);
}

describe('ingest → scan → deliver, end to end', () => {
  let gw: TestGateway;
  let dir: string;

  before(async () => {
    gw = await startTestGateway();
    dir = await mkdtemp(join(tmpdir(), 'smgw-e2e-'));
  });
  after(async () => {
    await gw?.close();
  });

  async function trace(id: string) {
    const res = await fetch(`http://127.0.0.1:${gw.adminPort}/api/v1/messages/${id}`, {
      headers: { authorization: `Bearer ${gw.adminToken}` },
    });
    return (await res.json()) as { recipients: { address: string; state: string }[]; events: { event: string }[] };
  }

  it('delivers mail from the internet to the agency relay byte for byte, behind Authentication-Results and Received', async () => {
    const original = Buffer.from(
      [
        'From: Bürgerin <buergerin@example.org>',
        'To: amt@behoerde.example',
        'Subject: =?UTF-8?Q?Antrag_=C3=BCber_Stra=C3=9Fen?=',
        'Message-ID: <e2e-1@example.org>',
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 8bit',
        '',
        'Sehr geehrte Damen und Herren, äöü ß.',
        '.leading dot survives dot-stuffing',
        '',
      ].join('\r\n'),
    );
    const file = join(dir, 'inbound.eml');
    await writeFile(file, original);
    const { stdout } = await run('swaks', [
      '--server',
      `127.0.0.1:${gw.inboundPort}`,
      '--from',
      'buergerin@example.org',
      '--to',
      'amt@behoerde.example',
      '--data',
      `@${file}`,
      '--helo',
      'mx.example.org',
    ]);
    const id = queuedIdInTranscript(stdout);

    const arrived = await waitFor('the message at the agency relay', () =>
      gw.relay.messages.find((m) => m.raw.includes('e2e-1@example.org')),
    );
    assert.equal(arrived.mailFrom, 'buergerin@example.org');
    assert.deepEqual(arrived.rcptTo, ['amt@behoerde.example']);
    // The stub DNS of the test gateway knows no name: nothing to check, and so it says.
    assert.match(
      arrived.raw.subarray(0, 400).toString(),
      /^Authentication-Results: smgw\.test;\r\n\tspf=none [^\r]*;\r\n\tdkim=none [^\r]*;\r\n\tdmarc=none [^\r]*\r\nReceived: from mx\.example\.org/,
    );
    assert.ok(arrived.raw.includes(id), 'the Received header names the gateway message id');
    // swaks ends DATA with its own CRLF before the final dot, so what it sent is the file plus one CRLF.
    const sent = Buffer.concat([original, Buffer.from('\r\n')]);
    assert.ok(
      arrived.raw.subarray(arrived.raw.length - sent.length).equals(sent),
      'the original bytes arrive unchanged after the Received header',
    );
    assert.equal(
      arrived.raw.length,
      headerLength(arrived.raw) + sent.length,
      'nothing but Authentication-Results and the Received header is added',
    );

    const t = await waitFor('recipient state delivered', async () => {
      const tr = await trace(id);
      return tr.recipients[0]?.state === 'delivered' ? tr : undefined;
    });
    assert.ok(t.events.some((e) => e.event === 'message.received'));
    assert.ok(t.events.some((e) => e.event === 'recipient.delivered'));
  });

  it('keeps every byte of an odd message: 8-bit, long lines, lone dots, no trailing newline, broken MIME', async () => {
    const original = Buffer.concat([
      Buffer.from('From: x@example.org\r\nTo: amt@behoerde.example\r\nMessage-ID: <e2e-odd@example.org>\r\n'),
      Buffer.from('Content-Type: multipart/mixed; boundary="never-closed"\r\n\r\n--never-closed\r\n\r\n'),
      Buffer.from([0xc3, 0xa4, 0xff, 0xfe, 0x0d, 0x0a]),
      Buffer.from(`${'y'.repeat(1500)}\r\n.\r\n..\r\n. \r\nlast line without newline`),
    ]);
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gw.inboundPort, ignoreTLS: true });
    const info = await transport.sendMail({
      envelope: { from: 'x@example.org', to: ['amt@behoerde.example'] },
      raw: original,
    });
    transport.close();
    assertQueued(info.response);
    const arrived = await waitFor('the odd message at the relay', () =>
      gw.relay.messages.find((m) => m.raw.includes('e2e-odd@example.org')),
    );
    // An SMTP client must end the data with CRLF, so nodemailer adds one to the last line; the rest is identical.
    const sent = Buffer.concat([original, Buffer.from('\r\n')]);
    assert.ok(
      arrived.raw.subarray(headerLength(arrived.raw)).equals(sent),
      'identical bytes after Authentication-Results and the Received header',
    );
  });

  it('delivers agency-to-agency submission internally and hands outside mail without a key to the portal, never to the outside', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: gw.submissionPort,
      secure: false,
      ignoreTLS: true,
    });
    const internal = await transport.sendMail({
      from: 'sachbearbeitung@behoerde.example',
      to: 'registratur@lra.land.example',
      subject: 'intern',
      text: 'Akte 4711',
      messageId: '<e2e-internal@behoerde.example>',
    });
    assertQueued(internal.response);
    await waitFor('the internal message at the agency relay', () =>
      gw.relay.messages.find((m) => m.raw.includes('e2e-internal@behoerde.example')),
    );

    const outbound = await transport.sendMail({
      from: 'sachbearbeitung@behoerde.example',
      to: 'buerger@example.org',
      subject: 'Bescheid',
      text: 'vertraulich',
      messageId: '<e2e-outbound@behoerde.example>',
    });
    const id = assertQueued(outbound.response);
    transport.close();
    // No certificate or key for the citizen: encrypt hands the message to the portal (smgw.mailbox, where it waits
    // until the mailbox stage exists); it is still pending, and nothing reached the smarthost.
    await waitFor(
      'the outbound envelope waiting in smgw.mailbox',
      async () => (await gw.vhost.queueDepth('smgw.mailbox')) === 1,
      {
        timeoutMs: 30_000,
        intervalMs: 500,
      },
    );
    const t = await trace(id);
    assert.deepEqual(
      t.recipients.map((r) => [r.address, r.state]),
      [['buerger@example.org', 'pending']],
    );
    assert.ok(t.events.some((e) => e.event === 'recipient.to-portal'));
    assert.equal(gw.smarthost.messages.length, 0);
  });

  it('quarantines a virus from the internet and tells the agency postmaster, never the recipient', async () => {
    // EICAR, assembled at run time so that this file is not itself a "virus".
    const eicar = `X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-${'STANDARD-ANTIVIRUS-TEST-FILE'}!$H+H*`;
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gw.inboundPort, ignoreTLS: true });
    const info = await transport.sendMail({
      envelope: { from: 'angreifer@example.org', to: ['poststelle@behoerde.example'] },
      from: 'angreifer@example.org',
      to: 'poststelle@behoerde.example',
      subject: 'Rechnung',
      text: 'Siehe Anhang.',
      attachments: [{ filename: 'rechnung.com', content: Buffer.from(eicar) }],
    });
    transport.close();
    const id = assertQueued(info.response);
    const notice = await waitFor('the notice at the relay', () =>
      gw.relay.messages.find(
        (m) => m.raw.includes(Buffer.from(id)) && m.rcptTo.includes('postmaster@behoerde.example'),
      ),
    );
    assert.equal(notice.mailFrom, '');
    assert.ok(!notice.raw.includes(Buffer.from('EICAR-STANDARD')));
    const t = await trace(id);
    assert.deepEqual(
      t.recipients.map((r) => [r.address, r.state]),
      [['poststelle@behoerde.example', 'quarantined']],
    );
    assert.ok(t.events.some((e) => e.event === 'message.quarantined'));
    assert.ok(
      !gw.relay.messages.some(
        (m) => m.rcptTo.includes('poststelle@behoerde.example') && m.raw.includes(Buffer.from(id)),
      ),
    );
  });

  it('delivers a quarantined message once an operator releases it, and only then', async () => {
    const eicar = `X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-${'STANDARD-ANTIVIRUS-TEST-FILE'}!$H+H*`;
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gw.inboundPort, ignoreTLS: true });
    const info = await transport.sendMail({
      envelope: { from: 'labor@example.org', to: ['virenlabor@behoerde.example'] },
      from: 'labor@example.org',
      to: 'virenlabor@behoerde.example',
      subject: 'Probe für das Virenlabor',
      text: 'Testdatei anbei.',
      attachments: [{ filename: 'probe.com', content: Buffer.from(eicar) }],
    });
    transport.close();
    const id = assertQueued(info.response);
    const admin = (path: string, init: RequestInit = {}) =>
      fetch(`http://127.0.0.1:${gw.adminPort}/api/v1${path}`, {
        ...init,
        headers: { authorization: `Bearer ${gw.adminToken}`, 'x-smgw-operator': 'e2e-operator', ...init.headers },
      });
    const entry = await waitFor('the quarantine entry', async () => {
      const list = (await (await admin('/quarantine')).json()) as { entries: { id: string; messageId: string }[] };
      return list.entries.find((e) => e.messageId === id);
    });
    const atRelay = () =>
      gw.relay.messages.find(
        (m) => m.rcptTo.includes('virenlabor@behoerde.example') && m.raw.includes(Buffer.from(id)),
      );
    assert.equal(atRelay(), undefined, 'nothing is delivered while quarantined');

    const released = await admin(`/quarantine/${entry.id}/release`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'test file for the virus lab' }),
    });
    assert.equal(released.status, 200);
    await waitFor('the released message at the relay', atRelay);
    // The relay has the bytes before deliver commits the outcome: wait for the commit.
    const t = await waitFor('the released message recorded as delivered', async () => {
      const tr = await trace(id);
      return tr.recipients.every((r) => r.state !== 'pending') ? tr : undefined;
    });
    assert.deepEqual(
      t.recipients.map((r) => [r.address, r.state]),
      [['virenlabor@behoerde.example', 'delivered']],
    );
    assert.ok(t.events.some((e) => e.event === 'message.released'));
    assert.equal((await admin(`/quarantine/${entry.id}/release`, { method: 'POST' })).status, 409);
  });

  it('refuses to relay for outside domains on the MX listener', async () => {
    await assert.rejects(
      run('swaks', [
        '--server',
        `127.0.0.1:${gw.inboundPort}`,
        '--from',
        'spam@example.org',
        '--to',
        'victim@elsewhere.example',
        '--quit-after',
        'RCPT',
      ]),
      (err: { stdout?: string }) => /550 5\.7\.1/.test(err.stdout ?? ''),
    );
  });
});
