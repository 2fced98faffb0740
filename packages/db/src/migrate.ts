import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));

// Any constant works; it only has to be the same for every replica (pg_advisory_lock is database-wide).
const MIGRATION_LOCK = 0x534d4757; // "SMGW"

export interface MigrationResult {
  applied: string[];
  alreadyApplied: number;
}

export interface MigrateOptions {
  schema?: string | undefined;
  /** The last migration to apply (its file name): a test of a later migration starts from the schema before it. */
  through?: string | undefined;
}

/**
 * Applies every migration in migrations/ that has not run yet, each in its own transaction, in file-name order.
 * Replicas starting together serialise on an advisory lock, so each migration runs exactly once.
 * With `schema`, works in (and creates) that schema.
 */
export async function migrate(pool: pg.Pool, options: MigrateOptions = {}): Promise<MigrationResult> {
  const files = (await readdir(MIGRATIONS_DIR))
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .filter((f) => options.through === undefined || f <= options.through)
    .sort();
  const client = await pool.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
    if (options.schema) {
      await client.query(`create schema if not exists ${options.schema}`);
      await client.query(`set search_path to ${options.schema}`);
    }
    await client.query(`create table if not exists schema_migrations (
      name text primary key, applied_at timestamptz not null default now())`);
    const done = new Set((await client.query('select name from schema_migrations')).rows.map((r) => r.name as string));
    const applied: string[] = [];
    for (const file of files) {
      if (done.has(file)) continue;
      const sql = await readFile(MIGRATIONS_DIR + file, 'utf8');
      await client.query('begin');
      try {
        await client.query(sql);
        await client.query('insert into schema_migrations (name) values ($1)', [file]);
        await client.query('commit');
      } catch (err) {
        await client.query('rollback').catch(() => {});
        throw new Error(`migration ${file} failed: ${(err as Error).message}`);
      }
      applied.push(file);
    }
    return { applied, alreadyApplied: done.size };
  } finally {
    await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
    if (options.schema) await client.query('reset search_path').catch(() => {});
    client.release();
  }
}
