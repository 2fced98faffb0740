// encrypt: consumes smgw.encrypt; encrypts outbound mail per recipient and decrypts inbound mail for agencies. Wiring only.
import { loadConfigOrExit } from '@smgw/config';
import { createLogger, runService } from '@smgw/observability';
import { encryptSpec } from './config.ts';
import { startEncrypt } from './service.ts';

const config = loadConfigOrExit('encrypt', encryptSpec);
const log = createLogger('encrypt', config.logLevel);
await runService('encrypt', log, () => startEncrypt(config, log), 'stopping: draining in-flight envelopes');
