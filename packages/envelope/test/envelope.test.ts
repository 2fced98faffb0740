import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  advance,
  decodeEnvelope,
  dsnParameterOf,
  type Envelope,
  encodeEnvelope,
  failureDsnAsked,
  formatDelay,
  forRecipients,
  InvalidEnvelopeError,
  itineraryFor,
  newEnvelope,
  newMessageId,
  newTraceId,
  parkedQueue,
  parseDelay,
  parseEnvelope,
  retryQueue,
  SAFE_OUTBOUND_CRYPTO_STATUSES,
  skipStage,
  splitAtOptionalStage,
  traceIdFromTraceparent,
  traceparentFor,
  withBlob,
  workQueue,
} from '../src/index.ts';

function sample(overrides: Partial<Envelope> = {}): Envelope {
  const envelope = newEnvelope({
    direction: 'inbound',
    mailFrom: 'a@example.org',
    recipients: ['b@behoerde.example'],
    client: { listener: 'inbound', ip: '192.0.2.1', helo: 'mx.example.org', tls: false },
    blob: { ref: 'f'.repeat(64), sha256: 'f'.repeat(64), size: 10 },
  });
  return { ...envelope, ...overrides };
}

describe('envelope', () => {
  it('survives encoding and decoding unchanged', () => {
    const env = sample();
    const decoded = decodeEnvelope(encodeEnvelope(env));
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.envelope, env);
  });

  it('rejects what is not an envelope with a reason instead of throwing', () => {
    for (const bad of [
      Buffer.from('not json'),
      Buffer.from('{}'),
      encodeEnvelope(sample()).toString().replace('"v":1', '"v":9'),
    ]) {
      const result = decodeEnvelope(Buffer.from(bad));
      assert.equal(result.ok, false);
      if (!result.ok) assert.ok(result.error.length > 0);
    }
    assert.equal(parseEnvelope({ ...sample(), recipients: [] }).ok, false);
    assert.equal(parseEnvelope({ ...sample(), id: 'lowercase-not-ulid' }).ok, false);
  });

  it('never lets an invalid envelope be encoded for the wire', () => {
    assert.throws(
      () => encodeEnvelope({ ...sample(), itinerary: ['nowhere'] } as unknown as Envelope),
      InvalidEnvelopeError,
    );
  });

  it('keeps unknown verdict details (stages add their own fields)', () => {
    const env = sample({ verdicts: { scan: { status: 'clean', at: new Date().toISOString(), engine: 'clamd' } } });
    const decoded = parseEnvelope(JSON.parse(JSON.stringify(env)));
    assert.ok(decoded.ok);
    assert.equal(decoded.envelope.verdicts.scan?.engine, 'clamd');
  });
});

