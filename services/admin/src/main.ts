// Admin API for operators (SPEC.md "Admin API"). Wiring only.
import { loadConfigOrExit } from '@smgw/config';
import { createLogger } from '@smgw/observability';
import { adminSettings } from './config.ts';
import { type RunningAdmin, startAdmin } from './service.ts';

const config = loadConfigOrExit('admin', adminSettings);
const log = createLogger('admin', config.logLevel);

let admin: RunningAdmin;
try {
  admin = await startAdmin(config, log);
} catch (err) {
  log.fatal({ err, code: 'ADMIN_START_FAILED' }, 'admin could not start');
  process.exit(1);
}
log.info({ port: admin.port }, 'admin API ready');

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'admin stopping');
  try {
    await admin.stop();
    process.exit(0);
  } catch (err) {
    log.error({ err, code: 'ADMIN_STOP_FAILED' }, 'admin did not stop cleanly');
    process.exit(1);
  }
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
