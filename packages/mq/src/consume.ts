// One stage's consumer: its own channel with prefetch; each delivery is decoded, handed to the handler, and the
// outcome is turned into confirmed publishes (next stage, delay queue, parked queue) before the ack (durability
// rule 2). If a follow-up publish fails the delivery is nacked with requeue: the broker delivers it again, and after
// DELIVERY_LIMIT such returns parks it itself.
import {
  decodeEnvelope,
  type Envelope,
  encodeEnvelope,
  HEADERS,
  InvalidEnvelopeError,
  parkedQueue,
  type Stage,
  traceIdFromTraceparent,
  traceparentFor,
  workQueue,
} from '@smgw/envelope';
import { type Logger, messageLogger } from '@smgw/observability';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { MqError } from './errors.ts';
import { isLastAttempt, type Plan, planOutcome, retry } from './outcome.ts';
import { type OutgoingMessage, publishToken } from './publish.ts';
import type { ConsumeOptions, Handler, Outcome, StageConsumer } from './types.ts';

/** Park codes of the consumer itself (a handler's own reject codes are its business). */
export const PARK_CODES = {
  /** The payload is not a valid envelope (not JSON, or fails the schema). */
  envelopeInvalid: 'ENVELOPE_INVALID',
  /** The envelope's itinerary does not start with the stage whose queue it came from. */
  envelopeMisrouted: 'ENVELOPE_MISROUTED',
  /** The handler's outcome holds an envelope that does not validate; the incoming envelope is parked instead. */
  outcomeInvalid: 'OUTCOME_INVALID',
} as const;

/** A handler that throws is a temporary failure (an infrastructure error is never a pass). */
export const HANDLER_FAILED = 'HANDLER_FAILED';

/** Headers are limited (amqplib refuses tables over 64 KiB); a reason is for people, so it is cut short. */
const MAX_REASON_LENGTH = 2000;

export interface StageConsumerDeps {
  stage: Stage;
  handler: Handler;
  options: ConsumeOptions;
  logger: Logger;
  /** Confirmed publish through the client's current publish channel. */
  publish(message: OutgoingMessage): Promise<void>;
  /** The live connection, if any (to re-open a channel the broker closed while the connection stayed up). */
  currentModel(): ChannelModel | undefined;
  /** Called once the consumer is drained, so the client stops restarting it. */
  onDrained(consumer: AmqpStageConsumer): void;
}

type Verdict = 'ack' | 'requeue';

export class AmqpStageConsumer implements StageConsumer {
  readonly #deps: StageConsumerDeps;
  readonly #log: Logger;
  readonly #abort = new AbortController();
  readonly #inFlight = new Set<Promise<void>>();
  #channel: Channel | undefined;
  #channelModel: ChannelModel | undefined;
  #consumerTag: string | undefined;
  /** Attaches run one after another (a reconnect and a channel restart may ask at the same time). */
  #attachChain: Promise<void> = Promise.resolve();
  #reattachTimer: NodeJS.Timeout | undefined;
  #reattachDelayMs = 1000;
  #draining: Promise<void> | undefined;

  constructor(deps: StageConsumerDeps) {
    this.#deps = deps;
    this.#log = deps.logger.child({ stage: deps.stage });
  }

  inFlight(): number {
    return this.#inFlight.size;
  }

  /** Opens a channel on `model` and starts consuming the stage's work queue (no-op if already on that model). */
  attach(model: ChannelModel): Promise<void> {
    const attached = this.#attachChain.then(() => this.#attachOnce(model));
    this.#attachChain = attached.catch(() => {});
    return attached;
  }

