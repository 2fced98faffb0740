import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, envelopeFixture, type TestDatabase } from '@smgw/testing';
import {
  countMessagesWithEvent,
  getTrace,
  hasEvent,
  recordEvent,
  recordEventBatch,
  recordEvents,
  recordMessage,
  recordMessages,
  stageEventsOf,
} from '../src/index.ts';

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
    const envelope = envelopeFixture({ receivedAt: AT.toISOString() });
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

  it("gives a stage's events of the names asked for, with their details, in the order recorded", async () => {
    const id = await message();
    const decrypted = { stage: 'encrypt', event: 'message.decrypted', outcome: 'next', at: AT } as const;
    await recordEvents(db.pool, id, [
      { ...decrypted, recipient: 'a@behoerde.example', data: { blob: 'x' } },
      { ...decrypted, event: 'message.not-decrypted', code: 'SMIME_X', reason: 'why', data: { blob: 'y' } },
      { ...decrypted, event: 'certificate.harvested' },
      { ...decrypted, stage: 'scan' },
    ]);
    assert.deepEqual(
      await stageEventsOf(db.pool, id, { stage: 'encrypt', events: ['message.decrypted', 'message.not-decrypted'] }),
      [
        {
          event: 'message.decrypted',
          recipient: 'a@behoerde.example',
          code: null,
          reason: null,
          data: { blob: 'x' },
          at: AT,
        },
        {
          event: 'message.not-decrypted',
          recipient: null,
          code: 'SMIME_X',
          reason: 'why',
          data: { blob: 'y' },
          at: AT,
        },
      ],
    );
  });

  it('counts the messages that have an event, each once', async () => {
    const [a, b, c] = [await message(), await message(), await message()];
    const scanned = { stage: 'scan', event: 'message.scanned', outcome: 'next' } as const;
    await recordEvents(db.pool, a, [scanned, scanned]);
    await recordEvent(db.pool, b, scanned);
    await recordEvent(db.pool, c, { ...scanned, stage: 'encrypt' });
    assert.equal(await countMessagesWithEvent(db.pool, [a, b, c], { stage: 'scan', event: 'message.scanned' }), 2);
    assert.equal(await countMessagesWithEvent(db.pool, [], { stage: 'scan', event: 'message.scanned' }), 0);
  });

  describe('recordEvents (one message)', () => {
    it('records every event in the order given, with its fields, data and time', async () => {
      const id = await message();
      const at = new Date('2026-03-01T10:00:00.123Z');
      await recordEvents(db.pool, id, [
        { stage: 'encrypt', event: 'message.not-signed', outcome: 'next', code: 'X_CODE', reason: 'why', at },
        {
          stage: 'encrypt',
          event: 'recipient.encrypted',
          outcome: 'next',
          recipient: 'eingang@behoerde.example',
          data: { form: 'smime', signed: false, nested: { quote: 'a "b" \\ c', list: [1, 2] } },
          at,
        },
        { stage: 'encrypt', event: 'recipient.to-portal', outcome: 'next', recipient: 'eingang@behoerde.example' },
      ]);
      const events = (await getTrace(db.pool, id))?.events ?? [];
      assert.deepEqual(
        events.map((e) => [e.event, e.recipient, e.code, e.reason]),
        [
          ['message.not-signed', null, 'X_CODE', 'why'],
          ['recipient.encrypted', 'eingang@behoerde.example', null, null],
          ['recipient.to-portal', 'eingang@behoerde.example', null, null],
        ],
      );
      assert.deepEqual(events[1]?.data, {
        form: 'smime',
        signed: false,
        nested: { quote: 'a "b" \\ c', list: [1, 2] },
      });
      assert.equal(events[0]?.data, null);
      assert.equal(events[0]?.at, at.toISOString());
      assert.ok(events[2]?.at, 'an event without a time gets the time of recording');
    });

    it('records nothing for an empty list, and one event like recordEvent', async () => {
      const id = await message();
      await recordEvents(db.pool, id, []);
      await recordEvent(db.pool, id, {
        stage: 'scan',
        event: 'message.scanned',
        outcome: 'next',
        data: { clean: true },
      });
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

  it('records a message, its recipients and its first events in one statement, and again without doubling rows', async () => {
    const envelope = envelopeFixture({
      receivedAt: AT.toISOString(),
      recipients: ['a@behoerde.example', 'b@behoerde.example'],
    });
    const received = { stage: 'ingest', event: 'message.received', outcome: 'next', data: { size: 1 }, at: AT };
    await recordMessage(db.pool, envelope, [received]);
    await recordMessage(db.pool, envelope);
    const trace = await getTrace(db.pool, envelope.id);
    assert.deepEqual(
      trace?.recipients.map((r) => [r.address, r.state]),
      [
        ['a@behoerde.example', 'pending'],
        ['b@behoerde.example', 'pending'],
      ],
    );
    assert.deepEqual(
      trace?.events.map((e) => e.event),
      ['message.received'],
    );
  });

  it('writes nothing of a message when one of its events cannot be stored', async () => {
    const envelope = envelopeFixture({ receivedAt: AT.toISOString() });
    const bad = { stage: 'ingest', event: 'message.received', outcome: 'next', at: new Date(Number.NaN) };
    await assert.rejects(recordMessage(db.pool, envelope, [bad]));
    const rows = await db.pool.query('select 1 from messages where id = $1', [envelope.id]);
    assert.equal(rows.rowCount, 0);
  });

  it('commits statements alongside the events with them, each numbering its parameters from where it is told', async () => {
    const id = await message();
    await db.pool.query('create table if not exists alongside_rows (n int primary key, label text)');
    const row = (n: number, label: string) => (first: number) => ({
      text: `insert into alongside_rows (n, label) values ($${first}, $${first + 1})`,
      values: [n, label],
    });
    const event = { stage: 'encrypt', event: 'message.encrypted', outcome: 'next', at: AT };
    await recordEvents(db.pool, id, [event, { ...event, event: 'message.second' }], [row(1, 'a'), row(2, 'b')]);
    const rows = await db.pool.query('select n, label from alongside_rows order by n');
    assert.deepEqual(rows.rows, [
      { n: 1, label: 'a' },
      { n: 2, label: 'b' },
    ]);
    assert.deepEqual(
      (await getTrace(db.pool, id))?.events.map((e) => e.event),
      ['message.encrypted', 'message.second'],
    );

    // All or nothing: a row that cannot be written takes the events with it, and the other row too.
    await assert.rejects(
      recordEvents(db.pool, id, [{ ...event, event: 'message.third' }], [row(3, 'c'), row(1, 'dup')]),
    );
    assert.equal((await db.pool.query('select count(*)::int as n from alongside_rows')).rows[0].n, 2);
    assert.equal((await getTrace(db.pool, id))?.events.length, 2);
  });

  describe('several messages in one statement (a group commit)', () => {
    const received = (n: number) => ({
      stage: 'ingest',
      event: 'message.received',
      outcome: 'next',
      data: { n },
      at: AT,
    });
    const scanned = { stage: 'ingest', event: 'message.scanned', outcome: 'next', at: AT };
    /** Everything recorded of a message, as recordMessage and recordMessages must both write it. */
    async function recorded(id: string) {
      const message = await db.pool.query(
        `select trace_id, direction, mail_from, blob_ref, blob_sha256, size, client_ip, client_helo, client_user,
                client_tls, received_at, relates_to from messages where id = $1`,
        [id],
      );
      const trace = await getTrace(db.pool, id);
      return {
        message: message.rows[0],
        recipients: trace?.recipients.map((r) => [r.address, r.state]),
        events: trace?.events.map((e) => [e.stage, e.event, e.data]),
      };
    }
    const samples = () => [
      envelopeFixture({ receivedAt: AT.toISOString(), recipients: ['a@behoerde.example', 'b@behoerde.example'] }),
      envelopeFixture({
        direction: 'outbound',
        receivedAt: new Date(AT.getTime() + 1234).toISOString(),
        client: { listener: 'submission', ip: '2001:db8::1', helo: 'client', tls: false, user: 'clerk' },
        relatesTo: 'earlier-message',
        blob: { ref: 'b'.repeat(64), sha256: 'c'.repeat(64), size: 123_456_789 },
      }),
      envelopeFixture({ mailFrom: '', receivedAt: AT.toISOString() }),
    ];

    it('writes every message, its recipients, events and rows alongside exactly as one statement each would', async () => {
      await db.pool.query('create table if not exists batch_rows (n int primary key, message text)');
      const row = (n: number, message: string) => (first: number) => ({
        text: `insert into batch_rows (n, message) values ($${first}, $${first + 1})`,
        values: [n, message],
      });
      const one = samples();
      const batch = samples();
      for (const [i, envelope] of one.entries()) {
        await recordMessage(db.pool, envelope, [received(i), scanned], [row(10 + i, envelope.id)]);
      }
      await recordMessages(
        db.pool,
        batch.map((envelope, i) => ({
          envelope,
          events: [received(i), scanned],
          alongside: [row(20 + i, envelope.id)],
        })),
      );
      for (const [i, envelope] of batch.entries()) {
        const alone = await recorded(one[i]?.id as string);
        const together = await recorded(envelope.id);
        assert.deepEqual({ ...together.message, trace_id: undefined }, { ...alone.message, trace_id: undefined });
        assert.equal(together.message.trace_id, envelope.traceId);
        assert.deepEqual(together.recipients, alone.recipients);
        assert.deepEqual(together.events, alone.events);
      }
      const rows = await db.pool.query('select n, message from batch_rows where n >= 20 order by n');
      assert.deepEqual(
        rows.rows,
        batch.map((envelope, i) => ({ n: 20 + i, message: envelope.id })),
      );
    });

    it('writes nothing of any message of the batch when one part of one cannot be stored', async () => {
      await db.pool.query('create table if not exists batch_rows (n int primary key, message text)');
      await db.pool.query(`insert into batch_rows (n, message) values (99, 'taken') on conflict do nothing`);
      const row = (n: number) => (first: number) => ({
        text: `insert into batch_rows (n, message) values ($${first}, 'x')`,
        values: [n],
      });
      const batch = samples();
      await assert.rejects(
        recordMessages(
          db.pool,
          batch.map((envelope, i) => ({ envelope, events: [received(i)], alongside: [row(i === 1 ? 99 : 30 + i)] })),
        ),
      );
      const found = await db.pool.query('select id from messages where id = any($1::text[])', [batch.map((e) => e.id)]);
      assert.equal(found.rowCount, 0);
      assert.equal((await db.pool.query('select 1 from batch_rows where n in (30, 32)')).rowCount, 0);
    });
  });
});
