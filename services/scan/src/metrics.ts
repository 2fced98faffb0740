// scan's metrics: the stage metrics every consumer has, clamd errors by code, findings by verdict and category.
import { Counter, Gauge, type Registry, stageMetrics } from '@smgw/observability';

export function scanMetrics(registry: Registry) {
  return {
    ...stageMetrics(registry, 'scan'),
    clamdErrors: new Counter({
      name: 'smgw_scan_clamd_errors_total',
      help: 'Scans that got no verdict from clamd (the envelope retries), by code',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    findings: new Counter({
      name: 'smgw_scan_findings_total',
      help: 'clamd findings, by verdict (infected, suspicious) and category',
      labelNames: ['verdict', 'category'] as const,
      registers: [registry],
    }),
    clamdUp: new Gauge({
      name: 'smgw_scan_clamd_up',
      help: '1 while clamd answers PING, else 0',
      registers: [registry],
    }),
  };
}
export type ScanMetrics = ReturnType<typeof scanMetrics>;
