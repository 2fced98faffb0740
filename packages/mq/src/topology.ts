// The gateway's RabbitMQ topology as data: one description used both to declare it (declareTopology) and to export
// it as a definitions file (exportDefinitions), so the two cannot drift. Every service must declare identical
// arguments: a queue re-declared with other arguments is refused with PRECONDITION_FAILED.
import { EXCHANGE, parkedQueue, retryQueue, STAGES, type Stage, workQueue } from '@smgw/envelope';
import type { Channel, ChannelModel } from 'amqplib';
import { MqError } from './errors.ts';

/** Retry delays (ms) per stage; a stage without a ladder gets no delay queues. */
export type RetryLadders = Partial<Record<Stage, number[]>>;

export type QueueArguments = Readonly<Record<string, string | number>>;

export interface QueueSpec {
  name: string;
  arguments: QueueArguments;
}

export interface Topology {
  exchange: { name: string; type: 'direct'; durable: true };
  /** Each queue is bound to the exchange with its own name as routing key. */
  queues: QueueSpec[];
}

/**
 * Deliveries of one message to a work queue's consumers that end without an ack (consumer crashed, channel lost,
 * nack with requeue) before the broker parks it. Retries through delay queues are new publishes and do not count.
 * Verified on RabbitMQ 3.10.8: with limit N a message is delivered N+1 times, then dead-lettered to the parked queue.
 */
export const DELIVERY_LIMIT = 10;

/** x-message-ttl is an unsigned 32-bit number of milliseconds (about 49 days). */
const MAX_DELAY_MS = 2 ** 32 - 1;

/** Quorum queue that parks (dead-letters at-least-once) what keeps failing; at-least-once needs reject-publish. */
export function workQueueArguments(stage: Stage): QueueArguments {
  return {
    'x-queue-type': 'quorum',
    'x-delivery-limit': DELIVERY_LIMIT,
    'x-overflow': 'reject-publish',
    'x-dead-letter-strategy': 'at-least-once',
    'x-dead-letter-exchange': EXCHANGE,
    'x-dead-letter-routing-key': parkedQueue(stage),
  };
}

/** Parked envelopes wait for an operator; nothing consumes them. */
export const PARKED_QUEUE_ARGUMENTS: QueueArguments = { 'x-queue-type': 'quorum' };

/**
 * A delay queue: nothing consumes it; each message expires after `delayMs` and is dead-lettered back to the stage's
 * work queue. Quorum (message TTL on quorum queues exists since RabbitMQ 3.10) with at-least-once dead-lettering,
 * so a waiting retry survives a broker restart and is not lost on its way back.
 */
export function retryQueueArguments(stage: Stage, delayMs: number): QueueArguments {
  return {
    'x-queue-type': 'quorum',
    'x-message-ttl': delayMs,
    'x-overflow': 'reject-publish',
    'x-dead-letter-strategy': 'at-least-once',
    'x-dead-letter-exchange': EXCHANGE,
    'x-dead-letter-routing-key': workQueue(stage),
  };
}

/** Throws MQ_INVALID_OPTIONS unless every delay is a whole number of ms a queue TTL can hold. */
export function checkLadder(stage: Stage, ladder: readonly number[]): void {
  for (const delay of ladder) {
    if (!Number.isInteger(delay) || delay <= 0 || delay > MAX_DELAY_MS) {
      throw new MqError(
        'MQ_INVALID_OPTIONS',
        `retry ladder of ${stage}: ${delay} is not a delay between 1 ms and 49 days`,
      );
    }
  }
}

/** The distinct delays of a ladder, shortest first (a ladder may repeat a delay: 12h, 12h, ...). */
export function distinctDelays(ladder: readonly number[]): number[] {
  return [...new Set(ladder)].sort((a, b) => a - b);
}

/** Union of two sets of ladders per stage (several declareTopology calls add up). */
export function mergeLadders(a: RetryLadders, b: RetryLadders): RetryLadders {
  const merged: RetryLadders = {};
  for (const stage of STAGES) {
    const delays = [...(a[stage] ?? []), ...(b[stage] ?? [])];
    if (delays.length > 0) merged[stage] = distinctDelays(delays);
  }
  return merged;
}

/** True when every delay of `ladder` has its delay queue in `ladders`. */
export function laddersInclude(ladders: RetryLadders, stage: Stage, ladder: readonly number[]): boolean {
  const declared = new Set(ladders[stage] ?? []);
  return ladder.every((delay) => declared.has(delay));
}

/** The whole topology: exchange; per stage its work and parked queue; per (stage, delay) a delay queue. */
export function topologyFor(ladders: RetryLadders): Topology {
  const queues: QueueSpec[] = [];
  for (const stage of STAGES) {
    queues.push({ name: workQueue(stage), arguments: workQueueArguments(stage) });
    queues.push({ name: parkedQueue(stage), arguments: PARKED_QUEUE_ARGUMENTS });
    const ladder = ladders[stage] ?? [];
    checkLadder(stage, ladder);
    for (const delay of distinctDelays(ladder)) {
      queues.push({ name: retryQueue(stage, delay), arguments: retryQueueArguments(stage, delay) });
    }
  }
  return { exchange: { name: EXCHANGE, type: 'direct', durable: true }, queues };
}

/** Declares the topology on a channel (idempotent). Throws the broker's error; the channel is then closed. */
export async function declareTopologyOn(channel: Channel, topology: Topology): Promise<void> {
  await channel.assertExchange(topology.exchange.name, topology.exchange.type, { durable: topology.exchange.durable });
  for (const queue of topology.queues) {
    // Raw `arguments` only (no amqplib option mapping), so exportDefinitions writes exactly what is declared here.
    await channel.assertQueue(queue.name, { durable: true, arguments: { ...queue.arguments } });
    await channel.bindQueue(queue.name, topology.exchange.name, queue.name);
  }
}

/** Declares the topology on a short-lived channel of its own (a refused declaration closes the channel it ran on). */
export async function declareTopology(model: ChannelModel, ladders: RetryLadders): Promise<void> {
  const topology = topologyFor(ladders);
  let channel: Channel;
  try {
    channel = await model.createChannel();
  } catch (err) {
    throw new MqError('MQ_NOT_CONNECTED', `cannot open a channel to declare the topology: ${(err as Error).message}`);
  }
  channel.on('error', () => {}); // the failing call rejects with the same error
  try {
    await declareTopologyOn(channel, topology);
  } catch (err) {
    throw new MqError('MQ_TOPOLOGY_FAILED', `declaring the topology failed: ${(err as Error).message}`);
  } finally {
    await channel.close().catch(() => {});
  }
}
