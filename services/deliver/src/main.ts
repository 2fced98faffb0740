// deliver: consumes smgw.deliver and hands each recipient's copy to the next hop. Wiring only.
import { loadConfigOrExit } from '@smgw/config';
import { createLogger } from '@smgw/observability';
import { deliverSpec } from './config.ts';
import { startDeliver } from './service.ts';

const config = loadConfigOrExit('deliver', deliverSpec);
const log = createLogger('deliver', config.logLevel);

let deliver: Awaited<ReturnType<typeof startDeliver>>;
try {
  deliver = await startDeliver(config, log);
} catch (err) {
  log.fatal({ err, code: 'DELIVER_START_FAILED' }, 'deliver could not start');
  process.exit(1);
}

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'stopping: draining in-flight envelopes');
  try {
    await deliver.stop();
    process.exit(0);
  } catch (err) {
    log.error({ err, code: 'DELIVER_STOP_FAILED' }, 'deliver did not stop cleanly');
    process.exit(1);
  }
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
