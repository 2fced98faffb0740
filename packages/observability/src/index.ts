// Logs, metrics and health for every service: pino JSON logs that carry the message id and trace id,
// Prometheus /metrics, /healthz (alive) and /readyz (dependencies reachable).

export * from './health-server.ts';
export * from './logger.ts';
export * from './metrics.ts';
export * from './run-service.ts';