describe('itinerary', () => {
  it('sends outbound mail through scan and encrypt before deliver, never straight out', () => {
    assert.deepEqual(itineraryFor('outbound'), ['scan', 'encrypt', 'deliver']);
  });

  it('scans every direction except the mail the gateway generates itself', () => {
    for (const direction of ['outbound', 'internal', 'portal'] as const) {
      assert.equal(itineraryFor(direction)[0], 'scan', direction);
    }
    assert.deepEqual(itineraryFor('generated'), ['deliver']);
  });

  it('decrypts inbound mail before it is scanned', () => {
    assert.deepEqual(itineraryFor('inbound'), ['encrypt', 'scan', 'verify', 'deliver']);
  });

  it('lets plain inbound mail skip encrypt from the start, without a hop; no other stage and no other direction', () => {
    const env = sample();
    const plain = skipStage(env, 'encrypt');
    assert.deepEqual(plain.itinerary, ['scan', 'verify', 'deliver']);
    assert.equal(plain.hop, 0, 'encrypt was not passed');
    assert.deepEqual(env.itinerary, ['encrypt', 'scan', 'verify', 'deliver'], 'the original is left as it was');
    assert.ok(parseEnvelope(plain).ok);
    assert.throws(() => skipStage(plain, 'encrypt'), /is at scan, not at encrypt/);
    assert.throws(() => skipStage(plain, 'scan'), /inbound mail may not skip scan/);
    const outbound = sample({ direction: 'outbound', itinerary: ['encrypt', 'deliver'] });
    assert.throws(() => skipStage(outbound, 'encrypt'), /outbound mail may not skip encrypt/);
  });

  it('advances by removing the finished stage, counting the hop and resetting attempts', () => {
    const env = sample({ itinerary: ['encrypt', 'deliver'], direction: 'outbound', attempt: 3 });
    const next = advance(env, 'encrypt');
    assert.deepEqual(next.itinerary, ['deliver']);
    assert.equal(next.hop, 1);
    assert.equal(next.attempt, 0);
    assert.throws(() => advance(env, 'deliver'), /is at encrypt, not at deliver/);
  });

  it('splits recipients into child envelopes of the same message', () => {
    const env = sample({ recipients: ['a@behoerde.example', 'b@behoerde.example'] });
    const child = forRecipients(env, ['b@behoerde.example']);
    assert.equal(child.id, env.id);
    assert.deepEqual(child.recipients, ['b@behoerde.example']);
    assert.throws(() => forRecipients(env, []));
  });

  it('verifies signatures on every route that reaches an agency, never on outbound or generated mail', () => {
    for (const direction of ['inbound', 'internal', 'portal'] as const) {
      const route = itineraryFor(direction);
      assert.deepEqual(route.slice(route.indexOf('scan') + 1), ['verify', 'deliver'], direction);
    }
    assert.ok(!itineraryFor('outbound').includes('verify'));
    assert.ok(!itineraryFor('generated').includes('verify'));
  });

  it('sends only the picked recipients through an optional stage; the others skip it without a hop', () => {
    const env = {
      ...sample({ recipients: ['on@behoerde.example', 'off@behoerde.example'] }),
      itinerary: ['verify', 'deliver'],
    } as Envelope;
    const [through, past] = splitAtOptionalStage(env, (r) => r.startsWith('on@'));
    assert.deepEqual(through?.recipients, ['on@behoerde.example']);
    assert.deepEqual(through?.itinerary, ['verify', 'deliver']);
    assert.deepEqual(past?.recipients, ['off@behoerde.example']);
    assert.deepEqual(past?.itinerary, ['deliver']);
    assert.equal(past?.hop, env.hop);
    assert.equal(past?.id, env.id);
    assert.deepEqual(
      splitAtOptionalStage(env, () => true),
      [env],
      'all picked: one envelope',
    );
    const none = splitAtOptionalStage(env, () => false);
    assert.equal(none.length, 1);
    assert.deepEqual(none[0]?.itinerary, ['deliver']);
    assert.deepEqual(none[0]?.recipients, env.recipients);
    const atDeliver = { ...env, itinerary: ['deliver'] } as Envelope;
    assert.deepEqual(
      splitAtOptionalStage(atDeliver, () => false),
      [atDeliver],
      'deliver is never skipped',
    );
  });

  it('keeps the blob as received when a stage replaces the message, however often, and it survives the wire', () => {
    const env = sample();
    const decrypted = { ref: 'd'.repeat(64), sha256: 'd'.repeat(64), size: 10 };
    const rewritten = { ref: 'e'.repeat(64), sha256: 'e'.repeat(64), size: 11 };
    assert.equal(withBlob(env, env.blob), env, 'the same blob changes nothing');
    const twice = withBlob(withBlob(env, decrypted), rewritten);
    assert.deepEqual(twice.blob, rewritten);
    assert.deepEqual(twice.receivedBlob, env.blob);
    const decoded = decodeEnvelope(encodeEnvelope(twice));
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.envelope.receivedBlob, env.blob);
  });

  it('lets outbound mail leave only when encrypted by the gateway or already encrypted by the sender', () => {
    assert.deepEqual([...SAFE_OUTBOUND_CRYPTO_STATUSES].sort(), ['already-encrypted', 'encrypted']);
    for (const unsafe of ['portal', 'plain', 'decrypted', 'not-decrypted']) {
      assert.ok(!SAFE_OUTBOUND_CRYPTO_STATUSES.includes(unsafe), unsafe);
    }
  });
});

describe('queue names and ids', () => {
  it('names queues smgw.<stage>, smgw.<stage>.retry.<delay>, smgw.<stage>.parked', () => {
    assert.equal(workQueue('deliver'), 'smgw.deliver');
    assert.equal(retryQueue('deliver', 300_000), 'smgw.deliver.retry.5m');
    assert.equal(parkedQueue('scan'), 'smgw.scan.parked');
  });

  it('writes and reads delays in the same units', () => {
    for (const [ms, text] of [
      [250, '250ms'],
      [90_000, '90s'],
      [300_000, '5m'],
      [7_200_000, '2h'],
      [172_800_000, '2d'],
    ] as const) {
      assert.equal(formatDelay(ms), text);
      assert.equal(parseDelay(text), ms);
    }
    assert.equal(parseDelay('soon'), undefined);
  });

  it('gives out message ids that sort by time', () => {
    const ids = Array.from({ length: 50 }, () => newMessageId());
    assert.deepEqual([...ids].sort(), ids);
  });

  it('carries the trace id through a traceparent header', () => {
    const traceId = newTraceId();
    assert.equal(traceIdFromTraceparent(traceparentFor(traceId)), traceId);
    assert.equal(traceIdFromTraceparent('garbage'), undefined);
  });
});

describe('per-recipient DSN parameters (RFC 3461)', () => {
  const request = { notify: { 'Anna@Amt.example': ['NEVER' as const], 'b@x.example': ['SUCCESS' as const] } };

  it('finds a recipient’s parameter as written, else without case', () => {
    assert.deepEqual(dsnParameterOf(request.notify, 'Anna@Amt.example'), ['NEVER']);
    assert.deepEqual(dsnParameterOf(request.notify, 'anna@amt.example'), ['NEVER']);
    assert.equal(dsnParameterOf(request.notify, 'c@x.example'), undefined);
    assert.equal(dsnParameterOf(undefined, 'c@x.example'), undefined);
  });

  it('asks for a failure DSN without NOTIFY or with FAILURE, never with NEVER or a list without FAILURE', () => {
    assert.equal(failureDsnAsked(undefined, 'c@x.example'), true);
    assert.equal(failureDsnAsked(request, 'c@x.example'), true);
    assert.equal(failureDsnAsked(request, 'anna@amt.example'), false);
    assert.equal(failureDsnAsked(request, 'b@x.example'), false);
    assert.equal(failureDsnAsked({ notify: { 'd@x.example': ['FAILURE', 'DELAY'] } }, 'd@x.example'), true);
  });
});
