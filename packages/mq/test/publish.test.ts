// Confirmed publishing against the real broker: what counts as success, and each way it can fail.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EXCHANGE, InvalidEnvelopeError, traceIdFromTraceparent, workQueue } from '@smgw/envelope';
import { connectMq, type Mq, MqError, PublishError } from '@smgw/mq';
import { createTestVhost, type TestVhost } from '@smgw/testing';
import { envelopeOf, hasEnvelopeId, RawBroker, silentLogger, testEnvelope, uniqueConnectionName } from './fixtures.ts';

function rejectsWith(code: string) {
  return (err: unknown) => {
    assert.ok(err instanceof PublishError, `expected a PublishError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

describe('publish', () => {
  let vhost: TestVhost;
  let mq: Mq;
  let raw: RawBroker;

  before(async () => {
    vhost = await createTestVhost();
    mq = await connectMq({ url: vhost.url, logger: silentLogger, connectionName: uniqueConnectionName('publish') });
    raw = await RawBroker.open(vhost.url);
  });
  after(async () => {
    await mq.close();
    await raw.close();
    await vhost.drop();
  });

  it('is ready only once the topology is declared', async () => {
    assert.equal(mq.isReady(), false);
    await mq.declareTopology({ scan: [200] });
    assert.equal(mq.isReady(), true);
  });

  it('resolves once the broker confirmed a persistent message in the queue of the first stage', async () => {
    const envelope = testEnvelope(['scan', 'deliver']);
    await mq.publish(envelope);
    const message = await raw.take(workQueue('scan'), hasEnvelopeId(envelope.id), 'the envelope in smgw.scan');
    assert.deepEqual(envelopeOf(message), envelope);
    assert.equal(message.properties.deliveryMode, 2);
    assert.equal(message.properties.contentType, 'application/json');
    assert.match(String(message.properties.messageId), new RegExp(`^${envelope.id}\\.`));
    assert.equal(traceIdFromTraceparent(message.properties.headers?.traceparent), envelope.traceId);
  });

  it('gives every publish of the same envelope its own message id', async () => {
    const envelope = testEnvelope(['verify']);
    await mq.publish(envelope);
    await mq.publish(envelope);
    const first = await raw.take(workQueue('verify'), hasEnvelopeId(envelope.id), 'the first copy');
    const second = await raw.take(workQueue('verify'), hasEnvelopeId(envelope.id), 'the second copy');
    assert.notEqual(first.properties.messageId, second.properties.messageId);
  });

  it('rejects with MQ_PUBLISH_RETURNED when no queue is bound for the stage (the broker still acks it)', async () => {
    await raw.channel.deleteQueue(workQueue('mailbox'));
    try {
      await assert.rejects(mq.publish(testEnvelope(['mailbox'])), rejectsWith('MQ_PUBLISH_RETURNED'));
      // the channel stays usable: the next publish to a bound queue succeeds
      await mq.publish(testEnvelope(['scan']));
    } finally {
      await mq.declareTopology({});
    }
    await mq.publish(testEnvelope(['mailbox']));
  });

  it('keeps every message when far more are published at once than the channel buffers', async () => {
    // a small write buffer, so publishing has to wait for 'drain' many times
    const busy = await connectMq({
      url: vhost.url,
      logger: silentLogger,
      connectionName: uniqueConnectionName('busy'),
      publishBufferSize: 8,
    });
    try {
      await raw.channel.purgeQueue(workQueue('encrypt'));
      const count = 2000;
      await Promise.all(Array.from({ length: count }, () => busy.publish(testEnvelope(['encrypt']))));
      assert.equal(await raw.depth(workQueue('encrypt')), count);
      await raw.channel.purgeQueue(workQueue('encrypt'));
    } finally {
      await busy.close();
    }
  });

  it('throws for an envelope that is invalid or has nowhere to go, without publishing', async () => {
    await assert.rejects(mq.publish(testEnvelope([])), (err: unknown) => {
      assert.ok(err instanceof MqError);
      assert.equal(err.code, 'MQ_EMPTY_ITINERARY');
      return true;
    });
    await assert.rejects(mq.publish(testEnvelope(['scan'], { recipients: [] })), InvalidEnvelopeError);
  });

  it('rejects with MQ_NOT_CONNECTED after close, and is no longer ready', async () => {
    const closing = await connectMq({
      url: vhost.url,
      logger: silentLogger,
      connectionName: uniqueConnectionName('x'),
    });
    await closing.declareTopology({});
    await closing.close();
    assert.equal(closing.isReady(), false);
    await assert.rejects(closing.publish(testEnvelope(['scan'])), rejectsWith('MQ_NOT_CONNECTED'));
  });
});

describe('connectMq', () => {
  it('fails with MQ_CONNECT_FAILED when the broker cannot be reached within its start-up retries', async () => {
    await assert.rejects(
      connectMq({
        url: 'amqp://guest:guest@127.0.0.1:1',
        logger: silentLogger,
        connectionName: uniqueConnectionName('unreachable'),
        reconnect: { initialDelayMs: 10, initialRetries: 2 },
      }),
      (err: unknown) => err instanceof MqError && err.code === 'MQ_CONNECT_FAILED' && !err.message.includes('guest'),
    );
  });
});

describe('publish to a broker without our topology', () => {
  let vhost: TestVhost;
  let mq: Mq;
  let raw: RawBroker;

  before(async () => {
    vhost = await createTestVhost();
    mq = await connectMq({ url: vhost.url, logger: silentLogger, connectionName: uniqueConnectionName('bare') });
    raw = await RawBroker.open(vhost.url);
  });
  after(async () => {
    await mq.close();
    await raw.close();
    await vhost.drop();
  });

  it('rejects with MQ_PUBLISH_CHANNEL_CLOSED when the broker closes the channel, then opens a new one', async () => {
    // no exchange yet: the broker answers the publish by closing the channel (404 NOT_FOUND)
    await assert.rejects(mq.publish(testEnvelope(['mailbox'])), rejectsWith('MQ_PUBLISH_CHANNEL_CLOSED'));
    await raw.channel.assertExchange(EXCHANGE, 'direct', { durable: true });
    await raw.channel.assertQueue(workQueue('mailbox'), { durable: true });
    await raw.channel.bindQueue(workQueue('mailbox'), EXCHANGE, workQueue('mailbox'));
    await mq.publish(testEnvelope(['mailbox']));
  });

  it('rejects with MQ_PUBLISH_NACKED when a full queue refuses the message', async () => {
    // A test-only queue: one message at most, further publishes refused (quorum queues enforce it one late).
    await raw.channel.assertExchange(EXCHANGE, 'direct', { durable: true });
    await raw.channel.assertQueue(workQueue('deliver'), {
      durable: true,
      arguments: { 'x-queue-type': 'quorum', 'x-max-length': 1, 'x-overflow': 'reject-publish' },
    });
    await raw.channel.bindQueue(workQueue('deliver'), EXCHANGE, workQueue('deliver'));
    let refusal: unknown;
    for (let i = 0; i < 5 && refusal === undefined; i++) {
      await mq.publish(testEnvelope(['deliver'])).catch((err: unknown) => {
        refusal = err;
      });
    }
    assert.ok(refusal !== undefined, 'the full queue never refused a publish');
    rejectsWith('MQ_PUBLISH_NACKED')(refusal);
  });
});
