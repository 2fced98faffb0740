// scan: consumes smgw.scan, streams each message to clamd, passes clean ones on and quarantines the rest. Wiring only.
import { loadConfigOrExit } from '@smgw/config';
import { createLogger } from '@smgw/observability';
import { scanSpec } from './config.ts';
import { startScan } from './service.ts';

const config = loadConfigOrExit('scan', scanSpec);
const log = createLogger('scan', config.logLevel);

let scan: Awaited<ReturnType<typeof startScan>>;
try {
  scan = await startScan(config, log);
} catch (err) {
  log.fatal({ err, code: 'SCAN_START_FAILED' }, 'scan could not start');
  process.exit(1);
}

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'stopping: draining in-flight envelopes');
  try {
    await scan.stop();
    process.exit(0);
  } catch (err) {
    log.error({ err, code: 'SCAN_STOP_FAILED' }, 'scan did not stop cleanly');
    process.exit(1);
  }
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
