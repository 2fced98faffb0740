// Handler outcomes: the builders handlers use, and the plan that turns an outcome into publishes or a park.
import { type Envelope, retryQueue, type Stage, workQueue } from '@smgw/envelope';
import type { Outcome } from './types.ts';

/** Outcome builders so handlers read as sentences. */
export const next = (...envelopes: Envelope[]): Outcome => ({ kind: 'next', envelopes });
export const retry = (code: string, reason: string, envelope?: Envelope): Outcome =>
  envelope ? { kind: 'retry', code, reason, envelope } : { kind: 'retry', code, reason };
export const reject = (code: string, reason: string): Outcome => ({ kind: 'reject', code, reason });

/** What the consumer does with an outcome before it acks. */
export type Plan =
  /** Publish each (confirmed), then ack; an empty list just acks (journey over). */
  | { kind: 'publish'; publications: { routingKey: string; envelope: Envelope }[] }
  /** Call onParked, publish to the stage's parked queue with code and reason, then ack. */
  | { kind: 'park'; envelope: Envelope; code: string; reason: string };

/** Code of a park after the last ladder step (the last retry's own code is in the reason). */
export const RETRIES_EXHAUSTED = 'RETRIES_EXHAUSTED';

/** True when a retry now would park: the ladder has no step left for this attempt. */
export function isLastAttempt(attempt: number, ladder: readonly number[]): boolean {
  return attempt >= ladder.length;
}

export function planOutcome(stage: Stage, envelope: Envelope, outcome: Outcome, ladder: readonly number[]): Plan {
  switch (outcome.kind) {
    case 'next':
      return {
        kind: 'publish',
        publications: outcome.envelopes.flatMap((next) => {
          const head = next.itinerary[0];
          return head ? [{ routingKey: workQueue(head), envelope: next }] : [];
        }),
      };
    case 'retry': {
      const base = outcome.envelope ?? envelope;
      const delay = ladder[envelope.attempt];
      if (delay === undefined || isLastAttempt(envelope.attempt, ladder)) {
        return { kind: 'park', envelope: base, code: RETRIES_EXHAUSTED, reason: `${outcome.code}: ${outcome.reason}` };
      }
      return {
        kind: 'publish',
        publications: [{ routingKey: retryQueue(stage, delay), envelope: { ...base, attempt: envelope.attempt + 1 } }],
      };
    }
    case 'reject':
      return { kind: 'park', envelope, code: outcome.code, reason: outcome.reason };
  }
}
