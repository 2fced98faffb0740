// Limits (Redis), infrastructure failures (broker, Redis) and shutdown, each in a world of its own.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { purgeBlobsOfMessages } from '@smgw/blob-store';
import { assertQueued, waitFor } from '@smgw/testing';
import { deleteAbandonedMessages, getTrace } from '@smgw/trace';
import type { RunningIngest } from '../src/service.ts';
import { createTestWorld, type TestWorld } from './harness.ts';
import { SmtpTestClient } from './smtp-client.ts';

describe('the connection limit per client address', () => {
  let world: TestWorld;
  let ingest: RunningIngest;
  before(async () => {
    world = await createTestWorld();
    ({ ingest } = await world.start({ SMGW_SMTP_MAX_CONNECTIONS_PER_CLIENT: '2' }));
  });
  after(() => world.close());

  it('answers 421 4.7.0 to one connection too many, and takes a new one once another closed', async () => {
    const first = await SmtpTestClient.open(ingest.inboundPort);
    const second = await SmtpTestClient.open(ingest.submissionPort);
    assert.equal(first.greeting.code, 220);
    assert.equal(second.greeting.code, 220);
    const third = await SmtpTestClient.connect(ingest.inboundPort);
    assert.equal((await third.readReply()).text, '421 4.7.0 Too many connections from your address');
    await third.closed;

    await first.client.quit();
    const fourth = await waitFor('a free connection slot', async () => {
      const attempt = await SmtpTestClient.open(ingest.inboundPort);
      if (attempt.greeting.code === 220) return attempt.client;
      await attempt.client.closed;
      return undefined;
    });
    await fourth.quit();
    await second.client.quit();
  });
});

describe('the connection limit per network (IPv4 /24, IPv6 /48)', () => {
  let world: TestWorld;
  let ingest: RunningIngest;
  before(async () => {
    world = await createTestWorld();
    ({ ingest } = await world.start({ SMGW_SMTP_MAX_CONNECTIONS_PER_NETWORK: '2' }));
  });
  after(() => world.close());

  it('answers 421 4.7.0 to a client of a network that has the maximum open, other networks still welcome', async () => {
    const first = await SmtpTestClient.open(ingest.inboundPort, '127.0.0.2');
    const second = await SmtpTestClient.open(ingest.inboundPort, '127.0.0.3');
    assert.equal(first.greeting.code, 220);
    assert.equal(second.greeting.code, 220);
    const third = await SmtpTestClient.open(ingest.inboundPort, '127.0.0.4');
    assert.equal(third.greeting.text, '421 4.7.0 Too many connections from your address');
    await third.client.closed;
    const elsewhere = await SmtpTestClient.open(ingest.inboundPort, '127.0.1.4');
    assert.equal(elsewhere.greeting.code, 220);
    await elsewhere.client.quit();
    await first.client.quit();
    await second.client.quit();
  });
});

describe('the command rate per client address', () => {
  let world: TestWorld;
  let ingest: RunningIngest;
  before(async () => {
    world = await createTestWorld();
    ({ ingest } = await world.start({ SMGW_SMTP_COMMANDS_PER_MINUTE: '5' }));
  });
  after(() => world.close());

  it('answers 421 4.7.0 and closes the connection when a client sends too many commands', async () => {
    const { client } = await SmtpTestClient.open(ingest.inboundPort);
    // Fixed one-minute windows: within 11 commands the limit of 5 is hit even if a window ends in between.
    let refusal: string | undefined;
    for (let i = 0; i < 11 && !refusal; i++) {
      const reply = await client.command('NOOP');
      if (reply.code !== 250) refusal = reply.text;
    }
    assert.equal(refusal, '421 4.7.0 Rate limit exceeded, try again later');
    await client.closed;
  });
});

