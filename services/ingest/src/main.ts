// The ingest service: SMTP inbound (MX) and submission listeners. Wiring only; see README.md.
import { exitOnConfigError, loadConfigOrExit } from '@smgw/config';
import { createLogger, runService } from '@smgw/observability';
import { checkSubmissionByteLimits, ingestSpec } from './config.ts';
import { startIngest } from './service.ts';

const config = loadConfigOrExit('ingest', ingestSpec);
exitOnConfigError('ingest', () => checkSubmissionByteLimits(config));
const log = createLogger('ingest', config.logLevel);
await runService(
  'ingest',
  log,
  () => startIngest(config, log),
  'stopping: no new connections, letting messages in DATA finish',
);
