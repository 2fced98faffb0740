// RabbitMQ for the gateway: topology declared idempotently, confirmed publish (persistent + mandatory, a
// basic.return counts as failure), consume with prefetch, handler outcomes turned into publish / ack / delay / park,
// retry ladders as data, drain on SIGTERM. Implementation: ./client.ts (connection, recovery), ./topology.ts,
// ./publish.ts, ./consume.ts, ./outcome.ts, ./definitions.ts (+ the export-definitions.ts CLI).
export { connectMq } from './client.ts';
export { HANDLER_FAILED, PARK_CODES } from './consume.ts';
export { exportDefinitions, type RabbitDefinitions } from './definitions.ts';
export { MqError, PublishError, surelyNotEnqueued } from './errors.ts';
export { instrumentHandler } from './instrument-handler.ts';
export { next, RETRIES_EXHAUSTED, reject, retry } from './outcome.ts';
export {
  DELIVERY_LIMIT,
  PARKED_QUEUE_ARGUMENTS,
  type RetryLadders,
  retryQueueArguments,
  topologyFor,
  workQueueArguments,
} from './topology.ts';
export type {
  ConsumeOptions,
  Consumer,
  Handler,
  HandlerContext,
  Mq,
  MqOptions,
  Outcome,
  StageConsumer,
} from './types.ts';
