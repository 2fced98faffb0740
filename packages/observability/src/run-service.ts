import { setFlagsFromString } from 'node:v8';
import type { Logger } from './logger.ts';

/**
 * V8 counts the memory of Buffers (ArrayBuffers) in the limit that starts a collection, instead of answering each
 * 64 MB of new Buffers with a full mark-compact of the heap. A service streams every message through short-lived
 * Buffers, so by default it ran a mark-compact every few dozen 100 KB messages: its V8 worker threads spent a third
 * of ingest's CPU marking a heap that had hardly changed. Counted this way, young Buffers go with a scavenge, and the
 * heap and the Buffers together still bound the process's memory (issue 12: whole stack 10.2 → 8.8 ms per 100 KB
 * message). A V8 that does not know the flag says so on standard error and goes on (a newer one may have it on already).
 */
export function countBuffersInHeapLimit(): void {
  setFlagsFromString('--external-memory-accounted-in-global-limit');
}

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
  countBuffersInHeapLimit();
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
