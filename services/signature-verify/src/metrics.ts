// signature-verify's metrics: the stage metrics every consumer has (smgw_verify_*), results by worst indication,
// the trusted lists in use.
import { Counter, Gauge, type Registry, stageMetrics } from '@smgw/observability';

export function verifyMetrics(registry: Registry) {
  return {
    ...stageMetrics(registry, 'verify'),
    results: new Counter({
      name: 'smgw_verify_results_total',
      help: 'Messages verified, by worst indication (TOTAL_PASSED, INDETERMINATE, TOTAL_FAILED, NONE)',
      labelNames: ['indication'] as const,
      registers: [registry],
    }),
    trustedLists: new Gauge({
      name: 'smgw_verify_trusted_lists',
      help: 'Trusted lists loaded at start (0: no signature is called qualified)',
      registers: [registry],
    }),
  };
}
export type VerifyMetrics = ReturnType<typeof verifyMetrics>;
