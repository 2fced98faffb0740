// signature-verify: consumes smgw.verify, verifies the signatures of mail to agency addresses enabled for it and
// passes it on with a PDF and an ETSI XML report and the X-SMGW-Signature summary. Wiring only.
import { exitOnConfigError, loadConfigOrExit } from '@smgw/config';
import { createLogger, runService } from '@smgw/observability';
import { parseTrustedListConfig } from '@smgw/trusted-list';
import { verifySpec } from './config.ts';
import { startVerify } from './service.ts';

const config = loadConfigOrExit('signature-verify', verifySpec);
const trustedLists = exitOnConfigError('signature-verify', () => parseTrustedListConfig(process.env));
const log = createLogger('signature-verify', config.logLevel);
await runService(
  'signature-verify',
  log,
  () => startVerify(config, trustedLists, log),
  'stopping: draining in-flight envelopes',
);
