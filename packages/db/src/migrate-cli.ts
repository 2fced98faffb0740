// `migrate` command: applies pending migrations to DATABASE_URL (and SMGW_DB_SCHEMA, if set). Idempotent.
import { loadConfigOrExit, settings } from '@smgw/config';
import { migrate } from './migrate.ts';
import { createPool } from './pool.ts';

const config = loadConfigOrExit('migrate', { databaseUrl: settings.databaseUrl, schema: settings.databaseSchema });
const pool = createPool({ url: config.databaseUrl, applicationName: 'smgw-migrate' });
try {
  const result = await migrate(pool, { schema: config.schema });
  const what = result.applied.length ? `applied ${result.applied.join(', ')}` : 'nothing to apply';
  process.stderr.write(`migrate: ${what} (${result.alreadyApplied} already applied)\n`);
} catch (err) {
  process.stderr.write(`migrate: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await pool.end();
}
