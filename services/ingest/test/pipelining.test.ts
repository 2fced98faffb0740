// RFC 2920 for unauthenticated clients outside the trusted networks (issue 8, finding 9): content sent before our
// 354, or anything after STARTTLS before the handshake, is refused with 554 5.5.0 and the connection closed; the
// pipelined bytes never reach the parser. Well-behaved pipelining still works.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertQueued } from '@smgw/testing';
import { PipeliningGuard } from '../src/pipelining-guard.ts';
import type { RunningIngest } from '../src/service.ts';
import { createTestWorld, type TestWorld } from './harness.ts';
import { SmtpTestClient } from './smtp-client.ts';

describe('PipeliningGuard', () => {
  const cases: [string, string[], number[], string | undefined][] = [
    ['a whole group ending in DATA', ['MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n'], [], undefined],
    [
      'content in the chunk of DATA',
      ['MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nSubject: x\r\n'],
      [],
      'DATA_NOT_LAST_IN_GROUP',
    ],
    ['content before the 354', ['DATA\r\n', 'Subject: x\r\n'], [], 'CONTENT_BEFORE_354'],
    // smtp-server reads the verb up to the first space and starts data mode whatever follows it.
    ['content after DATA with an argument', ['DATA x\r\nSubject: x\r\n'], [], 'DATA_NOT_LAST_IN_GROUP'],
    ['content before the 354 of DATA with an argument', ['data  \r\n', 'Subject: x\r\n'], [], 'CONTENT_BEFORE_354'],
    ['content after a command that only starts with DATA', ['DATAX\r\nRSET\r\n'], [], undefined],
    ['content after the 354', ['DATA\r\n', 'Subject: x\r\n'], [354], undefined],
    ['DATA split over chunks, then content in the same chunk', ['DA', 'TA\r\nX'], [], 'DATA_NOT_LAST_IN_GROUP'],
    ['a command after DATA was refused', ['DATA\r\n', 'RSET\r\n'], [503], undefined],
    ['bytes after STARTTLS in its chunk', ['STARTTLS\r\nMAIL FROM:<a@x>\r\n'], [], 'BYTES_AFTER_STARTTLS'],
    ['bytes after STARTTLS before our 220', ['STARTTLS\r\n', 'MAIL FROM:<a@x>\r\n'], [], 'BYTES_AFTER_STARTTLS'],
    ['TLS records after our 220', ['STARTTLS\r\n', '\u0016\u0003\u0001binary'], [220], undefined],
    ['a command after STARTTLS was refused', ['STARTTLS\r\n', 'NOOP\r\n'], [454], undefined],
    [
      'bytes after the reply to EHLO sent with STARTTLS',
      ['EHLO x\r\nSTARTTLS\r\n', 'MAIL FROM:<a@x>\r\n'],
      [250],
      'BYTES_AFTER_STARTTLS',
    ],
  ];
  for (const [name, chunks, replies, expected] of cases) {
    it(`${expected ? 'refuses' : 'allows'} ${name}`, () => {
      const guard = new PipeliningGuard();
      let violation: string | undefined;
      chunks.forEach((chunk, i) => {
        violation ??= guard.received(Buffer.from(chunk, 'latin1'));
        const reply = replies[i];
        if (reply !== undefined) guard.replied(reply);
      });
      assert.equal(violation, expected);
    });
  }

  it('waits for the reply to DATA itself: the replies to MAIL and RCPT before it do not end the wait', () => {
    const guard = new PipeliningGuard();
    assert.equal(guard.received(Buffer.from('MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n')), undefined);
    guard.replied(250);
    assert.equal(guard.received(Buffer.from('Subject: early\r\n')), 'CONTENT_BEFORE_354');
    const patient = new PipeliningGuard();
    patient.received(Buffer.from('MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n'));
    for (const code of [250, 250, 354]) patient.replied(code);
    assert.equal(patient.received(Buffer.from('Subject: in time\r\n')), undefined);
    const refused = new PipeliningGuard();
    refused.received(Buffer.from('MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n'));
    for (const code of [250, 550, 503]) refused.replied(code);
    assert.equal(refused.received(Buffer.from('RSET\r\n')), undefined);
  });

  it('holds for a transaction pipelined after the final dot: its content must wait for its own 354', () => {
    const guard = new PipeliningGuard();
    guard.received(Buffer.from('DATA\r\n'));
    guard.replied(354);
    const next = 'MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n';
    assert.equal(guard.received(Buffer.from(`body\r\n.\r\n${next}Subject: blind\r\n`)), 'DATA_NOT_LAST_IN_GROUP');
    const split = new PipeliningGuard();
    split.received(Buffer.from('DATA\r\n'));
    split.replied(354);
    assert.equal(split.received(Buffer.from('body\r\n.')), undefined);
    assert.equal(split.received(Buffer.from(`\r\n${next}`)), undefined);
    for (const code of [250, 250, 250]) split.replied(code);
    assert.equal(split.received(Buffer.from('Subject: early\r\n')), 'CONTENT_BEFORE_354');
  });

  it('lets commands pipelined after the final dot through (the reply to the data ends data mode)', () => {
    const guard = new PipeliningGuard();
    assert.equal(guard.received(Buffer.from('DATA\r\n')), undefined);
    guard.replied(354);
    assert.equal(guard.received(Buffer.from('body\r\n.\r\nQUIT\r\n')), undefined);
    guard.replied(250);
    assert.equal(guard.received(Buffer.from('MAIL FROM:<a@x>\r\n')), undefined);
  });
});

