import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Envelope, newMessageId, newTraceId } from '@smgw/envelope';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { getTrace, recordEvent, recordEvents, recordMessage } from '../src/index.ts';

describe('recordEvents', () => {
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
      receivedAt: new Date().toISOString(),
      direction: 'outbound',
      mailFrom: 'clerk@behoerde.example',
      recipients: ['a@buerger.example', 'b@buerger.example'],
      client: { listener: 'submission', ip: '192.0.2.1', helo: 'client.behoerde.example', tls: true },
      blob: { ref: 'ab'.repeat(32), sha256: 'ab'.repeat(32), size: 10 },
      itinerary: ['encrypt', 'deliver'],
      hop: 0,
      verdicts: {},
      attempt: 0,
    };
    await recordMessage(db.pool, envelope);
    return envelope.id;
  }

  it('records every event in the order given, with its fields, data and time', async () => {
    const id = await message();
    const at = new Date('2026-03-01T10:00:00.123Z');
    await recordEvents(db.pool, id, [
      { stage: 'encrypt', event: 'message.not-signed', outcome: 'next', code: 'X_CODE', reason: 'why', at },
      {
        stage: 'encrypt',
        event: 'recipient.encrypted',
        outcome: 'next',
        recipient: 'a@buerger.example',
        data: { form: 'smime', signed: false, nested: { quote: 'a "b" \\ c', list: [1, 2] } },
        at,
      },
      { stage: 'encrypt', event: 'recipient.to-portal', outcome: 'next', recipient: 'b@buerger.example' },
    ]);
    const events = (await getTrace(db.pool, id))?.events ?? [];
    assert.deepEqual(
      events.map((e) => [e.event, e.recipient, e.code, e.reason]),
      [
        ['message.not-signed', null, 'X_CODE', 'why'],
        ['recipient.encrypted', 'a@buerger.example', null, null],
        ['recipient.to-portal', 'b@buerger.example', null, null],
      ],
    );
    assert.deepEqual(events[1]?.data, { form: 'smime', signed: false, nested: { quote: 'a "b" \\ c', list: [1, 2] } });
    assert.equal(events[0]?.data, null);
    assert.equal(events[0]?.at, at.toISOString());
    assert.ok(events[2]?.at, 'an event without a time gets the time of recording');
  });

  it('records nothing for an empty list, and one event like recordEvent', async () => {
    const id = await message();
    await recordEvents(db.pool, id, []);
    await recordEvent(db.pool, id, { stage: 'scan', event: 'message.scanned', outcome: 'next', data: { clean: true } });
    const events = (await getTrace(db.pool, id))?.events ?? [];
    assert.deepEqual(
      events.map((e) => [e.stage, e.event, e.data]),
      [['scan', 'message.scanned', { clean: true }]],
    );
  });

  it('records none of them when one cannot be recorded', async () => {
    const id = await message();
    await assert.rejects(
      recordEvents(db.pool, id, [
        { stage: 'encrypt', event: 'recipient.encrypted', outcome: 'next' },
        { stage: 'encrypt', event: 'recipient.encrypted', outcome: null as unknown as string }, // outcome is not null
      ]),
    );
    assert.deepEqual((await getTrace(db.pool, id))?.events, []);
  });
});
