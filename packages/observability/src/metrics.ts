import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export { Counter, Gauge, Histogram, Registry };

const EVENT_LOOP_SAMPLE_MS = 100;

/** A registry with the process metrics (RSS, event loop lag, GC) and a `service` label on everything. */
export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  // The event loop is sampled every 100 ms, not prom-client's 10 ms: a timer 100 times a second cost each idle
  // process about 1 % of a core here (issue 12), and a stall long enough to matter still overlaps a sample.
  collectDefaultMetrics({ register: registry, prefix: 'smgw_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  return registry;
}

/** The metrics every queue-consuming stage exports (smgw_<stage>_...). */
export function stageMetrics(registry: Registry, stage: string) {
  return {
    processed: new Counter({
      name: `smgw_${stage}_envelopes_total`,
      help: `Envelopes handled by ${stage}, by outcome`,
      labelNames: ['outcome'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: `smgw_${stage}_duration_seconds`,
      help: `Time ${stage} spent on one envelope`,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: `smgw_${stage}_in_flight`,
      help: `Envelopes ${stage} is working on now`,
      registers: [registry],
    }),
    // How long messages wait before this stage takes them (queue, retries, earlier stages): the "queue age" and
    // "deferred for hours" alerts read it (deploy/prometheus/smgw-alerts.yml).
    age: new Histogram({
      name: `smgw_${stage}_envelope_age_seconds`,
      help: `Time since ingest accepted the message, when ${stage} takes its envelope (each try counts)`,
      buckets: [1, 10, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 3 * 24 * 3600],
      registers: [registry],
    }),
  };
}
export type StageMetrics = ReturnType<typeof stageMetrics>;
