// `./smgw reaper --once [--dry-run] [--as-of <ISO time>]`: every sweep once, now, printing what it did (or, with
// --dry-run, would do). --as-of acts as if it were that time (expiry and retention only, see sweeps.ts); without
// --dry-run only where SMGW_DEV_CLOCK=1 is set (development and tests), never in production.
import { parseArgs } from 'node:util';
import { createFolderKeyStore } from '@smgw/blob-store';
import { createPool } from '@smgw/db';
import { connectMq, type Mq } from '@smgw/mq';
import { createLogger } from '@smgw/observability';
import { loadReaperConfigOrExit } from './config.ts';
import { reaperDeps } from './deps.ts';
import type { Publisher } from './notices.ts';
import { runSweeps } from './run-sweeps.ts';
import { SWEEP_NAMES, SWEEP_VERBS } from './sweeps.ts';

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

const config = loadReaperConfigOrExit();
const log = createLogger('lifecycle-reaper', config.logLevel);
const pool = createPool({ url: config.databaseUrl, schema: config.databaseSchema, applicationName: 'smgw-reaper-cli' });
// A dry run publishes nothing, so it needs no broker; a run connects only when it has a notice to send.
let mq: Promise<Mq> | undefined;
const publisher: Publisher = {
  async publish(envelope) {
    mq ??= connectMq({ url: config.amqpUrl, logger: log, connectionName: 'smgw-reaper-cli' }).then(async (m) => {
      await m.declareTopology({});
      return m;
    });
    await (await mq).publish(envelope);
  },
};
try {
  const deps = await reaperDeps(config, { pool, keyStore: createFolderKeyStore(config), publisher, log });
  const reports = await runSweeps(deps, { now, dryRun });
  process.stdout.write(`${dryRun ? 'dry run' : 'run'} as of ${now.toISOString()}\n`);
  const width = Math.max(...SWEEP_NAMES.map((name) => name.length)) + 1;
  for (const { sweep, outcome, items, note } of reports) {
    const [done, would] = SWEEP_VERBS[sweep] ?? ['removed', 'would remove'];
    const what =
      outcome === 'done'
        ? `${dryRun ? would : done} ${items}${note ? ` ${note}` : ''}`
        : outcome === 'locked'
          ? 'skipped: running elsewhere'
          : 'FAILED';
    process.stdout.write(`${sweep.padEnd(width)}${what}\n`);
  }
  process.exitCode = reports.some((r) => r.outcome === 'failed') ? 1 : 0;
} finally {
  await (await mq)?.close();
  await pool.end();
}