  async #attachOnce(model: ChannelModel): Promise<void> {
    if (this.#draining) return;
    if (this.#channel && this.#channelModel === model) return;
    const queue = workQueue(this.#deps.stage);
    let channel: Channel;
    try {
      channel = await model.createChannel();
    } catch (err) {
      throw new MqError('MQ_NOT_CONNECTED', `cannot open a channel to consume ${queue}: ${(err as Error).message}`);
    }
    channel.on('error', (err: Error) => {
      this.#log.warn({ code: 'MQ_CHANNEL_ERROR', err: err.message }, 'consumer channel closed by the broker');
    });
    channel.on('close', () => {
      if (this.#channel !== channel) return;
      this.#channel = undefined;
      this.#consumerTag = undefined;
      this.#scheduleReattach();
    });
    try {
      await channel.prefetch(this.#deps.options.prefetch);
      const { consumerTag } = await channel.consume(queue, (message) => this.#onDelivery(channel, message));
      this.#channel = channel;
      this.#channelModel = model;
      this.#consumerTag = consumerTag;
      this.#reattachDelayMs = 1000;
    } catch (err) {
      await channel.close().catch(() => {});
      throw new MqError('MQ_CONSUME_FAILED', `cannot consume ${queue}: ${(err as Error).message}`);
    }
  }

  /**
   * The broker closed our channel (or cancelled the consumer) while the connection may still be up: try again later.
   * After a connection loss the client's reconnect attaches the consumer and this timer finds nothing to do.
   */
  #scheduleReattach(): void {
    if (this.#draining || this.#reattachTimer) return;
    const delay = this.#reattachDelayMs;
    this.#reattachDelayMs = Math.min(this.#reattachDelayMs * 2, 30_000);
    this.#reattachTimer = setTimeout(() => {
      this.#reattachTimer = undefined;
      const model = this.#deps.currentModel();
      if (this.#draining || this.#channel || !model) return;
      this.attach(model).catch((err: Error) => {
        this.#log.warn({ code: 'MQ_CONSUME_FAILED', err: err.message }, 'consumer restart failed; trying again');
        this.#scheduleReattach();
      });
    }, delay);
    this.#reattachTimer.unref();
  }

  #onDelivery(channel: Channel, message: ConsumeMessage | null): void {
    if (message === null) {
      // basic.cancel from the broker (the queue was deleted, say): drop this channel and start again later.
      this.#log.warn({ code: 'MQ_CONSUMER_CANCELLED' }, 'the broker cancelled the consumer');
      channel.close().catch(() => {});
      return;
    }
    const work: Promise<void> = this.#settle(channel, message).finally(() => this.#inFlight.delete(work));
    this.#inFlight.add(work);
  }

  async #settle(channel: Channel, message: ConsumeMessage): Promise<void> {
    let verdict: Verdict;
    try {
      verdict = await this.#handle(message);
    } catch (err) {
      this.#log.error(
        { code: 'MQ_CONSUME_FAILED', amqpMessageId: message.properties.messageId, err },
        'unexpected error while handling a delivery; requeued',
      );
      verdict = 'requeue';
    }
    try {
      if (verdict === 'ack') channel.ack(message);
      else channel.nack(message, false, true);
    } catch {
      // The channel is gone: the broker already put the message back and delivers it again.
    }
  }

  /** Decides ack or requeue for one delivery; everything it publishes is confirmed before it returns 'ack'. */
  async #handle(message: ConsumeMessage): Promise<Verdict> {
    const { stage, options } = this.#deps;
    const incoming = message.properties.headers?.[HEADERS.traceparent];
    const decoded = decodeEnvelope(message.content);
    if (!decoded.ok) {
      return this.#parkUndecodable(message, typeof incoming === 'string' ? incoming : undefined, decoded.error);
    }
    const envelope = decoded.envelope;
    // Keep the trace context of what we received on everything we publish for it.
    const traceparent =
      traceIdFromTraceparent(incoming) !== undefined ? (incoming as string) : traceparentFor(envelope.traceId);
    const log = messageLogger(this.#log, envelope);

    let plan: Plan;
    if (envelope.itinerary[0] !== stage) {
      const head = envelope.itinerary[0] ?? 'nothing';
      plan = { kind: 'park', envelope, code: PARK_CODES.envelopeMisrouted, reason: `itinerary starts with ${head}` };
    } else {
      const outcome = await this.#runHandler(envelope, log, message.fields.redelivered === true);
      plan = planOutcome(stage, envelope, outcome, options.retryLadder);
    }

    let messages: OutgoingMessage[];
    try {
      messages = this.#messagesFor(plan, traceparent);
    } catch (err) {
      if (!(err instanceof InvalidEnvelopeError)) throw err;
      plan = { kind: 'park', envelope, code: PARK_CODES.outcomeInvalid, reason: err.message };
      messages = this.#messagesFor(plan, traceparent);
    }

    try {
      if (plan.kind === 'park') await options.onParked?.(plan.envelope, plan.code, plan.reason);
      await Promise.all(messages.map((m) => this.#deps.publish(m)));
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      log.error(
        { code: typeof code === 'string' ? code : 'MQ_FOLLOW_UP_FAILED', err: (err as Error).message },
        'could not finish the outcome; the envelope goes back to the queue',
      );
      return 'requeue';
    }
    this.#logPlan(log, plan, envelope);
    return 'ack';
  }

  async #runHandler(envelope: Envelope, log: Logger, redelivered: boolean): Promise<Outcome> {
    const { handler, options } = this.#deps;
    try {
      return await handler(envelope, {
        attempt: envelope.attempt,
        lastAttempt: isLastAttempt(envelope.attempt, options.retryLadder),
        redelivered,
        log,
        signal: this.#abort.signal,
      });
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      log.warn({ code: HANDLER_FAILED, err }, 'handler failed; treated as a retry');
      return retry(HANDLER_FAILED, reason);
    }
  }

  /** Encodes (and so validates) everything a plan publishes; throws InvalidEnvelopeError for a bad envelope. */
  #messagesFor(plan: Plan, traceparent: string): OutgoingMessage[] {
    if (plan.kind === 'park') {
      return [
        {
          routingKey: parkedQueue(this.#deps.stage),
          content: encodeEnvelope(plan.envelope),
          messageId: publishToken(plan.envelope.id),
          headers: parkHeaders(plan.code, plan.reason, traceparent),
        },
      ];
    }
    return plan.publications.map(({ routingKey, envelope }) => ({
      routingKey,
      content: encodeEnvelope(envelope),
      messageId: publishToken(envelope.id),
      headers: { [HEADERS.traceparent]: traceparent },
    }));
  }

  /** Not an envelope: park the bytes as they came, say why, ack once the park is confirmed; never crash. */
  async #parkUndecodable(message: ConsumeMessage, traceparent: string | undefined, error: string): Promise<Verdict> {
    const { stage, options } = this.#deps;
    const code = PARK_CODES.envelopeInvalid;
    const originalId = typeof message.properties.messageId === 'string' ? message.properties.messageId : 'invalid';
    const log = this.#log.child({ amqpMessageId: originalId });
    try {
      await options.onParked?.(undefined, code, error);
      await this.#deps.publish({
        routingKey: parkedQueue(stage),
        content: message.content,
        messageId: publishToken(originalId),
        headers: parkHeaders(code, error, traceparent),
        contentType: typeof message.properties.contentType === 'string' ? message.properties.contentType : undefined,
      });
    } catch (err) {
      log.error({ code: 'MQ_FOLLOW_UP_FAILED', err: (err as Error).message }, 'could not park an invalid envelope');
      return 'requeue';
    }
    log.warn({ code, reason: error }, 'invalid envelope parked');
    return 'ack';
  }

  #logPlan(log: Logger, plan: Plan, envelope: Envelope): void {
    if (plan.kind === 'park') {
      log.warn({ code: plan.code, reason: plan.reason, attempt: envelope.attempt }, 'envelope parked');
    } else if (plan.publications.length === 0) {
      log.debug('envelope finished its itinerary');
    } else {
      log.debug({ to: plan.publications.map((p) => p.routingKey) }, 'envelope passed on');
    }
  }

  drain(): Promise<void> {
    this.#draining ??= this.#drain();
    return this.#draining;
  }

  async #drain(): Promise<void> {
    this.#abort.abort();
    clearTimeout(this.#reattachTimer);
    await this.#attachChain;
    const channel = this.#channel;
    const tag = this.#consumerTag;
    if (channel && tag) await channel.cancel(tag).catch(() => {});
    // Deliveries that arrive before cancel-ok are handled too; wait until every one is settled.
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    this.#channel = undefined;
    this.#consumerTag = undefined;
    if (channel) await channel.close().catch(() => {});
    this.#deps.onDrained(this);
  }
}

function parkHeaders(code: string, reason: string, traceparent: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {
    [HEADERS.parkCode]: code,
    [HEADERS.parkReason]: reason.length > MAX_REASON_LENGTH ? `${reason.slice(0, MAX_REASON_LENGTH)}…` : reason,
  };
  if (traceparent) headers[HEADERS.traceparent] = traceparent;
  return headers;
}
