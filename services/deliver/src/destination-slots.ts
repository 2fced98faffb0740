// Deliveries in progress to MX destinations in one deliver process. A domain whose server stalls (a tarpit answering
// one line a second) holds each handler that sends to it for up to the attempt's bound, 20 minutes by default; a
// stranger who gets the gateway to write to their own domains (registration mails, DSNs) could otherwise fill every
// handler slot, and with them the delivery to the agencies' relay. Two limits: one domain gets at most its share, and
// all domains together at most what is left once some handlers are kept for the relay and the smarthost. Past either,
// an envelope's recipients for that domain are deferred at once (destination-busy) and tried again by the retry
// ladder; the relay and the smarthost, the gateway's own next hops, are not limited here.
import { classifyAnswer } from './bounce-classification.ts';
import { busyAnswer, type RecipientAnswer } from './send-to-destination.ts';

/** What `take` did: a slot taken, or none because the destination, or all MX destinations together, are full. */
export type SlotTaken = 'taken' | 'destination-full' | 'all-full';

export class DestinationSlots {
  readonly #limit: number;
  readonly #totalLimit: number;
  readonly #inUse = new Map<string, number>();
  #total = 0;

  /**
   * `limit`: deliveries to one destination at once; `totalLimit`: to all of them together (each at least 1; none:
   * no total limit).
   */
  constructor(limit: number, totalLimit = Number.POSITIVE_INFINITY) {
    this.#limit = Math.max(1, Math.floor(limit));
    this.#totalLimit = Math.max(1, Math.floor(totalLimit));
  }

  /** Takes a slot for a delivery to `key`, unless that destination or all of them have their limit in progress. */
  take(key: string): SlotTaken {
    const inUse = this.#inUse.get(key) ?? 0;
    if (inUse >= this.#limit) return 'destination-full';
    if (this.#total >= this.#totalLimit) return 'all-full';
    this.#inUse.set(key, inUse + 1);
    this.#total++;
    return 'taken';
  }

  /** Gives back a slot taken for `key` (one that was not taken is ignored). */
  release(key: string): void {
    const inUse = this.#inUse.get(key);
    if (inUse === undefined) return;
    this.#total--;
    if (inUse <= 1) this.#inUse.delete(key);
    else this.#inUse.set(key, inUse - 1);
  }

  /** Deliveries in progress to all destinations together, and the most there may be. */
  usage(): { inUse: number; limit: number } {
    return { inUse: this.#total, limit: this.#totalLimit };
  }
}

/** Half of the handlers a deliver process runs at once (SMGW_PREFETCH), at least 2: the rest stay for others. */
export function destinationLimitFor(prefetch: number): number {
  return Math.max(2, Math.floor(prefetch / 2));
}

/**
 * Handlers all MX destinations together may hold: SMGW_PREFETCH less a quarter of it (at least one handler) kept
 * for the relay and the smarthost. At least 1, so with SMGW_PREFETCH=1 nothing can be kept (the one handler is
 * shared).
 */
export function mxLimitFor(prefetch: number): number {
  const kept = Math.max(1, Math.floor(prefetch / 4));
  return Math.max(1, prefetch - kept);
}

/** A recipient not sent now because `take` found no slot for its destination: deferred (destination-busy). */
export function noSlotAnswer(
  recipient: string,
  taken: Exclude<SlotTaken, 'taken'>,
  slots: DestinationSlots,
): RecipientAnswer {
  if (taken === 'destination-full') return busyAnswer(recipient);
  const { inUse, limit } = slots.usage();
  return {
    recipient,
    classification: classifyAnswer({ errorCode: 'EDESTINATIONBUSY' }),
    error:
      `all MX handlers busy: ${inUse} of ${limit} deliveries to domains' MX in progress, the rest kept for the ` +
      'relay and the smarthost; not sent, tried again later',
    remoteMta: '',
  };
}
