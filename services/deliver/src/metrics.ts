// deliver's metrics: the stage metrics every consumer has, per-recipient results and the transport pool.
import { Counter, Gauge, type Registry, stageMetrics } from '@smgw/observability';

export function deliverMetrics(registry: Registry, openTransports: () => number) {
  return {
    ...stageMetrics(registry, 'deliver'),
    recipients: new Counter({
      name: 'smgw_deliver_recipients_total',
      help: 'Recipients handled by deliver, by result (delivered, deferred, bounced)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    notTried: new Counter({
      name: 'smgw_deliver_not_tried_total',
      help: 'Recipients deferred without a connection: their MX busy (destination-busy) or suspended after no answer (destination-suspended)',
      labelNames: ['category'] as const,
      registers: [registry],
    }),
    transports: new Gauge({
      name: 'smgw_deliver_transports',
      help: 'Pooled SMTP transports open, one per destination',
      registers: [registry],
      collect() {
        this.set(openTransports());
      },
    }),
  };
}
export type DeliverMetrics = ReturnType<typeof deliverMetrics>;
