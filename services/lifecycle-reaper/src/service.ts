// Starts the lifecycle reaper: database, key store, broker (for the notices), a round of sweeps now and every
// SMGW_REAPER_INTERVAL, health server. Stops in reverse order, letting a running round finish (each purge commits in
// small batches anyway).
import { createFolderKeyStore } from '@smgw/blob-store';
import { createPool, databaseReachable } from '@smgw/db';
import { connectMq } from '@smgw/mq';
import { createRegistry, type Logger, startHealthServer } from '@smgw/observability';
import type { ReaperConfig } from './config.ts';
import { reaperDeps } from './deps.ts';
import { reaperMetrics } from './metrics.ts';
import { runSweeps } from './run-sweeps.ts';

export interface RunningReaper {
  healthPort: number;
  /** Resolves when the round running now (or the first one) has finished: tests wait on it. */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

export async function startReaper(config: ReaperConfig, log: Logger): Promise<RunningReaper> {
  // One connection holds a sweep's lock, one or two do its batches.
  const pool = createPool({
    url: config.databaseUrl,
    schema: config.databaseSchema,
    applicationName: 'smgw-lifecycle-reaper',
    max: 4,
  });
  const mq = await connectMq({ url: config.amqpUrl, logger: log, connectionName: 'smgw-lifecycle-reaper' });
  await mq.declareTopology({});
  const registry = createRegistry('lifecycle-reaper');
  const deps = await reaperDeps(config, {
    pool,
    keyStore: createFolderKeyStore(config),
    publisher: mq,
    log,
    metrics: reaperMetrics(registry),
  });

  let running: Promise<void> | undefined;
  const round = () => {
    if (running) return running;
    running = runSweeps(deps, { now: new Date() })
      .then(() => {})
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const first = round();
  const timer = setInterval(round, config.reaperInterval);
  timer.unref();

  const health = await startHealthServer({
    port: config.healthPort,
    host: config.healthBind,
    registry,
    checks: { amqp: () => mq.isReady(), db: () => databaseReachable(pool) },
  });
  log.info({ healthPort: health.port, intervalMs: config.reaperInterval }, 'lifecycle-reaper started');

  return {
    healthPort: health.port,
    async idle() {
      await first;
      await running;
    },
    async stop() {
      clearInterval(timer);
      await running;
      await mq.close();
      await health.close();
      await pool.end();
      log.info('lifecycle-reaper stopped');
    },
  };
}
