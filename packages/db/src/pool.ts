import pg from 'pg';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type QueryConfig = pg.QueryConfig;

export interface PoolOptions {
  url: string;
  /** Schema to work in (tests use one each); unset: the database's default search_path. */
  schema?: string | undefined;
  max?: number;
  applicationName?: string;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const IDLE_CONNECTION_MS = 5 * 60_000;

/** A pg pool; with `schema`, every connection works in that schema (it must exist; migrate creates it). */
export function createPool(options: PoolOptions): pg.Pool {
  if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) {
    throw new Error(`bad schema name ${JSON.stringify(options.schema)}`);
  }
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'smgw',
    // Startup options, so no extra round trip. A schema per test suite keeps parallel tests apart. Generic plans: the
    // named statements (preparedStatement) are the per-message ones, on keys, whose best plan does not depend on the
    // values; PostgreSQL's default (auto) plans such a statement again on every call where its estimates favour a plan
    // for the call's values, and in the bench it did so for 71 % of deliver's claims and 41 % of its outcomes (a third
    // of PostgreSQL's CPU, 0.5 ms per message). Unnamed statements are planned per call in either mode.
    options: [
      ...(options.schema ? [`-c search_path=${options.schema}`] : []),
      '-c plan_cache_mode=force_generic_plan',
    ].join(' '),
    connectionTimeoutMillis: 10_000,
    // pg's default closes a connection after 10 s idle: a lull that long (between bursts, at night) then costs every
    // pool a round of new backends (fork, authentication, catalogue caches, statements prepared again) when mail
    // comes back. Kept like a pooler keeps them (PgBouncer: 10 min); the pool's size still bounds them.
    idleTimeoutMillis: IDLE_CONNECTION_MS,
    // ... and an idle connection never keeps a process alive: a command that forgets pool.end() still exits.
    allowExitOnIdle: true,
  });
  // An idle client's error (the server restarted) must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  // Nor a checked-out client's: pg emits 'error' on a client whose session ends (pg_terminate_backend, a restart,
  // a failover) even when its query already failed with the same cause, and the pool listens only while the client
  // is idle. The work in flight fails on its own; release() drops the dead client, so the next checkout reconnects.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  return pool;
}

/** Runs `work` in a transaction; rolls back on any error and rethrows it. */
export async function withTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const result = await work(client);
    await client.query('commit');
    return result;
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** True when the database answers (for /readyz). */
export async function databaseReachable(pool: pg.Pool): Promise<boolean> {
  try {
    await pool.query('select 1');
    return true;
  } catch {
    return false;
  }
}

export type Client = pg.Client;

/** One connection of its own, outside the pool (a session whose life means something, like deliver's owner). */
export function createClient(options: { url: string; applicationName?: string }): pg.Client {
  return new pg.Client({ connectionString: options.url, application_name: options.applicationName ?? 'smgw' });
}

/**
 * A statement that every message runs, prepared once per connection under `name` (node-pg's named statements):
 * PostgreSQL parses and plans it once instead of on every call. The name must be unique in the gateway and always
 * go with the same text.
 */
export function preparedStatement(name: string, text: string): (values: unknown[]) => QueryConfig {
  return (values) => ({ name, text, values });
}
