// The topology as a RabbitMQ definitions file (management "import definitions", or load_definitions at boot),
// built from the same description declareTopology uses.
import { type RetryLadders, topologyFor } from './topology.ts';

export interface RabbitDefinitions {
  exchanges: {
    name: string;
    vhost: string;
    type: string;
    durable: boolean;
    auto_delete: boolean;
    internal: boolean;
    arguments: Record<string, never>;
  }[];
  queues: {
    name: string;
    vhost: string;
    durable: boolean;
    auto_delete: boolean;
    arguments: Record<string, string | number>;
  }[];
  bindings: {
    source: string;
    vhost: string;
    destination: string;
    destination_type: 'queue';
    routing_key: string;
    arguments: Record<string, never>;
  }[];
}

/** Exchanges, queues (with their arguments) and bindings of the topology, for `vhost` ("/" by default). */
export function exportDefinitions(ladders: RetryLadders, vhost = '/'): RabbitDefinitions {
  const topology = topologyFor(ladders);
  const { exchange } = topology;
  return {
    exchanges: [
      {
        name: exchange.name,
        vhost,
        type: exchange.type,
        durable: exchange.durable,
        auto_delete: false,
        internal: false,
        arguments: {},
      },
    ],
    queues: topology.queues.map((queue) => ({
      name: queue.name,
      vhost,
      durable: true,
      auto_delete: false,
      arguments: { ...queue.arguments },
    })),
    bindings: topology.queues.map((queue) => ({
      source: exchange.name,
      vhost,
      destination: queue.name,
      destination_type: 'queue' as const,
      routing_key: queue.name,
      arguments: {},
    })),
  };
}
