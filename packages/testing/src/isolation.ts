import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool, migrate, type Pool } from '@smgw/db';

// Read when used, not when imported: a run on servers of its own (the chaos suite) points these elsewhere first.
const databaseUrl = () => process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/smgw';
const amqpUrl = () => process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const rabbitApi = () => process.env.SMGW_RABBITMQ_API ?? 'http://guest:guest@127.0.0.1:15672/api';

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

export interface TestDatabase {
  url: string;
  schema: string;
  pool: Pool;
  /**
   * This test's own key store of message blobs (a temporary folder) and master key: pass to createFolderKeyStore.
   * `env` names the same (SMGW_KEY_STORE_DIR, SMGW_MASTER_KEY), so service processes share it.
   */
  keys: TestKeys;
  /** Environment for a service process under test. */
  env: Record<string, string>;
  /** Drops the schema and removes the key store folder. */
  drop(): Promise<void>;
}

export interface TestKeys {
  keyStoreDir: string;
  masterKey: Buffer;
}

/** A fresh, migrated schema in the real database. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const schema = uniqueName('t');
  const DATABASE_URL = databaseUrl();
  const pool = createPool({ url: DATABASE_URL, schema, max: 5, applicationName: 'smgw-test' });
  await migrate(pool, { schema });
  const keys = { keyStoreDir: await mkdtemp(join(tmpdir(), 'smgw-keys-')), masterKey: randomBytes(32) };
  return {
    url: DATABASE_URL,
    schema,
    pool,
    keys,
    env: {
      DATABASE_URL,
      SMGW_DB_SCHEMA: schema,
      SMGW_KEY_STORE_DIR: keys.keyStoreDir,
      SMGW_MASTER_KEY: keys.masterKey.toString('base64'),
    },
    async drop() {
      await pool.query(`drop schema if exists ${schema} cascade`).catch(() => {});
      await pool.end();
      await rm(keys.keyStoreDir, { recursive: true, force: true });
    },
  };
}

/** A call to the RabbitMQ management API (credentials from SMGW_RABBITMQ_API's URL). */
export function rabbitManagementApi(path: string, method = 'GET', body?: unknown): Promise<Response> {
  const url = new URL(rabbitApi() + path);
  const auth = Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString(
    'base64',
  );
  url.username = '';
  url.password = '';
  return fetch(url, {
    method,
    headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

export interface TestVhost {
  name: string;
  url: string;
  env: Record<string, string>;
  /** Messages ready in a queue of this vhost (management API; refreshes every few seconds). */
  queueDepth(queue: string): Promise<number | undefined>;
  drop(): Promise<void>;
}

/** A fresh RabbitMQ vhost (management API) that guest may use. */
export async function createTestVhost(): Promise<TestVhost> {
  const name = uniqueName('t');
  const created = await rabbitManagementApi(`/vhosts/${name}`, 'PUT', {});
  if (!created.ok) throw new Error(`cannot create vhost ${name}: HTTP ${created.status} (is rabbitmq_management on?)`);
  const perm = await rabbitManagementApi(`/permissions/${name}/guest`, 'PUT', {
    configure: '.*',
    write: '.*',
    read: '.*',
  });
  if (!perm.ok) throw new Error(`cannot grant guest on ${name}: HTTP ${perm.status}`);
  const url = `${amqpUrl().replace(/\/$/, '')}/${name}`;
  return {
    name,
    url,
    env: { AMQP_URL: url },
    async queueDepth(queue) {
      const res = await rabbitManagementApi(`/queues/${name}/${encodeURIComponent(queue)}`, 'GET');
      if (!res.ok) return undefined;
      const q = (await res.json()) as { messages?: number };
      return q.messages;
    },
    async drop() {
      await rabbitManagementApi(`/vhosts/${name}`, 'DELETE').catch(() => {});
    },
  };
}

/** A Redis key prefix of its own. */
export function testRedisPrefix(): string {
  return `${uniqueName('smgwtest')}:`;
}
