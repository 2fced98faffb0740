// lifecycle-reaper: runs the expiry, retention and garbage-collection sweeps on a timer, each under a lock so that
// extra replicas are safe but idle. Wiring only.
import { createLogger, runService } from '@smgw/observability';
import { loadReaperConfigOrExit } from './config.ts';
import { startReaper } from './service.ts';

const config = loadReaperConfigOrExit();
const log = createLogger('lifecycle-reaper', config.logLevel);
await runService('lifecycle-reaper', log, () => startReaper(config, log), 'stopping: finishing the running sweep');
