// Typed errors of the mq package; every one carries a stable SCREAMING_SNAKE code (docs/LOG-CODES.md).

/** A publish the broker did not take responsibility for: the caller must not report success (durability rule 1). */
export class PublishError extends Error {
  readonly code: 'MQ_PUBLISH_NACKED' | 'MQ_PUBLISH_RETURNED' | 'MQ_PUBLISH_CHANNEL_CLOSED' | 'MQ_NOT_CONNECTED';
  constructor(code: PublishError['code'], message: string) {
    super(message);
    this.name = 'PublishError';
    this.code = code;
  }
}

/** Publish failures after which the message is surely in no queue: nacked, returned, or never sent. */
const NOT_ENQUEUED = new Set(['MQ_PUBLISH_NACKED', 'MQ_PUBLISH_RETURNED', 'MQ_NOT_CONNECTED']);

/**
 * Whether a failed publish surely left the message in no queue. False for anything else: after a lost confirm
 * (MQ_PUBLISH_CHANNEL_CLOSED, a timeout) the broker may have taken it all the same. Reads the error's `code`, so it
 * also answers for a publisher that is not this client's (tests, the portal's deps).
 */
export function surelyNotEnqueued(err: unknown): boolean {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && NOT_ENQUEUED.has(code);
}

/**
 * Anything else the mq client refuses or cannot do:
 * - MQ_CONNECT_FAILED: connectMq could not reach or log in to the broker within its start-up retries;
 * - MQ_NOT_CONNECTED: an operation that needs the broker ran while disconnected or after close();
 * - MQ_TOPOLOGY_FAILED: the broker refused a declaration (PRECONDITION_FAILED: a queue exists with other arguments);
 * - MQ_INVALID_OPTIONS: a retry ladder or prefetch that cannot be used;
 * - MQ_LADDER_NOT_DECLARED: consume() with a retry ladder whose delay queues declareTopology() did not declare;
 * - MQ_CONSUME_FAILED: the broker refused to start a consumer (usually: the work queue does not exist);
 * - MQ_EMPTY_ITINERARY: publish() of an envelope with no stage left: a programming error.
 */
export class MqError extends Error {
  readonly code:
    | 'MQ_CONNECT_FAILED'
    | 'MQ_NOT_CONNECTED'
    | 'MQ_TOPOLOGY_FAILED'
    | 'MQ_INVALID_OPTIONS'
    | 'MQ_LADDER_NOT_DECLARED'
    | 'MQ_CONSUME_FAILED'
    | 'MQ_EMPTY_ITINERARY';
  constructor(code: MqError['code'], message: string) {
    super(message);
    this.name = 'MqError';
    this.code = code;
  }
}
