// Admin API for operators (SPEC.md "Admin API"). Wiring only.
import { loadConfigOrExit } from '@smgw/config';
import { createLogger } from '@smgw/observability';
import { adminSettings } from './config.ts';
import { startAdmin } from './service.ts';

const config = loadConfigOrExit('admin', adminSettings);
const log = createLogger('admin', config.logLevel);
const admin = await startAdmin(config, log);
log.info({ port: admin.port }, 'admin API ready');

async function shutdown(signal: string) {
  log.info({ signal }, 'admin stopping');
  await admin.stop();
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
