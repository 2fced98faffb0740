// The ingest service: SMTP inbound (MX) and submission listeners. Wiring only; see README.md.
import { loadConfigOrExit } from '@smgw/config';
import { createLogger } from '@smgw/observability';
import { ingestSpec } from './config.ts';
import { startIngest } from './service.ts';

const config = loadConfigOrExit('ingest', ingestSpec);
const log = createLogger('ingest', config.logLevel);

let ingest: Awaited<ReturnType<typeof startIngest>>;
try {
  ingest = await startIngest(config, log);
} catch (err) {
  log.fatal({ code: (err as { code?: string }).code ?? 'START_FAILED', err }, 'ingest cannot start');
  process.exit(1);
}

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: no new connections, letting messages in DATA finish');
    ingest.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ code: 'STOP_FAILED', err }, 'ingest did not stop cleanly');
        process.exit(1);
      },
    );
  });
}