describe('unauthenticated pipelining on the listeners', () => {
  let world: TestWorld;
  let ingest: RunningIngest;
  let lenient: RunningIngest;

  before(async () => {
    world = await createTestWorld();
    // Loopback is outside the trusted networks here, as any internet client is.
    ({ ingest } = await world.start({ SMGW_SUBMISSION_NETWORKS: '10.0.0.0/8' }));
    ({ ingest: lenient } = await world.start({
      SMGW_SUBMISSION_NETWORKS: '10.0.0.0/8',
      SMGW_SMTP_FORBID_UNAUTH_PIPELINING: 'false',
    }));
  });
  after(() => world.close());

  async function session(port: number) {
    const { client, greeting } = await SmtpTestClient.open(port);
    assert.equal(greeting.code, 220);
    assert.equal((await client.command('EHLO client.example')).code, 250);
    return client;
  }

  const blind =
    'MAIL FROM:<a@sender.example>\r\nRCPT TO:<x@behoerde.example>\r\nDATA\r\nSubject: blind\r\n\r\nx\r\n.\r\n';

  it('answers content sent with DATA with 554 5.5.0, closes, and queues nothing', async () => {
    const client = await session(ingest.inboundPort);
    client.writeRaw(blind);
    const reply = await client.readReply();
    assert.equal(reply.text, '554 5.5.0 Error: SMTP protocol synchronization');
    await client.closed;
    assert.deepEqual(await world.takeInboundEnvelopes(), []);
  });

  it('answers content sent with a DATA that has an argument with 554 5.5.0 as well', async () => {
    const client = await session(ingest.inboundPort);
    client.writeRaw(blind.replace('DATA\r\n', 'DATA please\r\n'));
    assert.equal((await client.readReply()).text, '554 5.5.0 Error: SMTP protocol synchronization');
    await client.closed;
    assert.deepEqual(await world.takeInboundEnvelopes(), []);
  });

  it('answers bytes sent after STARTTLS before the handshake with 554 5.5.0', async () => {
    const client = await session(ingest.inboundPort);
    client.writeRaw('STARTTLS\r\nMAIL FROM:<a@sender.example>\r\n');
    assert.equal((await client.readReply()).text, '554 5.5.0 Error: SMTP protocol synchronization');
    await client.closed;
  });

  it('holds inside TLS too: content sent with DATA after STARTTLS gets 554 5.5.0', async () => {
    const client = await session(ingest.inboundPort);
    assert.equal((await client.startTls()).code, 220);
    assert.equal((await client.command('EHLO client.example')).code, 250);
    client.writeRaw(blind);
    assert.equal((await client.readReply()).text, '554 5.5.0 Error: SMTP protocol synchronization');
    await client.closed;
    assert.deepEqual(await world.takeInboundEnvelopes(), []);
  });

  it('still takes a pipelined group that ends with DATA and content after the 354', async () => {
    const client = await session(ingest.inboundPort);
    client.writeRaw('MAIL FROM:<a@sender.example>\r\nRCPT TO:<x@behoerde.example>\r\nDATA\r\n');
    assert.equal((await client.readReply()).code, 250);
    assert.equal((await client.readReply()).code, 250);
    assert.equal((await client.readReply()).code, 354);
    client.writeRaw('Subject: patient\r\n\r\nx\r\n.\r\nQUIT\r\n');
    assertQueued((await client.readReply()).text);
    assert.equal((await client.readReply()).code, 221);
    await client.closed;
    assert.equal((await world.takeInboundEnvelopes()).length, 1);
  });

  it('lets blind pipelining through when SMGW_SMTP_FORBID_UNAUTH_PIPELINING is off', async () => {
    const client = await session(lenient.inboundPort);
    client.writeRaw(blind);
    const replies = [];
    for (let i = 0; i < 4; i++) replies.push((await client.readReply()).code);
    assert.deepEqual(replies, [250, 250, 354, 250]);
    await client.quit();
    assert.equal((await world.takeInboundEnvelopes()).length, 1);
  });
});
