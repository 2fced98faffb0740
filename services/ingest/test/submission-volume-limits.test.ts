// Messages and recipients per hour on the submission listener, against the real PostgreSQL, RabbitMQ and Redis: a
// stolen account (or a compromised client of a trusted network) cannot flood the queues or the citizens' portal
// mailboxes. An account is counted under its name across sessions, client addresses and ingest replicas; a client of
// SMGW_SUBMISSION_NETWORKS without AUTH under its address. Each test's clients use addresses of their own in
// 127.0.0.0/8.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@smgw/observability';
import { createSubmissionAccount } from '@smgw/submission-accounts';
import { assertQueued } from '@smgw/testing';
import type { RunningIngest } from '../src/service.ts';
import { awayFromHourTurn, createTestWorld, type TestWorld } from './harness.ts';
import { SmtpTestClient } from './smtp-client.ts';

const PASSWORD = 'a long enough secret';

describe('messages and recipients per hour on the submission listener', () => {
  let world: TestWorld;
  /** Two replicas with the same limits; 127.10.0.0/16 is their trusted network, every other client must AUTH. */
  let ingest: RunningIngest;
  let replica: RunningIngest;
  const logLines: Record<string, unknown>[] = [];

  before(async () => {
    await awayFromHourTurn();
    world = await createTestWorld();
    const log = createLogger('ingest-test', 'info', { write: (line: string) => logLines.push(JSON.parse(line)) });
    const limits = {
      SMGW_SUBMISSION_NETWORKS: '127.10.0.0/16',
      SMGW_SUBMISSION_MESSAGES_PER_HOUR: '3',
      SMGW_SUBMISSION_RECIPIENTS_PER_HOUR: '5',
      SMGW_SUBMISSION_NETWORK_MESSAGES_PER_HOUR: '4',
      SMGW_SUBMISSION_NETWORK_RECIPIENTS_PER_HOUR: '6',
    };
    ({ ingest } = await world.start(limits, log));
    ({ ingest: replica } = await world.start(limits, log));
    for (const name of ['anna', 'bruno', 'clara', 'dora']) {
      await createSubmissionAccount(world.db.pool, {
        username: `${name}@behoerde.example`,
        password: PASSWORD,
        senderAddresses: [`${name}@behoerde.example`],
      });
    }
  });
  after(() => world.close());

  const accountSession = (user: string, address: string, on = ingest) =>
    SmtpTestClient.openAuthenticated(on.submissionPort, address, user, PASSWORD);

  const message = (from: string, to = ['citizen@mail.example']) => ({
    from,
    to,
    body: `From: ${from}\r\nSubject: Bescheid\r\n\r\nHallo\r\n`,
  });

  const limited = (l: Record<string, unknown>) =>
    l.code === 'SUBMISSION_MESSAGE_LIMIT' || l.code === 'SUBMISSION_RECIPIENT_LIMIT';
  const limitLines = (user: string) => logLines.filter((l) => limited(l) && l.user === user);

  it('refuses an account its next message with 451 4.7.1 naming the limit, across sessions, addresses and replicas', async () => {
    const first = await accountSession('anna@behoerde.example', '127.20.0.1');
    assertQueued((await first.sendMail(message('anna@behoerde.example'))).final?.text);
    assertQueued((await first.sendMail(message('anna@behoerde.example'))).final?.text);
    await first.quit();
    // Another address, another replica: the same account's count.
    const second = await accountSession('anna@behoerde.example', '127.20.0.2', replica);
    assertQueued((await second.sendMail(message('anna@behoerde.example'))).final?.text);
    const refused = await second.sendMail(message('anna@behoerde.example'));
    assert.equal(refused.mail.text, '451 4.7.1 Message limit reached: at most 3 messages an hour, try again later');
    await second.quit();
    assert.equal((await world.takeEnvelopes('smgw.scan')).length, 3);
    // Another account goes on.
    const other = await accountSession('bruno@behoerde.example', '127.20.0.1');
    assertQueued((await other.sendMail(message('bruno@behoerde.example'))).final?.text);
    await other.quit();
    assert.equal((await world.takeEnvelopes('smgw.scan')).length, 1);
    // The operator sees which account (a warning with the username and the limit), and a metric counts it.
    const [line, ...more] = limitLines('anna@behoerde.example');
    assert.equal(more.length, 0);
    assert.equal(line?.level, 'warn');
    assert.equal(line?.code, 'SUBMISSION_MESSAGE_LIMIT');
    assert.equal(line?.max, 3);
    const metrics = await (await fetch(`http://127.0.0.1:${replica.healthPort}/metrics`)).text();
    assert.match(
      metrics,
      /smgw_ingest_submission_limited_total\{limit="messages",sender="account",service="ingest"\} 1/,
    );
  });

  it('takes recipients up to the hourly limit and answers 452 4.7.1 for the rest, so the message goes to those taken', async () => {
    const client = await accountSession('clara@behoerde.example', '127.21.0.1');
    const to = (n: number, from: number) => Array.from({ length: n }, (_, i) => `b${from + i}@mail.example`);
    assertQueued((await client.sendMail(message('clara@behoerde.example', to(3, 0)))).final?.text);
    const partly = await client.sendMail(message('clara@behoerde.example', to(3, 3)));
    assert.deepEqual(
      partly.rcpt.map((r) => r.text),
      [
        '250 2.1.5 Accepted',
        '250 2.1.5 Accepted',
        '452 4.7.1 Recipient limit reached: at most 5 recipients an hour, try again later',
      ],
    );
    assertQueued(partly.final?.text);
    const envelopes = await world.takeEnvelopes('smgw.scan');
    assert.deepEqual(envelopes.at(-1)?.recipients, ['b3@mail.example', 'b4@mail.example']);
    // The hour is used up: the next message gets no recipient.
    const refused = await client.sendMail(message('clara@behoerde.example', to(1, 6)));
    assert.equal(refused.rcpt[0]?.code, 452);
    await client.quit();
    assert.equal(limitLines('clara@behoerde.example').at(-1)?.code, 'SUBMISSION_RECIPIENT_LIMIT');
  });

  it('counts a trusted network client without AUTH under its own address, with the network limits', async () => {
    const send = async (address: string) => {
      const { client } = await SmtpTestClient.open(ingest.submissionPort, address);
      assert.equal((await client.command('EHLO relay.behoerde.example')).code, 250);
      const reply = await client.sendMail(message('clerk@behoerde.example'));
      await client.quit();
      return reply;
    };
    for (let i = 0; i < 4; i++) assertQueued((await send('127.10.0.1')).final?.text);
    assert.equal(
      (await send('127.10.0.1')).mail.text,
      '451 4.7.1 Message limit reached: at most 4 messages an hour, try again later',
    );
    // Another server of the network has its own count.
    assertQueued((await send('127.10.0.2')).final?.text);
    await world.takeEnvelopes('smgw.scan');
    const line = logLines.filter(limited).at(-1);
    assert.equal(line?.ip, '127.10.0.1');
    assert.equal(line?.user, undefined);
  });

  it('counts an account, not the network, when a trusted client logs in', async () => {
    const client = await accountSession('dora@behoerde.example', '127.10.0.1');
    for (let i = 0; i < 3; i++) assertQueued((await client.sendMail(message('dora@behoerde.example'))).final?.text);
    assert.equal((await client.sendMail(message('dora@behoerde.example'))).mail.code, 451);
    await client.quit();
    await world.takeEnvelopes('smgw.scan');
  });
});
