// The connection: amqplib's built-in recovery (opt-in) reconnects with backoff and runs `setup` on every new
// connection, where we open the publish channel, re-declare the topology and restart the consumers.
import { type Envelope, encodeEnvelope, HEADERS, type Stage, traceparentFor, workQueue } from '@smgw/envelope';
import { type ChannelModel, connect } from 'amqplib';
import { AmqpStageConsumer } from './consume.ts';
import { MqError, PublishError } from './errors.ts';
import { type ConfirmedPublisher, type OutgoingMessage, openPublisher, publishToken } from './publish.ts';
import {
  checkLadder,
  declareTopology,
  laddersInclude,
  mergeLadders,
  type RetryLadders,
  topologyFor,
} from './topology.ts';
import type { ConsumeOptions, Handler, Mq, MqOptions, StageConsumer } from './types.ts';

/** One live connection and what hangs off it. */
interface Session {
  model: ChannelModel;
  publisher: ConfirmedPublisher;
  /** A new publish channel being opened after the broker closed the last one. */
  reopening: Promise<ConfirmedPublisher> | undefined;
  /** The topology was declared on this connection. */
  declared: boolean;
}

export async function connectMq(options: MqOptions): Promise<Mq> {
  const log = options.logger.child({ component: 'mq' });
  let session: Session | undefined;
  /** Ladders of every declareTopology call so far: re-declared after each reconnect. */
  let ladders: RetryLadders | undefined;
  /** Why the broker blocked this connection (resource alarm), while it does. */
  let blocked: string | undefined;
  let closing: Promise<void> | undefined;
  let connectedOnce = false;
  const consumers = new Set<AmqpStageConsumer>();
  const pendingPublishes = new Set<Promise<void>>();

  async function setup(model: ChannelModel): Promise<void> {
    // recovery binds its own listeners only after setup; an 'error' without a listener would throw
    model.on('error', () => {});
    const publisher = await openPublisher(model, log, options.publishBufferSize);
    let declared = false;
    if (ladders) {
      await declareTopology(model, ladders);
      declared = true;
    }
    for (const consumer of consumers) await consumer.attach(model);
    blocked = undefined;
    session = { model, publisher, reopening: undefined, declared };
  }

  const reconnect = options.reconnect ?? {};
  const connection = await connect(options.url, {
    clientProperties: { connection_name: options.connectionName },
    recovery: {
      initialDelay: reconnect.initialDelayMs ?? 100,
      maxDelay: reconnect.maxDelayMs ?? 30_000,
      initialMaxRetries: reconnect.initialRetries ?? 8,
      maxRetries: Infinity,
      waitForConnect: false,
      setup,
    },
  });
  connection.on('connect', () => {
    if (connectedOnce) log.info({ code: 'MQ_RECONNECTED' }, 'reconnected to RabbitMQ');
    connectedOnce = true;
  });
  connection.on('disconnect', (err: Error) => {
    session = undefined;
    log.warn({ code: 'MQ_CONNECTION_LOST', err: err.message }, 'lost the connection to RabbitMQ; reconnecting');
  });
  connection.on('connect-failed', (err: Error) => {
    log.warn({ code: 'MQ_CONNECT_FAILED', err: err.message }, 'connecting to RabbitMQ failed');
  });
  connection.on('reconnect-failed', (err: Error) => {
    log.error({ code: 'MQ_CONNECT_FAILED', err: err.message }, 'gave up connecting to RabbitMQ');
  });
  connection.on('blocked', (reason: string) => {
    blocked = reason;
    log.warn({ code: 'MQ_CONNECTION_BLOCKED', reason }, 'RabbitMQ blocked publishing on this connection');
  });
  connection.on('unblocked', () => {
    blocked = undefined;
    log.info({ code: 'MQ_CONNECTION_UNBLOCKED' }, 'RabbitMQ unblocked this connection');
  });
  connection.on('error', (err: Error) => {
    log.warn({ code: 'MQ_CONNECTION_ERROR', err: err.message }, 'RabbitMQ connection error');
  });
  try {
    await connection.waitForConnect();
  } catch (err) {
    throw new MqError('MQ_CONNECT_FAILED', `cannot connect to RabbitMQ: ${(err as Error).message}`);
  }

  /** The live publish channel; a new one if the broker closed the last while the connection stayed up. */
  async function currentPublisher(): Promise<ConfirmedPublisher> {
    const live = session;
    if (!live) throw new PublishError('MQ_NOT_CONNECTED', 'not connected to RabbitMQ');
    if (!live.publisher.closed) return live.publisher;
    live.reopening ??= openPublisher(live.model, log, options.publishBufferSize).then(
      (publisher) => {
        live.publisher = publisher;
        live.reopening = undefined;
        return publisher;
      },
      (err: Error) => {
        live.reopening = undefined;
        throw new PublishError('MQ_NOT_CONNECTED', `cannot open a publish channel: ${err.message}`);
      },
    );
    return live.reopening;
  }

  /** Every publish, from outside or from a consumer's outcome, goes through here: confirmed, and tracked for close. */
  function publishConfirmed(message: OutgoingMessage): Promise<void> {
    const publishing = currentPublisher().then((publisher) => publisher.publish(message));
    pendingPublishes.add(publishing);
    const forget = () => pendingPublishes.delete(publishing);
    publishing.then(forget, forget);
    return publishing;
  }

  const mq: Mq = {
    async declareTopology(more: RetryLadders): Promise<void> {
      const merged = mergeLadders(ladders ?? {}, more);
      topologyFor(merged); // throws MQ_INVALID_OPTIONS for a bad delay before anything is remembered
      ladders = merged;
      const live = session;
      if (!live) throw new MqError('MQ_NOT_CONNECTED', 'not connected to RabbitMQ; declared again on reconnect');
      await declareTopology(live.model, merged);
      live.declared = true;
    },

    async publish(envelope: Envelope): Promise<void> {
      const stage = envelope.itinerary[0];
      if (!stage) throw new MqError('MQ_EMPTY_ITINERARY', `envelope ${envelope.id} has no stage left to go to`);
      const content = encodeEnvelope(envelope);
      if (closing) throw new PublishError('MQ_NOT_CONNECTED', 'the RabbitMQ client is closed');
      // Fail fast (ingest answers 451) rather than wait for a resource alarm to clear.
      if (blocked) throw new PublishError('MQ_NOT_CONNECTED', `RabbitMQ blocked publishing: ${blocked}`);
      await publishConfirmed({
        routingKey: workQueue(stage),
        content,
        messageId: publishToken(envelope.id),
        headers: { [HEADERS.traceparent]: traceparentFor(envelope.traceId) },
      });
    },

    async consume(stage: Stage, handler: Handler, consumeOptions: ConsumeOptions): Promise<StageConsumer> {
      if (closing) throw new MqError('MQ_NOT_CONNECTED', 'the RabbitMQ client is closed');
      const { prefetch, retryLadder } = consumeOptions;
      if (!Number.isInteger(prefetch) || prefetch < 1 || prefetch > 65_535) {
        throw new MqError('MQ_INVALID_OPTIONS', `prefetch of ${stage} must be a whole number from 1 to 65535`);
      }
      checkLadder(stage, retryLadder);
      if (!ladders || !laddersInclude(ladders, stage, retryLadder)) {
        throw new MqError(
          'MQ_LADDER_NOT_DECLARED',
          `declareTopology() must declare ${stage}'s retry ladder before consume() uses it`,
        );
      }
      const consumer = new AmqpStageConsumer({
        stage,
        handler,
        options: { ...consumeOptions, retryLadder: [...retryLadder] },
        logger: log,
        publish: publishConfirmed,
        currentModel: () => session?.model,
        onDrained: (drained) => consumers.delete(drained),
      });
      const live = session;
      if (!live) throw new MqError('MQ_NOT_CONNECTED', 'not connected to RabbitMQ');
      consumers.add(consumer); // before attaching: a reconnect meanwhile attaches it too
      try {
        await consumer.attach(live.model);
      } catch (err) {
        consumers.delete(consumer);
        throw err;
      }
      return consumer;
    },

    isReady(): boolean {
      return !closing && session !== undefined && session.declared && blocked === undefined;
    },

    close(): Promise<void> {
      closing ??= (async () => {
        await Promise.all([...consumers].map((consumer) => consumer.drain()));
        await Promise.allSettled([...pendingPublishes]);
        await session?.publisher.close();
        session = undefined;
        await connection.close();
      })();
      return closing;
    },
  };
  return mq;
}
