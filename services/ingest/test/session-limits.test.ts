// Session limits against clients that hold a session open (slow-loris): the deadline of a command line, that of a
// message, the junk command limit and the error limit, each over a real SMTP connection. The deadlines are shortened here
// (testOnlyDeadlines) so that no test waits minutes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunningIngest } from '../src/service.ts';
import { MAX_JUNK_COMMANDS, RECIPIENT_OVERSHOOT_LIMIT } from '../src/smtp-listener.ts';
import { isErrorReply } from '../src/smtp-server-patches.ts';
import { createTestWorld, type TestWorld } from './harness.ts';
import { type Reply, SmtpTestClient } from './smtp-client.ts';

const COMMAND_MS = 600;
const DATA_BASE_MS = 800;
/** 1 MiB buys 8 s here: the slow message below (64 KiB every 100 ms, 640 KiB/s) keeps far ahead of its deadline. */
const DATA_PER_MIB_MS = 8000;

const FROM = 'sender@example.org';
const TO = 'person@behoerde.example';
/** SMGW_SMTP_MAX_ERRORS_PER_SESSION's default. */
const MAX_ERRORS = 20;
const ERROR_LIMIT_REPLY = '421 4.7.0 Error: too many errors, closing';
/** Each refused, and each a refusal of another kind (syntax, sequence, policy, the relay's unknown user). */
const REFUSED_COMMANDS = [
  'MAIL FROM:<clerk@behoerde.example>', // 550 5.7.1 agency sender from outside
  'RCPT TO:<person@behoerde.example>', // 503 need MAIL command
  'MAIL FROM:<broken', // 501 syntax
  'BOGUS', // 500 command not recognized
];
const REFUSED_RECIPIENTS = [
  'someone@example.org', // 550 5.7.1 relaying denied
  'a%b@behoerde.example', // 550 5.1.3 not routable
  'nobody@behoerde.example', // 550 5.1.1 the relay does not know them (set in before)
];

/** The next reply, or undefined when none comes within `ms` (a session that is not ended stays silent). */
async function replyWithin(client: SmtpTestClient, ms: number): Promise<Reply | undefined> {
  const timer = sleep(ms).then(() => undefined);
  return Promise.race([client.readReply().catch(() => undefined), timer]);
}

function messageOf(bytes: number): Buffer {
  const line = `${'x'.repeat(76)}\r\n`;
  const header = `From: <${FROM}>\r\nTo: <${TO}>\r\nSubject: slow\r\n\r\n`;
  return Buffer.from(header + line.repeat(Math.ceil(bytes / line.length)), 'latin1');
}

describe('what counts as an error of the session', () => {
  const cases: [string, number, number, boolean][] = [
    ['a reply of 2xx or 3xx', 250, 0, false],
    ['354', 354, 0, false],
    ['a refused recipient (550 5.1.1, 550 5.7.1)', 550, 0, true],
    ['a temporary refusal (450 4.1.1, 451 4.3.0)', 450, 0, true],
    ['bad syntax or sequence (500, 501, 503)', 501, 0, true],
    ['a failed AUTH (535)', 535, 0, true],
    ['a 421, which ends the session anyway', 421, 0, false],
    ['452 too many recipients, within the overshoot limit', 452, 1000, false],
    ['452 too many recipients, beyond it', 452, 1001, true],
  ];
  for (const [name, code, overshoots, counted] of cases) {
    it(`${counted ? 'counts' : 'does not count'} ${name}`, () => {
      assert.equal(isErrorReply(code, overshoots, 1000), counted);
    });
  }
});

