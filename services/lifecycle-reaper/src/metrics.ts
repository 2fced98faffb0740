// The reaper's metrics: how long each sweep takes, when it last succeeded (an alert fires when that grows old), how
// many things it removed; inactivity warnings and deletions; quota bytes given back to portal mailboxes; parked
// envelopes waiting for an operator.
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
      help: 'Things removed or done (quarantine entries, blobs, tokens, KEKs, warnings, mailboxes, traces), by sweep',
      labelNames: ['sweep'] as const,
      registers: [registry],
    }),
    warnings: new Counter({
      name: 'smgw_reaper_inactivity_warnings_total',
      help: 'Inactivity warnings sent to portal mailboxes, by kind (first, second)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    mailboxesDeleted: new Counter({
      name: 'smgw_reaper_mailboxes_deleted_total',
      help: 'Portal mailboxes deleted for good after their inactivity warnings',
      registers: [registry],
    }),
    reclaimedBytes: new Counter({
      name: 'smgw_reaper_reclaimed_bytes_total',
      help: 'Message bytes removed, by sweep (mailbox-deletions: the raw sizes of the deleted mailboxes)',
      labelNames: ['sweep'] as const,
      registers: [registry],
    }),
    releasedReservationBytes: new Counter({
      name: 'smgw_reaper_released_reservation_bytes_total',
      help: 'Quota bytes given back to portal mailboxes: reserved for a Sent copy that was never stored',
      registers: [registry],
    }),
    parkedEnvelopes: new Gauge({
      name: 'smgw_reaper_parked_envelopes',
      help: 'Envelopes parked and not replayed (by the trace), at the last parked sweep',
      registers: [registry],
    }),
    parkedOldestSeconds: new Gauge({
      name: 'smgw_reaper_parked_oldest_age_seconds',
      help: 'Age of the oldest parked envelope at the last parked sweep (0 when there is none)',
      registers: [registry],
    }),
  };
}
export type ReaperMetrics = ReturnType<typeof reaperMetrics>;
