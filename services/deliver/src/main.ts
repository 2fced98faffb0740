// deliver: consumes smgw.deliver and hands each recipient's copy to the next hop. Wiring only.
import { dkimSigningOf, exitOnConfigError, loadConfigOrExit } from '@smgw/config';
import { createLogger, runService } from '@smgw/observability';
import { deliverSpec } from './config.ts';
import { startDeliver } from './service.ts';

const config = loadConfigOrExit('deliver', deliverSpec);
exitOnConfigError('deliver', () => dkimSigningOf(config));
const log = createLogger('deliver', config.logLevel);
await runService('deliver', log, () => startDeliver(config, log), 'stopping: draining in-flight envelopes');
