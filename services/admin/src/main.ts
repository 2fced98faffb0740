// Admin API for operators (SPEC.md "Admin API"). Wiring only.
import { loadConfigOrExit } from '@smgw/config';
import { createLogger, runService } from '@smgw/observability';
import { adminSettings } from './config.ts';
import { startAdmin } from './service.ts';

const config = loadConfigOrExit('admin', adminSettings);
const log = createLogger('admin', config.logLevel);
await runService(
  'admin',
  log,
  async () => {
    const admin = await startAdmin(config, log);
    log.info({ port: admin.port }, 'admin API ready');
    return admin;
  },
  'admin stopping',
);
