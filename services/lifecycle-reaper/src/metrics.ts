// The reaper's metrics: how long each sweep takes, when it last succeeded (an alert fires when that grows old), and
// how many things it removed.
import { Counter, Gauge, Histogram, type Registry } from '@smgw/observability';

export function reaperMetrics(registry: Registry) {
  return {
    sweepSeconds: new Histogram({
      name: 'smgw_reaper_sweep_seconds',
      help: 'Duration of one sweep that held its lock, by sweep',
      labelNames: ['sweep'] as const,
      buckets: [0.01, 0.05, 0.25, 1, 5, 30, 120, 600],
      registers: [registry],
    }),
    lastSuccess: new Gauge({
      name: 'smgw_reaper_last_success_timestamp_seconds',
      help: 'Unix time of the last sweep of this replica that completed, by sweep (take the max over replicas)',
      labelNames: ['sweep'] as const,
      registers: [registry],
    }),
    items: new Counter({
      name: 'smgw_reaper_items_total',
      help: 'Things removed (quarantine entries, blobs, tokens, KEKs), by sweep',
      labelNames: ['sweep'] as const,
      registers: [registry],
    }),
  };
}
export type ReaperMetrics = ReturnType<typeof reaperMetrics>;
