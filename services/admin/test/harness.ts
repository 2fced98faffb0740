// What the admin tests share: the admin service on a free port against its own schema and vhost, and capturing the
// CLI's output.
import { createLogger } from '@smgw/observability';
import { createTestDatabase, createTestVhost, type TestDatabase, type TestVhost } from '@smgw/testing';
import { type AdminConfig, type RunningAdmin, startAdmin } from '../src/service.ts';

export interface TestAdmin {
  db: TestDatabase;
  vhost: TestVhost;
  admin: RunningAdmin;
  /** http://127.0.0.1:<port>/api/v1 */
  base: string;
  /** Another admin instance on the same schema and vhost, with other settings. */
  startAnother(overrides: Partial<AdminConfig>): Promise<RunningAdmin>;
  stop(): Promise<void>;
}

export async function startTestAdmin(token: string, overrides: Partial<AdminConfig> = {}): Promise<TestAdmin> {
  const [db, vhost] = await Promise.all([createTestDatabase(), createTestVhost()]);
  const config: AdminConfig = {
    databaseUrl: db.url,
    databaseSchema: db.schema,
    amqpUrl: vhost.url,
    adminPort: 0,
    adminBind: '127.0.0.1',
    adminToken: token,
    logLevel: 'silent',
    // The test's own key store folder; its mailbox keys open only with a master key (given by the tests that need one).
    keyStoreDir: db.keys.keyStoreDir,
    revocationAllow: { networks: [], endpoints: [] },
    mailboxQuotaBytes: 30 * 1024 * 1024,
    activationLinkLifetime: 14 * 24 * 3_600_000,
    reactivationLinkLifetime: 24 * 3_600_000,
    pinDelay: 5 * 60_000,
    ...overrides,
  };
  const logger = createLogger('admin-test', 'silent');
  const admin = await startAdmin(config, logger);
  const others: RunningAdmin[] = [];
  return {
    db,
    vhost,
    admin,
    base: `http://127.0.0.1:${admin.port}/api/v1`,
    async startAnother(more) {
      const other = await startAdmin({ ...config, ...more }, logger);
      others.push(other);
      return other;
    },
    async stop() {
      await Promise.all([admin.stop(), ...others.map((o) => o.stop())]);
      await Promise.all([db.drop(), vhost.drop()]);
    },
  };
}

export function captureStdout(run: () => Promise<number>): Promise<{ code: number; out: string }> {
  return capture(process.stdout, run);
}

export function captureStderr(run: () => Promise<number>): Promise<{ code: number; out: string }> {
  return capture(process.stderr, run);
}

async function capture(stream: NodeJS.WriteStream, run: () => Promise<number>): Promise<{ code: number; out: string }> {
  const written: string[] = [];
  const write = stream.write;
  // Only the CLI's text is captured; the test runner's own (binary) reports still go out.
  stream.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    if (typeof chunk !== 'string') return write.call(stream, chunk, ...rest);
    written.push(chunk);
    return true;
  }) as typeof stream.write;
  try {
    const code = await run();
    return { code, out: written.join('') };
  } finally {
    stream.write = write;
  }
}

export interface ApiAnswer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: test answers are inspected field by field
  body: any;
}

export interface ApiRequest {
  body?: string | Uint8Array;
  /** The content-type header; none when unset. */
  type?: string;
  headers?: Record<string, string>;
  /** null: no authorization header. */
  token?: string | null;
}

/** One admin API call with the bearer token (unless `token: null`); the JSON answer parsed. */
export async function callAdminApi(
  base: string,
  token: string,
  method: string,
  path: string,
  request: ApiRequest = {},
): Promise<ApiAnswer> {
  const headers: Record<string, string> = { ...request.headers };
  if (request.token !== null) headers.authorization = `Bearer ${request.token ?? token}`;
  if (request.type) headers['content-type'] = request.type;
  const res = await fetch(base + path, {
    method,
    headers,
    ...(request.body === undefined ? {} : { body: request.body }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}
