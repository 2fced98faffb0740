// The public types of the mq package (re-exported by index.ts).
import type { Envelope, Stage } from '@smgw/envelope';
import type { Logger } from '@smgw/observability';

/** What a handler decides; it never acks itself (STYLE.md). */
export type Outcome =
  /** Work done: publish each envelope to the head of its own itinerary (an empty itinerary = journey over). */
  | { kind: 'next'; envelopes: Envelope[] }
  /** Temporary failure: try again after the stage's next ladder delay (optionally with an updated envelope). */
  | { kind: 'retry'; code: string; reason: string; envelope?: Envelope }
  /** Permanent failure: park the envelope in smgw.<stage>.parked with the reason. */
  | { kind: 'reject'; code: string; reason: string };

export interface HandlerContext {
  /** Attempts made before this one at this stage (envelope.attempt). */
  attempt: number;
  /** True when a `retry` outcome now would park (or, for deliver, when the ladder is exhausted). */
  lastAttempt: boolean;
  /**
   * The broker delivered this envelope before (a consumer died or lost its channel, or an outcome could not be
   * finished): an earlier handling may have published its results already. Absent in tests: false.
   */
  redelivered?: boolean;
  /** Logger with messageId and traceId bound. */
  log: Logger;
  /** Aborted when the process is shutting down and in-flight work should wrap up. */
  signal: AbortSignal;
}

export type Handler = (envelope: Envelope, context: HandlerContext) => Promise<Outcome>;

export interface ConsumeOptions {
  /** Delays between attempts (ms); after the last one a retry parks the envelope. */
  retryLadder: number[];
  /** Envelopes in flight at once for this consumer (AMQP prefetch). */
  prefetch: number;
  /** Called (and awaited) before an envelope is parked, so the service can record why in the trace. */
  onParked?: (envelope: Envelope | undefined, code: string, reason: string) => Promise<void>;
}

export interface Consumer {
  /** Stop taking new envelopes, let in-flight ones finish (ack/publish), then resolve. */
  drain(): Promise<void>;
}

/** What consume() returns: a Consumer that also tells how much work it has in hand (for an in-flight gauge). */
export interface StageConsumer extends Consumer {
  /** Envelopes delivered to this consumer whose handling (handler, follow-up publishes, ack) is not finished. */
  inFlight(): number;
}

export interface Mq {
  /** Declares exchange, work/retry/parked queues of `stages` with these ladders (idempotent; re-run on reconnect). */
  declareTopology(ladders: Partial<Record<Stage, number[]>>): Promise<void>;
  /**
   * Publishes to the queue of `envelope.itinerary[0]` (persistent, mandatory, confirmed, traceparent header).
   * Resolves only when the broker confirmed AND did not return it; rejects with PublishError otherwise.
   */
  publish(envelope: Envelope): Promise<void>;
  consume(stage: Stage, handler: Handler, options: ConsumeOptions): Promise<StageConsumer>;
  /** Connected and topology declared (for /readyz). */
  isReady(): boolean;
  /** Drains every consumer, waits for pending confirms, closes the connection. */
  close(): Promise<void>;
}

export interface MqOptions {
  url: string;
  logger: Logger;
  /** Name shown in the RabbitMQ management UI. */
  connectionName: string;
  /**
   * Reconnect backoff. Before the first connection, connectMq gives up after `initialRetries` failed retries
   * (default 8, about half a minute) so a wrong URL fails the start; once connected it retries forever.
   */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number; initialRetries?: number };
  /** Writes the publish channel buffers before publishing waits for it to drain (amqplib's default: 1024). */
  publishBufferSize?: number;
}
