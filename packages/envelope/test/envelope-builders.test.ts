import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DIRECTIONS,
  generatedEnvelope,
  isMessageId,
  itineraryFor,
  MESSAGE_ID_PATTERN_ANY_CASE,
  messageIdFor,
  newEnvelope,
  newMessageId,
  newTraceId,
  parseEnvelope,
} from '../src/index.ts';

const blob = { ref: 'f'.repeat(64), sha256: 'f'.repeat(64), size: 10 };
const client = { listener: 'submission', ip: '10.0.0.5', helo: 'mail.behoerde.example', tls: true } as const;

function accepted(direction: (typeof DIRECTIONS)[number]) {
  return newEnvelope({
    direction,
    mailFrom: 'clerk@behoerde.example',
    recipients: ['buerger@example.org'],
    client,
    blob,
  });
}

describe('newEnvelope', () => {
  it('makes a valid envelope for every direction, at the start of that direction’s itinerary', () => {
    for (const direction of DIRECTIONS) {
      const envelope = accepted(direction);
      const parsed = parseEnvelope(envelope);
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
      assert.deepEqual(envelope.itinerary, itineraryFor(direction), direction);
      assert.equal(envelope.direction, direction);
    }
  });

  it('starts with nothing decided: hop 0, attempt 0, no verdicts, new ids', () => {
    const envelope = accepted('outbound');
    assert.equal(envelope.v, 1);
    assert.equal(envelope.hop, 0);
    assert.equal(envelope.attempt, 0);
    assert.deepEqual(envelope.verdicts, {});
    assert.ok(isMessageId(envelope.id));
    assert.match(envelope.traceId, /^[0-9a-f]{32}$/);
    assert.notEqual(accepted('outbound').id, envelope.id);
    assert.equal('dsn' in envelope, false);
    assert.equal('relatesTo' in envelope, false);
  });

  it('keeps the id, trace id, time and DSN request it is given (one accepted message, several envelopes)', () => {
    const id = newMessageId();
    const traceId = newTraceId();
    const receivedAt = new Date('2026-03-02T09:00:00.000Z');
    const dsn = { ret: 'HDRS' as const, notify: { 'amt@behoerde.example': ['FAILURE' as const] } };
    const [internal, outbound] = (['internal', 'outbound'] as const).map((direction) =>
      newEnvelope({
        id,
        traceId,
        receivedAt,
        direction,
        mailFrom: 'clerk@behoerde.example',
        recipients: ['amt@behoerde.example'],
        client,
        blob,
        dsn,
      }),
    );
    for (const envelope of [internal, outbound]) {
      assert.equal(envelope?.id, id);
      assert.equal(envelope?.traceId, traceId);
      assert.equal(envelope?.receivedAt, '2026-03-02T09:00:00.000Z');
      assert.deepEqual(envelope?.dsn, dsn);
    }
  });

  it('copies the recipient list: the caller may reuse its array', () => {
    const recipients = ['amt@behoerde.example'];
    const envelope = newEnvelope({ direction: 'inbound', mailFrom: '', recipients, client, blob });
    recipients.push('other@behoerde.example');
    assert.deepEqual(envelope.recipients, ['amt@behoerde.example']);
  });
});

describe('generatedEnvelope', () => {
  const original = accepted('inbound');

  it('makes mail from the gateway itself: direction generated, null sender, straight to deliver, in the original trace', () => {
    const createdAt = new Date('2026-03-02T10:00:00.000Z');
    const envelope = generatedEnvelope({
      traceId: original.traceId,
      relatesTo: original.id,
      recipients: [original.mailFrom],
      blob,
      hostname: 'smgw.test',
      createdAt,
    });
    assert.ok(parseEnvelope(envelope).ok);
    assert.equal(envelope.direction, 'generated');
    assert.equal(envelope.mailFrom, '');
    assert.deepEqual(envelope.itinerary, ['deliver']);
    assert.deepEqual(envelope.client, { listener: 'gateway', ip: '', helo: 'smgw.test', tls: false });
    assert.equal(envelope.traceId, original.traceId);
    assert.equal(envelope.relatesTo, original.id);
    assert.equal(envelope.receivedAt, '2026-03-02T10:00:00.000Z');
    assert.deepEqual([envelope.hop, envelope.attempt, envelope.verdicts], [0, 0, {}]);
    assert.ok(isMessageId(envelope.id));
    assert.notEqual(envelope.id, original.id);
  });

  it('keeps an id given beforehand (the mail’s own Message-ID names it) and a sender if one is given', () => {
    const id = newMessageId();
    const envelope = generatedEnvelope({
      id,
      traceId: original.traceId,
      mailFrom: 'postmaster@smgw.test',
      recipients: ['amt@behoerde.example'],
      blob,
      hostname: 'smgw.test',
      createdAt: new Date(),
    });
    assert.equal(envelope.id, id);
    assert.equal(envelope.mailFrom, 'postmaster@smgw.test');
    assert.equal('relatesTo' in envelope, false);
  });
});

describe('message ids', () => {
  it('gives out distinct ids whose random part uses every character, also across milliseconds', () => {
    const ids = new Set<string>();
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const id = newMessageId(1_800_000_000_000 + Math.floor(i / 10));
      assert.ok(isMessageId(id), id);
      ids.add(id);
      for (const c of id.slice(10)) seen.add(c);
    }
    assert.equal(ids.size, 5000);
    assert.equal(seen.size, 32);
  });

  it('accepts what newMessageId gives out and nothing else', () => {
    assert.ok(isMessageId(newMessageId()));
    for (const bad of [
      '01ARZ3NDEKTSV4RRFFQ69G5FA',
      '01arz3ndektsv4rrffq69g5fav',
      '01ARZ3NDEKTSV4RRFFQ69G5FAI',
      42,
      undefined,
    ]) {
      assert.equal(isMessageId(bad), false, String(bad));
    }
  });

  it('lets request schemas take an id typed in lower case, but no letter outside the ULID alphabet', () => {
    const pattern = new RegExp(MESSAGE_ID_PATTERN_ANY_CASE);
    assert.ok(pattern.test('01arz3ndektsv4rrffq69g5fav'));
    assert.ok(pattern.test(newMessageId()));
    assert.equal(pattern.test('01arz3ndektsv4rrffq69g5fau'), false);
    assert.equal(pattern.test('01ARZ3NDEKTSV4RRFFQ69G5FA'), false);
  });
});

describe('messageIdFor', () => {
  it('gives the same well-formed id for the same key and time, and another for another key', () => {
    const at = Date.parse('2026-03-01T10:00:00Z');
    const id = messageIdFor('pin-mail\0token-1', at);
    assert.ok(isMessageId(id), id);
    assert.equal(messageIdFor('pin-mail\0token-1', at), id);
    assert.notEqual(messageIdFor('pin-mail\0token-2', at), id);
    assert.notEqual(messageIdFor('activation-resent\0token-1', at), id);
    assert.ok(id < messageIdFor('pin-mail\0token-1', at + 1000), 'sorts by its time, as the other ids do');
  });
});
