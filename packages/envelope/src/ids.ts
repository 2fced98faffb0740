import { randomBytes, randomFillSync } from 'node:crypto';
import { monotonicFactory } from 'ulid';

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
