// Deliveries in progress per MX destination in one deliver process. A domain whose server stalls (a tarpit answering
// one line a second) holds each handler that sends to it for up to the attempt's bound, 20 minutes by default; a
// stranger who gets the gateway to write to their own domain (registration mails, DSNs) could otherwise fill every
// handler slot, and with them the delivery to the agencies' relay. Past the limit an envelope's recipients for that
// domain are deferred at once (destination-busy) and tried again by the retry ladder; the relay and the smarthost,
// the gateway's own next hops, are not limited here.

export class DestinationSlots {
  readonly #limit: number;
  readonly #inUse = new Map<string, number>();

  /** `limit`: deliveries to one destination at once (at least 1). */
  constructor(limit: number) {
    this.#limit = Math.max(1, Math.floor(limit));
  }

  /** Takes a slot for a delivery to `key`; false (none taken) when the destination has its limit in progress. */
  take(key: string): boolean {
    const inUse = this.#inUse.get(key) ?? 0;
    if (inUse >= this.#limit) return false;
    this.#inUse.set(key, inUse + 1);
    return true;
  }

  /** Gives back a slot taken for `key`. */
  release(key: string): void {
    const left = (this.#inUse.get(key) ?? 1) - 1;
    if (left <= 0) this.#inUse.delete(key);
    else this.#inUse.set(key, left);
  }
}

/** Half of the handlers a deliver process runs at once (SMGW_PREFETCH), at least 2: the rest stay for others. */
export function destinationLimitFor(prefetch: number): number {
  return Math.max(2, Math.floor(prefetch / 2));
}
