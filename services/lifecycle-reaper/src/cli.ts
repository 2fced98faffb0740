// `./smgw reaper --once [--dry-run] [--as-of <ISO time>]`: every sweep once, now, printing what it did (or, with
// --dry-run, would do). --as-of acts as if it were that time (expiry and retention only, see sweeps.ts); without
// --dry-run only where SMGW_DEV_CLOCK=1 is set (development and tests), never in production.
import { parseArgs } from 'node:util';
import { createFolderKeyStore } from '@smgw/blob-store';
import { loadConfigOrExit } from '@smgw/config';
import { createPool } from '@smgw/db';
import { createLogger } from '@smgw/observability';
import { reaperSpec } from './config.ts';
import { runSweeps } from './run-sweeps.ts';

const USAGE = 'usage: ./smgw reaper --once [--dry-run] [--as-of <ISO time>]';

function fail(code: string, message: string): never {
  process.stderr.write(`${code}: ${message}\n${USAGE}\n`);
  process.exit(2);
}

let args: { once?: boolean | undefined; 'dry-run'?: boolean | undefined; 'as-of'?: string | undefined };
try {
  args = parseArgs({
    options: { once: { type: 'boolean' }, 'dry-run': { type: 'boolean' }, 'as-of': { type: 'string' } },
  }).values;
} catch (err) {
  fail('REAPER_BAD_ARGUMENTS', (err as Error).message);
}
if (!args.once) fail('REAPER_BAD_ARGUMENTS', 'only --once is supported (the service runs the sweeps on its timer)');
const dryRun = args['dry-run'] === true;
let now = new Date();
if (args['as-of'] !== undefined) {
  now = new Date(args['as-of']);
  if (Number.isNaN(now.getTime())) fail('REAPER_BAD_ARGUMENTS', `--as-of is not a time: ${args['as-of']}`);
  if (!dryRun && process.env.SMGW_DEV_CLOCK !== '1') {
    fail('REAPER_AS_OF_NEEDS_DEV_CLOCK', '--as-of without --dry-run acts only where SMGW_DEV_CLOCK=1 is set');
  }
}

const config = loadConfigOrExit('lifecycle-reaper', reaperSpec);
const log = createLogger('lifecycle-reaper', config.logLevel);
const pool = createPool({ url: config.databaseUrl, schema: config.databaseSchema, applicationName: 'smgw-reaper-cli' });
try {
  const reports = await runSweeps(
    {
      pool,
      keyStore: createFolderKeyStore(config),
      messageRetentionMs: config.messageRetention,
      kekPeriodMs: config.kekPeriod,
      log,
    },
    { now, dryRun },
  );
  const verb = dryRun ? 'would remove' : 'removed';
  process.stdout.write(`${dryRun ? 'dry run' : 'run'} as of ${now.toISOString()}\n`);
  for (const { sweep, outcome, items } of reports) {
    const what =
      outcome === 'done' ? `${verb} ${items}` : outcome === 'locked' ? 'skipped: running elsewhere' : 'FAILED';
    process.stdout.write(`${sweep.padEnd(20)}${what}\n`);
  }
  process.exitCode = reports.some((r) => r.outcome === 'failed') ? 1 : 0;
} finally {
  await pool.end();
}