describe('session limits', () => {
  let world: TestWorld;
  let ingest: RunningIngest;
  before(async () => {
    world = await createTestWorld();
    ({ ingest } = await world.start({}, undefined, {
      testOnlyDeadlines: { commandMs: COMMAND_MS, dataBaseMs: DATA_BASE_MS, dataPerMiBMs: DATA_PER_MIB_MS },
    }));
    world.relay.rejectRecipient = (rcpt) =>
      rcpt.startsWith('nobody') ? { code: 550, message: '5.1.1 No such user' } : undefined;
  });
  after(() => world.close());

  const messageCount = async () =>
    (await world.db.pool.query<{ n: number }>('select count(*)::int as n from messages')).rows[0]?.n;

  it('ends a session whose command line does not arrive whole in time, however often bytes come', async () => {
    const { client } = await SmtpTestClient.open(ingest.inboundPort);
    assert.equal((await client.command('EHLO client.example')).code, 250);
    const started = Date.now();
    // A byte every 100 ms: smtp-server's idle timeout (60 s) never fires, the line never ends.
    const trickle = setInterval(() => client.writeRaw('N'), 100);
    try {
      const reply = await replyWithin(client, 5000);
      assert.equal(reply?.text, '421 4.4.2 Error: timeout exceeded');
      assert.ok(Date.now() - started >= COMMAND_MS - 50);
      await client.closed;
    } finally {
      clearInterval(trickle);
      client.destroy();
    }
  });

  it('keeps a session whose commands each arrive in time, however long it lasts in all', async () => {
    const { client } = await SmtpTestClient.open(ingest.inboundPort);
    assert.equal((await client.command('EHLO client.example')).code, 250);
    // Each command half the deadline after the last reply: twice the deadline in all.
    assert.equal((await client.command(`MAIL FROM:<${FROM}>`)).code, 250);
    for (let i = 0; i < 4; i++) {
      await sleep(COMMAND_MS / 2);
      assert.equal((await client.command(`RCPT TO:<${TO}>`)).code, 250);
    }
    await client.quit();
  });

  it('ends a session whose message trickles in, and accepts nothing of it', async () => {
    const before = await messageCount();
    const { client } = await SmtpTestClient.open(ingest.inboundPort);
    assert.equal((await client.command('EHLO client.example')).code, 250);
    assert.equal((await client.command(`MAIL FROM:<${FROM}>`)).code, 250);
    assert.equal((await client.command(`RCPT TO:<${TO}>`)).code, 250);
    assert.equal((await client.command('DATA')).code, 354);
    client.writeRaw(`From: <${FROM}>\r\nTo: <${TO}>\r\nSubject: trickle\r\n\r\n`);
    const started = Date.now();
    // A line every 100 ms: each far shorter than a command deadline, the message never ends.
    const trickle = setInterval(() => client.writeRaw('x\r\n'), 100);
    try {
      const reply = await replyWithin(client, 8000);
      assert.equal(reply?.text, '421 4.4.2 Error: timeout exceeded while receiving the message');
      assert.ok(Date.now() - started >= DATA_BASE_MS - 50);
      await client.closed;
    } finally {
      clearInterval(trickle);
      client.destroy();
    }
    await sleep(200);
    assert.equal(await messageCount(), before);
    assert.deepEqual(await world.takeInboundEnvelopes(), []);
  });

  it('gives a large message more time as it arrives: a slow one that keeps coming is accepted', async () => {
    const { client } = await SmtpTestClient.open(ingest.inboundPort);
    assert.equal((await client.command('EHLO client.example')).code, 250);
    assert.equal((await client.command(`MAIL FROM:<${FROM}>`)).code, 250);
    assert.equal((await client.command(`RCPT TO:<${TO}>`)).code, 250);
    assert.equal((await client.command('DATA')).code, 354);
    // 1.6 MiB in 64 KiB pieces every 100 ms: about 2.5 s, three times the base deadline.
    const message = messageOf(1.6 * 1024 * 1024);
    const started = Date.now();
    for (let at = 0; at < message.length; at += 64 * 1024) {
      client.writeRaw(message.subarray(at, at + 64 * 1024));
      await sleep(100);
    }
    client.writeRaw('.\r\n');
    const final = await client.readReply();
    assert.ok(Date.now() - started > 2 * DATA_BASE_MS, 'the message took longer than the base deadline');
    assert.equal(final.code, 250, final.text);
    await client.quit();
    assert.equal((await world.takeInboundEnvelopes()).length, 1);
  });

  it(`ends a session after ${MAX_JUNK_COMMANDS} junk commands (NOOP, RSET, HELP, VRFY, HELO, EHLO)`, async () => {
    const { client } = await SmtpTestClient.open(ingest.inboundPort);
    const junk = ['EHLO client.example', 'NOOP', 'RSET', 'HELP', 'VRFY someone', 'HELO client.example'];
    for (let i = 0; i < MAX_JUNK_COMMANDS; i++) {
      const reply = await client.command(junk[i % junk.length] as string);
      assert.ok(reply.code < 400, `${junk[i % junk.length]}: ${reply.text}`);
    }
    assert.equal((await client.command('NOOP')).text, '421 4.7.0 Error: too many commands without mail, closing');
    await client.closed;
  });

  it('counts junk commands again from each accepted message', async () => {
    const { client } = await SmtpTestClient.open(ingest.inboundPort);
    assert.equal((await client.command('EHLO client.example')).code, 250);
    for (let i = 1; i < MAX_JUNK_COMMANDS; i++) assert.equal((await client.command('NOOP')).code, 250);
    const sent = await client.sendMail({ from: FROM, to: [TO], body: messageOf(100).toString('latin1') });
    assert.equal(sent.final?.code, 250, sent.final?.text);
    for (let i = 0; i < MAX_JUNK_COMMANDS; i++) assert.equal((await client.command('NOOP')).code, 250);
    assert.equal((await client.command('NOOP')).code, 421);
    await client.closed;
    await world.takeInboundEnvelopes();
  });

  it(`ends a session with 421 right after its ${MAX_ERRORS}th refused command, of any kind`, async () => {
    const { client } = await SmtpTestClient.open(ingest.inboundPort);
    assert.equal((await client.command('EHLO client.example')).code, 250);
    let errors = 0;
    for (const line of REFUSED_COMMANDS) {
      const reply = await client.command(line);
      assert.ok(reply.code >= 400 && reply.code !== 421, `${line}: ${reply.text}`);
      errors++;
    }
    assert.equal((await client.command(`MAIL FROM:<${FROM}>`)).code, 250);
    for (; errors < MAX_ERRORS - 1; errors++) {
      const to = REFUSED_RECIPIENTS[errors % REFUSED_RECIPIENTS.length] as string;
      assert.equal((await client.command(`RCPT TO:<${to}>`)).code, 550, to);
    }
    // The last error still gets its own reply; the 421 follows at once, not at the next command.
    assert.equal((await client.command('RCPT TO:<someone@example.org>')).code, 550);
    assert.equal((await replyWithin(client, 2000))?.text, ERROR_LIMIT_REPLY);
    await client.closed;
  });

  it('runs nothing pipelined after the error limit: the message after it is neither taken nor stored', async () => {
    const before = await messageCount();
    const { client } = await SmtpTestClient.open(ingest.inboundPort);
    assert.equal((await client.command('EHLO client.example')).code, 250);
    const refused = Array.from({ length: MAX_ERRORS }, (_, i) => `RCPT TO:<stranger${i}@example.org>\r\n`);
    client.writeRaw(
      `MAIL FROM:<${FROM}>\r\n${refused.join('')}RCPT TO:<${TO}>\r\nDATA\r\n` +
        `From: <${FROM}>\r\nTo: <${TO}>\r\nSubject: after the limit\r\n\r\nbody\r\n.\r\nNOOP\r\n`,
    );
    assert.equal((await client.readReply()).code, 250);
    for (let i = 0; i < MAX_ERRORS; i++) assert.equal((await client.readReply()).code, 550);
    assert.equal((await client.readReply()).text, ERROR_LIMIT_REPLY);
    await client.closed;
    await sleep(200);
    assert.equal(await messageCount(), before);
    assert.deepEqual(await world.takeInboundEnvelopes(), []);
  });

  it('delivers in a session with a few refused recipients, and counts errors again from each accepted message', async () => {
    const { client } = await SmtpTestClient.open(ingest.inboundPort);
    assert.equal((await client.command('EHLO client.example')).code, 250);
    for (let round = 0; round < 3; round++) {
      // One error short of the limit in each round: the accepted message forgives them (Postfix does the same).
      for (let i = 0; i < MAX_ERRORS - 1 - REFUSED_RECIPIENTS.length; i++) {
        assert.ok((await client.command(REFUSED_COMMANDS[i % REFUSED_COMMANDS.length] as string)).code >= 500);
      }
      const sent = await client.sendMail({
        from: FROM,
        to: [...REFUSED_RECIPIENTS, TO],
        body: messageOf(100).toString('latin1'),
      });
      assert.deepEqual(
        sent.rcpt.map((r) => r.code),
        [550, 550, 550, 250],
      );
      assert.equal(sent.final?.code, 250, sent.final?.text);
    }
    await client.quit();
    assert.equal((await world.takeInboundEnvelopes()).length, 3);
  });

  it(`does not count 452 for too many recipients, up to ${RECIPIENT_OVERSHOOT_LIMIT} of them`, async () => {
    const { ingest: fewRecipients } = await world.start({ SMGW_SMTP_MAX_RECIPIENTS: '2' });
    const { client } = await SmtpTestClient.open(fewRecipients.inboundPort);
    assert.equal((await client.command('EHLO client.example')).code, 250);
    // A client that sends more recipients than we take gets 452 for the rest and sends them in the next transaction.
    const to = Array.from({ length: MAX_ERRORS + 10 }, (_, i) => `person${i}@behoerde.example`);
    const sent = await client.sendMail({ from: FROM, to, body: messageOf(100).toString('latin1') });
    assert.deepEqual(
      sent.rcpt.map((r) => r.code),
      [250, 250, ...to.slice(2).map(() => 452)],
    );
    assert.equal(sent.final?.code, 250, sent.final?.text);
    await client.quit();
    assert.equal((await world.takeInboundEnvelopes()).length, 1);
  });
});
