// scan: consumes smgw.scan, streams each message to clamd, passes clean ones on and quarantines the rest. Wiring only.
import { loadConfigOrExit } from '@smgw/config';
import { createLogger, runService } from '@smgw/observability';
import { scanSpec } from './config.ts';
import { startScan } from './service.ts';

const config = loadConfigOrExit('scan', scanSpec);
const log = createLogger('scan', config.logLevel);
await runService('scan', log, () => startScan(config, log), 'stopping: draining in-flight envelopes');
