// Consuming against the real broker: each handler outcome ends as publish + ack, a trip through a delay queue, or a
// park, and nothing is acked before what it publishes is confirmed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { advance, type Envelope, HEADERS, parkedQueue, type Stage, traceparentFor, workQueue } from '@smgw/envelope';
import { connectMq, type Handler, type Mq, MqError, next, reject, retry, type StageConsumer } from '@smgw/mq';
import { createTestVhost, type TestVhost, waitFor } from '@smgw/testing';
import { envelopeOf, hasEnvelopeId, RawBroker, silentLogger, testEnvelope, uniqueConnectionName } from './fixtures.ts';

const LADDER = [200];

interface Parking {
  envelope: Envelope | undefined;
  code: string;
  reason: string;
}

describe('consume', () => {
  let vhost: TestVhost;
  let mq: Mq;
  let raw: RawBroker;

  before(async () => {
    vhost = await createTestVhost();
    mq = await connectMq({ url: vhost.url, logger: silentLogger, connectionName: uniqueConnectionName('consume') });
    await mq.declareTopology({ scan: LADDER, encrypt: LADDER, verify: LADDER, mailbox: LADDER, deliver: [200, 400] });
    raw = await RawBroker.open(vhost.url);
  });
  after(async () => {
    await mq.close();
    await raw.close();
    await vhost.drop();
  });

  /** Consumes `stage` with `handler` for the duration of `body`, recording what gets parked. */
  async function consuming(
    stage: Stage,
    handler: Handler,
    body: (parked: Parking[], consumer: StageConsumer) => Promise<void>,
    retryLadder = LADDER,
  ): Promise<void> {
    const parked: Parking[] = [];
    const consumer = await mq.consume(stage, handler, {
      retryLadder,
      prefetch: 4,
      onParked: async (envelope, code, reason) => {
        parked.push({ envelope, code, reason });
      },
    });
    try {
      await body(parked, consumer);
    } finally {
      await consumer.drain();
    }
  }

  async function settled(stage: Stage, consumer: StageConsumer): Promise<void> {
    await waitFor(`${stage} has nothing in flight or queued`, async () => {
      return consumer.inFlight() === 0 && (await raw.depth(workQueue(stage))) === 0;
    });
  }

  it('publishes the envelope to its next stage, keeps the trace context, then acks', async () => {
    const envelope = testEnvelope(['scan', 'encrypt']);
    const traceparent = traceparentFor(envelope.traceId);
    await consuming(
      'scan',
      async (received) => next(advance(received, 'scan')),
      async (_parked, consumer) => {
        raw.publishRaw(workQueue('scan'), Buffer.from(JSON.stringify(envelope)), {
          [HEADERS.traceparent]: traceparent,
        });
        const passed = await raw.take(workQueue('encrypt'), hasEnvelopeId(envelope.id), 'the envelope in smgw.encrypt');
        assert.deepEqual(envelopeOf(passed), { ...envelope, itinerary: ['encrypt'], hop: 1 });
        assert.equal(passed.properties.headers?.[HEADERS.traceparent], traceparent);
        await settled('scan', consumer);
      },
    );
  });

  it('publishes every child envelope of a split and ends the journey of one with an empty itinerary', async () => {
    const envelope = testEnvelope(['scan', 'encrypt'], { recipients: ['a@example.org', 'b@example.org'] });
    await consuming(
      'scan',
      async (received) => {
        const done = advance(received, 'scan');
        return next(
          { ...done, recipients: ['a@example.org'] },
          { ...done, recipients: ['b@example.org'], itinerary: ['mailbox'] },
          { ...done, itinerary: [] },
        );
      },
      async (_parked, consumer) => {
        await mq.publish(envelope);
        const toEncrypt = await raw.take(workQueue('encrypt'), hasEnvelopeId(envelope.id), 'child in smgw.encrypt');
        const toMailbox = await raw.take(workQueue('mailbox'), hasEnvelopeId(envelope.id), 'child in smgw.mailbox');
        assert.deepEqual(envelopeOf(toEncrypt).recipients, ['a@example.org']);
        assert.deepEqual(envelopeOf(toMailbox).recipients, ['b@example.org']);
        await settled('scan', consumer);
      },
    );
  });

  it('retries through the delay queue, which brings the envelope back with attempt + 1', async () => {
    const envelope = testEnvelope(['verify', 'deliver']);
    const seen: { attempt: number; lastAttempt: boolean; envelopeAttempt: number }[] = [];
    await consuming(
      'verify',
      async (received, context) => {
        seen.push({ attempt: context.attempt, lastAttempt: context.lastAttempt, envelopeAttempt: received.attempt });
        return context.attempt === 0
          ? retry('OCSP_UNREACHABLE', 'responder timed out')
          : next(advance(received, 'verify'));
      },
      async (parked) => {
        await mq.publish(envelope);
        const passed = await raw.take(workQueue('deliver'), hasEnvelopeId(envelope.id), 'the envelope in smgw.deliver');
        assert.deepEqual(seen, [
          { attempt: 0, lastAttempt: false, envelopeAttempt: 0 },
          { attempt: 1, lastAttempt: true, envelopeAttempt: 1 },
        ]);
        assert.equal(envelopeOf(passed).attempt, 0);
        assert.deepEqual(parked, []);
      },
    );
  });

  it('retries with the updated envelope a retry outcome carries', async () => {
    const envelope = testEnvelope(['verify', 'deliver']);
    const relays: (string | undefined)[] = [];
    await consuming(
      'verify',
      async (received, context) => {
        relays.push(received.relatesTo);
        return context.attempt === 0
          ? retry('TEMPORARY', 'later', { ...received, relatesTo: 'noted' })
          : next(advance(received, 'verify'));
      },
      async () => {
        await mq.publish(envelope);
        await raw.take(workQueue('deliver'), hasEnvelopeId(envelope.id), 'the envelope in smgw.deliver');
        assert.deepEqual(relays, [undefined, 'noted']);
      },
    );
  });

  it('parks with RETRIES_EXHAUSTED once the ladder is used up, and tells onParked', async () => {
    const envelope = testEnvelope(['deliver']);
    const attempts: number[] = [];
    await consuming(
      'deliver',
      async (_received, context) => {
        attempts.push(context.attempt);
        return retry('MX_UNREACHABLE', 'connection refused');
      },
      async (parked, consumer) => {
        await mq.publish(envelope);
        const message = await raw.take(parkedQueue('deliver'), hasEnvelopeId(envelope.id), 'the parked envelope');
        assert.deepEqual(attempts, [0, 1, 2]);
        assert.equal(message.properties.headers?.[HEADERS.parkCode], 'RETRIES_EXHAUSTED');
        assert.equal(message.properties.headers?.[HEADERS.parkReason], 'MX_UNREACHABLE: connection refused');
        assert.equal(envelopeOf(message).attempt, 2);
        assert.equal(parked.length, 1);
        assert.equal(parked[0]?.code, 'RETRIES_EXHAUSTED');
        assert.equal(parked[0]?.envelope?.id, envelope.id);
        await settled('deliver', consumer);
      },
      [200, 400],
    );
  });

  it('parks a rejected envelope with code and reason headers and calls onParked first', async () => {
    const envelope = testEnvelope(['scan', 'deliver']);
    await consuming(
      'scan',
      async () => reject('MESSAGE_INFECTED', 'Eicar-Signature FOUND'),
      async (parked, consumer) => {
        await mq.publish(envelope);
        const message = await raw.take(parkedQueue('scan'), hasEnvelopeId(envelope.id), 'the parked envelope');
        assert.equal(message.properties.headers?.[HEADERS.parkCode], 'MESSAGE_INFECTED');
        assert.equal(message.properties.headers?.[HEADERS.parkReason], 'Eicar-Signature FOUND');
        assert.deepEqual(envelopeOf(message), envelope);
        assert.deepEqual(parked, [{ envelope, code: 'MESSAGE_INFECTED', reason: 'Eicar-Signature FOUND' }]);
        await settled('scan', consumer);
      },
    );
  });

  it('parks only after onParked succeeded: a failing onParked puts the envelope back', async () => {
    const envelope = testEnvelope(['scan', 'deliver']);
    const calls: string[] = [];
    const consumer = await mq.consume(
      'scan',
      async () => {
        calls.push('handler');
        return reject('POLICY', 'not allowed');
      },
      {
        retryLadder: LADDER,
        prefetch: 1,
        onParked: async () => {
          calls.push('onParked');
          if (calls.length === 2) throw new Error('trace database unreachable');
          assert.equal(await raw.depth(parkedQueue('scan')), 0);
        },
      },
    );
    try {
      await mq.publish(envelope);
      await raw.take(parkedQueue('scan'), hasEnvelopeId(envelope.id), 'the parked envelope');
      assert.deepEqual(calls, ['handler', 'onParked', 'handler', 'onParked']);
    } finally {
      await consumer.drain();
    }
  });

  it('tells the handler an envelope is redelivered: one whose outcome could not be finished comes back so marked', async () => {
    const envelope = testEnvelope(['scan', 'deliver']);
    const seen: Array<boolean | undefined> = [];
    const consumer = await mq.consume(
      'scan',
      async (_envelope, context) => {
        seen.push(context.redelivered);
        return reject('POLICY', 'not allowed');
      },
      {
        retryLadder: LADDER,
        prefetch: 1,
        onParked: async () => {
          if (seen.length === 1) throw new Error('trace database unreachable');
        },
      },
    );
    try {
      await mq.publish(envelope);
      await raw.take(parkedQueue('scan'), hasEnvelopeId(envelope.id), 'the parked envelope');
      assert.deepEqual(seen, [false, true]);
    } finally {
      await consumer.drain();
    }
  });

  it('parks a payload that is not an envelope as it came, with ENVELOPE_INVALID, and keeps consuming', async () => {
    const garbage = Buffer.from(`{"not": "an envelope" ${Date.now()}`);
    const envelope = testEnvelope(['encrypt', 'deliver']);
    let handled = 0;
    await consuming(
      'encrypt',
      async (received) => {
        handled++;
        return next(advance(received, 'encrypt'));
      },
      async (parked, consumer) => {
        raw.publishRaw(workQueue('encrypt'), garbage);
        await mq.publish(envelope);
        const message = await raw.take(parkedQueue('encrypt'), (m) => m.content.equals(garbage), 'the parked bytes');
        assert.equal(message.properties.headers?.[HEADERS.parkCode], 'ENVELOPE_INVALID');
        assert.match(String(message.properties.headers?.[HEADERS.parkReason]), /not JSON/);
        await raw.take(workQueue('deliver'), hasEnvelopeId(envelope.id), 'the valid envelope passed on');
        assert.equal(handled, 1);
        assert.equal(parked[0]?.envelope, undefined);
        assert.equal(parked[0]?.code, 'ENVELOPE_INVALID');
        await settled('encrypt', consumer);
      },
    );
  });

  it('treats a handler that throws as a retry with HANDLER_FAILED', async () => {
    const envelope = testEnvelope(['mailbox']);
    const attempts: number[] = [];
    await consuming(
      'mailbox',
      async (_received, context) => {
        attempts.push(context.attempt);
        throw new Error('database unreachable');
      },
      async (parked) => {
        await mq.publish(envelope);
        const message = await raw.take(parkedQueue('mailbox'), hasEnvelopeId(envelope.id), 'the parked envelope');
        assert.deepEqual(attempts, [0, 1]);
        assert.equal(message.properties.headers?.[HEADERS.parkCode], 'RETRIES_EXHAUSTED');
        assert.equal(message.properties.headers?.[HEADERS.parkReason], 'HANDLER_FAILED: database unreachable');
        assert.equal(parked[0]?.reason, 'HANDLER_FAILED: database unreachable');
      },
    );
  });

  it('parks an envelope whose itinerary does not start with the stage, without calling the handler', async () => {
    const envelope = testEnvelope(['deliver']);
    let called = false;
    await consuming(
      'verify',
      async () => {
        called = true;
        return next();
      },
      async (parked) => {
        raw.publishRaw(workQueue('verify'), Buffer.from(JSON.stringify(envelope)));
        const message = await raw.take(parkedQueue('verify'), hasEnvelopeId(envelope.id), 'the parked envelope');
        assert.equal(message.properties.headers?.[HEADERS.parkCode], 'ENVELOPE_MISROUTED');
        assert.equal(called, false);
        assert.equal(parked[0]?.code, 'ENVELOPE_MISROUTED');
      },
    );
  });

  it('parks the incoming envelope with OUTCOME_INVALID when the handler returns an invalid one', async () => {
    const envelope = testEnvelope(['scan', 'deliver']);
    await consuming(
      'scan',
      async (received) => next({ ...advance(received, 'scan'), recipients: [] }),
      async (parked) => {
        await mq.publish(envelope);
        const message = await raw.take(parkedQueue('scan'), hasEnvelopeId(envelope.id), 'the parked envelope');
        assert.equal(message.properties.headers?.[HEADERS.parkCode], 'OUTCOME_INVALID');
        assert.deepEqual(envelopeOf(message), envelope);
        assert.equal(parked[0]?.code, 'OUTCOME_INVALID');
      },
    );
  });

  it('does not ack before the next publish is confirmed: a refused publish puts the envelope back', async () => {
    // Without its queue, every publish to mailbox is returned; the envelope goes back to smgw.encrypt again and
    // again until the broker's delivery limit parks it (dead-lettered by the broker, reason delivery_limit).
    await raw.channel.deleteQueue(workQueue('mailbox'));
    const envelope = testEnvelope(['encrypt', 'mailbox']);
    let deliveries = 0;
    try {
      await consuming(
        'encrypt',
        async (received) => {
          deliveries++;
          return next(advance(received, 'encrypt'));
        },
        async () => {
          await mq.publish(envelope);
          const message = await raw.take(parkedQueue('encrypt'), hasEnvelopeId(envelope.id), 'the parked envelope');
          const deaths = message.properties.headers?.['x-death'] as { reason: string }[];
          assert.equal(deaths[0]?.reason, 'delivery_limit');
          assert.equal(deliveries, 11);
        },
      );
    } finally {
      await mq.declareTopology({});
    }
  });

  it('drains: stops taking envelopes, waits for the one in flight and its ack, then resolves', async () => {
    const envelope = testEnvelope(['scan', 'deliver']);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let signal: AbortSignal | undefined;
    const consumer = await mq.consume(
      'scan',
      async (received, context) => {
        signal = context.signal;
        await gate;
        return next(advance(received, 'scan'));
      },
      { retryLadder: LADDER, prefetch: 1 },
    );
    await mq.publish(envelope);
    await waitFor('the envelope in flight', () => consumer.inFlight() === 1);
    let drained = false;
    const draining = consumer.drain().then(() => {
      drained = true;
    });
    await waitFor('the handler told to wrap up', () => signal?.aborted);
    assert.equal(drained, false);
    assert.equal(consumer.inFlight(), 1);
    release();
    await draining;
    assert.equal(consumer.inFlight(), 0);
    await raw.take(workQueue('deliver'), hasEnvelopeId(envelope.id), 'the envelope passed on');
    // acked, not returned to the queue when the channel closed
    assert.equal(await raw.depth(workQueue('scan')), 0);
    // and no longer consuming
    const later = testEnvelope(['scan']);
    await mq.publish(later);
    assert.equal(await raw.depth(workQueue('scan')), 1);
    await raw.take(workQueue('scan'), hasEnvelopeId(later.id), 'the later envelope still queued');
  });

  it('refuses to consume with a retry ladder whose delay queues were not declared', async () => {
    await assert.rejects(
      mq.consume('scan', async () => next(), { retryLadder: [200, 5000], prefetch: 1 }),
      (err: unknown) => err instanceof MqError && err.code === 'MQ_LADDER_NOT_DECLARED',
    );
  });
});