describe('when the broker refuses an envelope', () => {
  let world: TestWorld;
  let ingest: RunningIngest;
  before(async () => {
    world = await createTestWorld();
    ({ ingest } = await world.start());
  });
  after(() => world.close());

  it('answers 451 4.3.0, queues nothing and records message.refused', async () => {
    // Inbound mail starts at smgw.encrypt (decryption before scan), plain inbound mail past it at smgw.scan;
    // submitted mail at smgw.scan (next test).
    await world.deleteQueue('smgw.encrypt');
    await world.deleteQueue('smgw.scan');
    const { client } = await SmtpTestClient.open(ingest.inboundPort);
    await client.command('EHLO sender.example');
    const reply = await client.sendMail({ from: 'a@sender.example', to: ['x@behoerde.example'], body: 'x\r\n' });
    assert.equal(reply.final?.text, '451 4.3.0 Temporary failure, please retry');
    // The session goes on (the client may retry at once).
    assert.equal((await client.command('NOOP')).code, 250);
    await client.quit();

    const rows = await world.db.pool.query('select id from messages');
    assert.equal(rows.rowCount, 1);
    const trace = await getTrace(world.db.pool, rows.rows[0].id);
    assert.deepEqual(
      trace?.events.map((e) => [e.event, e.outcome, e.code]),
      [
        ['message.received', 'next', null],
        ['message.refused', 'retry', 'MQ_PUBLISH_RETURNED'],
      ],
    );
    assert.deepEqual(await world.takeEnvelopes('smgw.deliver'), []);
    assert.deepEqual(await world.takeEnvelopes('smgw.mailbox'), []);

    // What the reaper's refused-messages sweep does after its grace (here: as if it had passed) leaves nothing.
    const collected = await deleteAbandonedMessages(world.db.pool, new Date(Date.now() + 60_000));
    assert.deepEqual(collected, [rows.rows[0].id]);
    assert.deepEqual((await purgeBlobsOfMessages(world.db.pool, collected)).blobs, 1);
    const left = await world.db.pool.query(
      'select (select count(*)::int from messages) as messages, (select count(*)::int from blobs) as blobs',
    );
    assert.deepEqual(left.rows[0], { messages: 0, blobs: 0 });
  });

  it('answers 451 when the two envelopes of a split message (internal and outbound) are both refused', async () => {
    // Both directions start at smgw.scan now, which is still gone. (The partial "duplicate window", one envelope
    // confirmed and one refused, can no longer be provoked by deleting a queue: both envelopes share smgw.scan.)
    const { client } = await SmtpTestClient.open(ingest.submissionPort);
    await client.command('EHLO agency.example');
    const reply = await client.sendMail({
      from: 'clerk@behoerde.example',
      to: ['colleague@behoerde.example', 'citizen@mail.example'],
      body: 'x\r\n',
    });
    assert.equal(reply.final?.text, '451 4.3.0 Temporary failure, please retry');
    await client.quit();
    const rows = await world.db.pool.query(
      `select m.id from messages m join message_recipients r on r.message_id = m.id
       where r.recipient = 'citizen@mail.example'`,
    );
    const trace = await getTrace(world.db.pool, rows.rows[0]?.id ?? '');
    const refused = trace?.events.find((e) => e.event === 'message.refused');
    assert.deepEqual(refused?.data, { publishedDirections: [], enqueued: 'none' });
  });
});

describe('when Redis is unreachable', () => {
  let world: TestWorld;
  let ingest: RunningIngest;
  before(async () => {
    world = await createTestWorld();
    // Nothing listens on port 1.
    ({ ingest } = await world.start({ REDIS_URL: 'redis://127.0.0.1:1' }));
  });
  after(() => world.close());

  it('answers connections with 421 4.3.0 (temporary: mail is not lost, limits are not skipped)', async () => {
    const client = await SmtpTestClient.connect(ingest.inboundPort);
    assert.equal((await client.readReply()).text, '421 4.3.0 Temporary failure, please retry');
    await client.closed;
  });

  it('reports redis as not ready', async () => {
    const res = await fetch(`http://127.0.0.1:${ingest.healthPort}/readyz`);
    assert.equal(res.status, 503);
    assert.deepEqual(((await res.json()) as { checks: unknown }).checks, { amqp: true, db: true, redis: false });
  });
});

describe('stopping', () => {
  let world: TestWorld;
  let ingest: RunningIngest;
  before(async () => {
    world = await createTestWorld();
    ({ ingest } = await world.start());
  });
  after(() => world.close());

  it('takes no new connections but lets a message in DATA finish with 250', async () => {
    const { client } = await SmtpTestClient.open(ingest.inboundPort);
    await client.command('EHLO sender.example');
    await client.command('MAIL FROM:<a@sender.example>');
    await client.command('RCPT TO:<x@behoerde.example>');
    assert.equal((await client.command('DATA')).code, 354);
    client.writeRaw('Subject: in flight\r\n\r\nfirst half\r\n');

    const stopped = ingest.stop();
    await assert.rejects(
      new Promise((resolve, reject) => {
        const socket = net.connect(ingest.inboundPort, '127.0.0.1', () => resolve(socket));
        socket.once('error', reject);
      }),
      { code: 'ECONNREFUSED' },
    );

    client.writeRaw('second half\r\n.\r\n');
    assertQueued((await client.readReply()).text);
    await client.closed;
    await stopped;
    const [envelope] = await world.takeInboundEnvelopes();
    assert.equal(envelope?.direction, 'inbound');
  });
});
