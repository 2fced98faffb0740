import { randomBytes } from 'node:crypto';
import { monotonicFactory } from 'ulid';

const nextUlid = monotonicFactory();

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
