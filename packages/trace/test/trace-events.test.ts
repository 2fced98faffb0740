import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Envelope, newMessageId, newTraceId } from '@smgw/envelope';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { getTrace, hasEvent, recordEvent, recordEventBatch, recordMessage } from '../src/index.ts';

const AT = new Date('2026-06-01T12:00:00Z');

describe('trace events', () => {
  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
  });

  async function message(): Promise<string> {
    const envelope: Envelope = {
      v: 1,
      id: newMessageId(),
      traceId: newTraceId(),
      receivedAt: AT.toISOString(),
      direction: 'inbound',
      mailFrom: 'x@example.org',
      recipients: ['amt@behoerde.example'],
      client: { listener: 'inbound', ip: '192.0.2.1', helo: 'mx.example.org', tls: true },
      blob: { ref: 'a'.repeat(64), sha256: 'a'.repeat(64), size: 10 },
      itinerary: ['scan', 'deliver'],
      hop: 0,
      verdicts: {},
      attempt: 0,
    };
    await recordMessage(db.pool, envelope);
    return envelope.id;
  }

  it('records events of several messages in one call, each with its own fields', async () => {
    const events = [
      {
        messageId: await message(),
        stage: 'scan',
        event: 'message.scanned',
        outcome: 'next',
        data: { result: 'clean' },
      },
      {
        messageId: await message(),
        stage: 'deliver',
        event: 'recipient.bounced',
        outcome: 'reject',
        code: 'DELIVERY_BOUNCED',
        reason: '550 no such user',
        recipient: 'amt@behoerde.example',
      },
    ];
    await recordEventBatch(
      db.pool,
      events.map((e) => ({ ...e, at: AT })),
    );
    for (const { messageId, ...e } of events) {
      assert.deepEqual((await getTrace(db.pool, messageId))?.events, [
        { code: null, reason: null, recipient: null, data: null, ...e, at: AT.toISOString() },
      ]);
    }
  });

  it('records nothing for an empty list', async () => {
    await recordEventBatch(db.pool, []);
  });

  it('stamps an event without a time with the time of recording', async () => {
    const id = await message();
    await recordEvent(db.pool, id, { stage: 'ingest', event: 'message.received', outcome: 'next' });
    const at = (await getTrace(db.pool, id))?.events[0]?.at;
    assert.ok(at && !Number.isNaN(Date.parse(at)), `recorded at ${at}`);
  });

  it('finds an event by stage and name, and by what its data contains', async () => {
    const id = await message();
    await recordEvent(db.pool, id, {
      stage: 'scan',
      event: 'message.quarantined',
      outcome: 'next',
      data: { direction: 'inbound', verdict: 'infected' },
    });
    const quarantined = { stage: 'scan', event: 'message.quarantined' };
    assert.equal(await hasEvent(db.pool, id, quarantined), true);
    assert.equal(await hasEvent(db.pool, id, { ...quarantined, dataContains: { direction: 'inbound' } }), true);
    assert.equal(await hasEvent(db.pool, id, { ...quarantined, dataContains: { direction: 'outbound' } }), false);
    assert.equal(await hasEvent(db.pool, id, { stage: 'admin', event: 'message.quarantined' }), false);
    assert.equal(await hasEvent(db.pool, await message(), quarantined), false);
  });
});
