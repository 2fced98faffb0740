import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { encodeTime, monotonicFactory } from 'ulid';

/**
 * ulid's PRNG: a uniform value in [0, 1) from the system CSPRNG, drawn from a pool of random bytes refilled in
 * blocks (ulid's own default asks the CSPRNG once per character, 16 calls per id). One byte per character is
 * enough: ulid takes floor(value × 32), and byte / 256 maps 8 bytes to each of the 32 characters.
 */
function pooledRandom(): () => number {
  const pool = Buffer.alloc(4096);
  let next = pool.length;
  return () => {
    if (next === pool.length) {
      randomFillSync(pool);
      next = 0;
    }
    return (pool[next++] as number) / 256;
  };
}

const nextUlid = monotonicFactory(pooledRandom());

/** The alphabet of a ULID as newMessageId writes it: Crockford's base32 in upper case (no I, L, O or U). */
const ULID_ALPHABET = '0-9A-HJKMNP-TV-Z';

/**
 * A gateway id as newMessageId gives it out: 26 characters of upper-case Crockford base32. Message ids, and the
 * other ids the gateway makes the same way (agencies, quarantine entries), have this form.
 */
export const MESSAGE_ID_PATTERN = new RegExp(`^[${ULID_ALPHABET}]{26}$`);

/**
 * MESSAGE_ID_PATTERN as a JSON Schema `pattern` (which takes no flags) that also accepts lower case, since people
 * type ids by hand: a route upper-cases the id before it uses it.
 */
export const MESSAGE_ID_PATTERN_ANY_CASE = `^[${ULID_ALPHABET}${ULID_ALPHABET.toLowerCase()}]{26}$`;

/** True for a well-formed gateway id (upper case, as stored; upper-case what a person typed first). */
export function isMessageId(value: unknown): value is string {
  return typeof value === 'string' && MESSAGE_ID_PATTERN.test(value);
}

/** A new gateway message id: a ULID, so ids sort by the time they were given out. */
export function newMessageId(now: number = Date.now()): string {
  return nextUlid(now);
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * The same gateway id every time it is made for `key` (and `time`, ms since the epoch: its ULID time part). For a
 * mail the gateway may make again after a failure it cannot see through (a publish whose confirm was lost, a crash
 * before the commit that marks it sent): made again under the same id, deliver knows it as the same mail and sends
 * it once. `key` names the mail, e.g. its kind and the token it belongs to.
 */
export function messageIdFor(key: string, time: number): string {
  const digest = createHash('sha256').update(key, 'utf8').digest();
  let rest = '';
  for (let i = 0; i < 16; i++) rest += CROCKFORD[(digest[i] as number) >> 3];
  return encodeTime(time, 10) + rest;
}

/** A new W3C trace id (16 random bytes as lowercase hex). */
export function newTraceId(): string {
  return randomBytes(16).toString('hex');
}

/** A W3C traceparent header for a trace id (span id random, sampled). */
export function traceparentFor(traceId: string): string {
  return `00-${traceId}-${randomBytes(8).toString('hex')}-01`;
}

/** The trace id in a W3C traceparent header, if it is well formed. */
export function traceIdFromTraceparent(header: unknown): string | undefined {
  if (typeof header !== 'string') return undefined;
  const match = /^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(header);
  return match?.[1];
}
