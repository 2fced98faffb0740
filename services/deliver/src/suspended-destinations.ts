// MX destinations that lately did not answer, per deliver process: Postfix's "delivery temporarily suspended". A
// domain whose server just timed out (or refused, or dropped, the connection) would otherwise be tried again at once by
// every envelope for it, each holding a handler until its own timeout. While a destination is remembered, deliveries
// to it are deferred at once without connecting (destination-suspended, 4.4.1) and come back through the retry ladder.
// Any SMTP reply, even 4xx or 5xx, is a live server: it is not remembered, and ends a suspension. The memory is
// bounded: a stranger can name as many domains as they like, so past the bound the oldest entry is forgotten.
import { classifyAnswer, NO_ANSWER_CATEGORIES } from './bounce-classification.ts';
import type { RecipientAnswer } from './send-to-destination.ts';

/** How long a destination stays suspended after an attempt it did not answer (Postfix's is about as long). */
export const SUSPEND_MS = 5 * 60 * 1000;
/** Destinations remembered at most (each entry well under a kilobyte). */
export const MAX_SUSPENDED = 4096;
/** What is kept of the error that suspended a destination. */
const MAX_REASON_CHARS = 200;

export interface Suspension {
  /** When the attempt that got no answer ended (ms since the epoch). */
  since: number;
  /** What it met: the category and the error, cut short. */
  reason: string;
}

/** What a real attempt tells about its next hop. */
export type AttemptHeard = { kind: 'answered' } | { kind: 'silent'; reason: string } | { kind: 'unknown' };

/**
 * 'silent': the attempt ended in a timeout or a connection error, or ran out of its bound (a server trickling its
 * replies); 'answered': the next hop replied (a live server, whatever it said); 'unknown': neither (nothing was sent).
 */
export function whatAttemptHeard(answers: readonly RecipientAnswer[], attemptBoundReached: boolean): AttemptHeard {
  const silent = answers.find((a) => a.reply === undefined && NO_ANSWER_CATEGORIES.has(a.classification.category));
  if (silent) return { kind: 'silent', reason: `${silent.classification.category}: ${silent.error ?? 'no reply'}` };
  if (answers.some((a) => a.reply !== undefined)) return { kind: 'answered' };
  if (attemptBoundReached && answers.length > 0) {
    return { kind: 'silent', reason: 'stalled: no complete answer within the bound of one attempt' };
  }
  return { kind: 'unknown' };
}

export class SuspendedDestinations {
  readonly #forMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  /** In the order suspended (a destination suspended again moves to the end): the first is the oldest. */
  readonly #entries = new Map<string, Suspension>();

  constructor(options: { forMs?: number; maxEntries?: number; now?: () => number } = {}) {
    this.#forMs = options.forMs ?? SUSPEND_MS;
    this.#maxEntries = Math.max(1, options.maxEntries ?? MAX_SUSPENDED);
    this.#now = options.now ?? Date.now;
  }

  /** The suspension of `key` while it lasts; undefined when there is none (an expired one is forgotten). */
  suspensionOf(key: string): Suspension | undefined {
    const suspension = this.#entries.get(key);
    if (!suspension) return undefined;
    if (this.#now() - suspension.since < this.#forMs) return suspension;
    this.#entries.delete(key);
    return undefined;
  }

  /** Learns from a real attempt to `key` (not one cut short by this process): see whatAttemptHeard. */
  learn(key: string, answers: readonly RecipientAnswer[], attemptBoundReached: boolean): void {
    const heard = whatAttemptHeard(answers, attemptBoundReached);
    if (heard.kind === 'answered') this.#entries.delete(key);
    else if (heard.kind === 'silent') this.suspend(key, heard.reason);
  }

  suspend(key: string, reason: string): void {
    this.#entries.delete(key);
    this.#entries.set(key, { since: this.#now(), reason: reason.slice(0, MAX_REASON_CHARS) });
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= this.#maxEntries) break;
      this.#entries.delete(oldest);
    }
  }

  /** Destinations remembered now (expired ones included until they are looked up or pushed out). */
  get size(): number {
    return this.#entries.size;
  }
}

/** A recipient not sent now because its destination is suspended: deferred, nothing connected. */
export function suspendedAnswer(recipient: string, destinationKey: string, suspension: Suspension): RecipientAnswer {
  const at = new Date(suspension.since).toISOString();
  return {
    recipient,
    classification: classifyAnswer({ errorCode: 'EDESTINATIONSUSPENDED' }),
    error:
      `delivery to ${destinationKey} temporarily suspended: its last attempt (${at}) got no answer ` +
      `(${suspension.reason}); not connected, tried again later`,
    remoteMta: '',
  };
}
