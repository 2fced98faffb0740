import type { Logger } from './logger.ts';

/**
 * The life of a service process after its settings are loaded: start it (a failure is logged as
 * `<NAME>_START_FAILED` and exits 1), then on SIGTERM or SIGINT stop it once (drain in-flight work, close clients)
 * and exit 0, or 1 with `<NAME>_STOP_FAILED` if stopping failed. Kubernetes scales replicas down with SIGTERM.
 */
export async function runService(
  name: string,
  log: Logger,
  start: () => Promise<{ stop(): Promise<void> }>,
  stoppingMessage = 'stopping: draining in-flight work',
): Promise<void> {
  const code = name.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
  let running: { stop(): Promise<void> };
  try {
    running = await start();
  } catch (err) {
    log.fatal({ err, code: (err as { code?: string }).code ?? `${code}_START_FAILED` }, `${name} could not start`);
    process.exit(1);
  }
  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, stoppingMessage);
    try {
      await running.stop();
      process.exit(0);
    } catch (err) {
      log.error({ err, code: `${code}_STOP_FAILED` }, `${name} did not stop cleanly`);
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}
