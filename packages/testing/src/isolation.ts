import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool, migrate, type Pool, SERVICES, type ServiceName, serviceRole } from '@smgw/db';

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
  /** The same database as SERVICE_TEST_ROLE, the role service processes under test connect as. */
  serviceUrl: string;
  /** Environment for a service process under test (its DATABASE_URL is serviceUrl). */
  env: Record<string, string>;
  /** `env` with the DATABASE_URL of `service`'s own test role (serviceTestRole), as the service logs in in production. */
  envFor(service: ServiceName): Record<string, string>;
  /** Drops the schema and removes the key store folder. */
  drop(): Promise<void>;
}

export interface TestKeys {
  keyStoreDir: string;
  masterKey: Buffer;
}

/**
 * The login role service processes under test connect as: a member of smgw_app (migration 024) as the services' role
 * is in production, so a service that needs more than reading and writing rows (DDL, TRUNCATE, a table without a
 * grant) fails its tests here. The test servers trust local connections, so it has no password.
 */
export const SERVICE_TEST_ROLE = 'smgw_test_service';

/** `url` logged in as `role` instead (no password). */
export function databaseUrlAs(url: string, role: string): string {
  const asRole = new URL(url);
  asRole.username = role;
  asRole.password = '';
  return asRole.toString();
}

/**
 * The login role the process of `service` under test connects as: a member of the service's own role (migration 025)
 * only, as its login role is in production, so a statement the service runs that its role was not granted fails its
 * tests. `smgw_test_<service>`, trusted without a password like SERVICE_TEST_ROLE.
 */
export function serviceTestRole(service: ServiceName): string {
  return `smgw_test_${serviceRole(service).slice('smgw_'.length)}`;
}

/** `env` for a process of `service`: DATABASE_URL logged in as serviceTestRole(service) when it names SERVICE_TEST_ROLE. */
export function serviceProcessEnv(env: Record<string, string>, service: string): Record<string, string> {
  const url = env.DATABASE_URL;
  if (!url || !(SERVICES as readonly string[]).includes(service)) return env;
  if (decodeURIComponent(new URL(url).username) !== SERVICE_TEST_ROLE) return env;
  return { ...env, DATABASE_URL: databaseUrlAs(url, serviceTestRole(service as ServiceName)) };
}

/** Makes SERVICE_TEST_ROLE once per server; after migrate, which makes smgw_app. Replicas of this race harmlessly. */
async function ensureServiceTestRole(pool: Pool): Promise<void> {
  await pool.query(`do $$ begin
      if not exists (select from pg_roles where rolname = '${SERVICE_TEST_ROLE}') then
        create role ${SERVICE_TEST_ROLE} login in role smgw_app;
      end if;
    exception when duplicate_object or unique_violation then null;
    end $$`);
  for (const service of SERVICES) {
    const login = serviceTestRole(service);
    await pool.query(`do $$ begin
        if not exists (select from pg_roles where rolname = '${login}') then
          create role ${login} login in role ${serviceRole(service)};
        end if;
      exception when duplicate_object or unique_violation then null;
      end $$`);
  }
}

/** A fresh, migrated schema in the real database. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const schema = uniqueName('t');
  const DATABASE_URL = databaseUrl();
  const pool = createPool({ url: DATABASE_URL, schema, max: 5, applicationName: 'smgw-test' });
  await migrate(pool, { schema });
  await ensureServiceTestRole(pool);
  const serviceUrl = databaseUrlAs(DATABASE_URL, SERVICE_TEST_ROLE);
  const keys = { keyStoreDir: await mkdtemp(join(tmpdir(), 'smgw-keys-')), masterKey: randomBytes(32) };
  const env: Record<string, string> = {
    DATABASE_URL: serviceUrl,
    SMGW_DB_SCHEMA: schema,
    SMGW_KEY_STORE_DIR: keys.keyStoreDir,
    SMGW_MASTER_KEY: keys.masterKey.toString('base64'),
  };
  return {
    url: DATABASE_URL,
    schema,
    pool,
    keys,
    serviceUrl,
    env,
    envFor(service) {
      return serviceProcessEnv(env, service);
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
