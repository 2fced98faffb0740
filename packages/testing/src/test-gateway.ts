import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, type ServiceProcess, serviceProcess } from './gateway-processes.ts';
import {
  createTestDatabase,
  createTestVhost,
  type TestDatabase,
  type TestKeys,
  type TestVhost,
  testRedisPrefix,
} from './isolation.ts';
import { type SmtpSink, startSmtpSink } from './smtp-sink.ts';
import { type StubDns, startStubDns } from './stub-dns.ts';

export interface TestGateway {
  env: Record<string, string>;
  db: TestDatabase;
  vhost: TestVhost;
  /** The agencies' mail server (SMGW_INTERNAL_RELAY). */
  relay: SmtpSink;
  /** Everything bound for the outside (SMGW_SMARTHOST). */
  smarthost: SmtpSink;
  /**
   * The only DNS server ingest asks for SPF, DKIM and DMARC (SMGW_DNS_RESOLVERS): empty (every name NXDOMAIN, so
   * spf/dkim/dmarc=none) until a test publishes records with `dns.set`. No test reaches the internet's DNS.
   */
  dns: StubDns;
  inboundPort: number;
  submissionPort: number;
  adminPort: number;
  /** The Messenger portal of the mailbox service (http://127.0.0.1:<portalPort>). */
  portalPort: number;
  adminToken: string;
  /** SMGW_MASTER_KEY of this gateway (random per run): seal agency keys with it (`sealSecret`) in tests. */
  masterKey: Buffer;
  /** The key store the services use (its own temporary folder): `createFolderKeyStore(gateway.keys)` in tests. */
  keys: TestKeys;
  /**
   * SMGW_BLOB_DIR of the services (their own temporary folder) when blob contents are kept in files, as deployments
   * keep them: `createBlobStore(pool, { keyStore, directory: gateway.blobDir })` in tests.
   */
  blobDir: string | undefined;
  /** Every process started, by instance name: `scan`, and `scan-2`… for further replicas. */
  services: Record<string, ServiceProcess>;
  /** One of the services started; throws for one that was not. */
  service(name: string): ServiceProcess;
  /** Stops every service, the sinks, and drops the schema and vhost. */
  close(): Promise<void>;
}

/**
 * The gateway, or any set of its services, as real processes (`node services/<name>/src/main.ts`) in an isolated
 * schema, vhost and Redis prefix, on free ports, delivering into two in-process SMTP sinks. For the services'
 * integration tests (a stage and deliver behind it) as for end-to-end, crash and benchmark runs; `env` overrides
 * any setting.
 */
export async function startTestGateway(
  options: {
    services?: string[];
    env?: Record<string, string>;
    /** Processes per service (default 1), for runs that kill one replica while the others go on. */
    replicas?: Record<string, number>;
    /** Where blob contents go: files in a folder of this gateway's own (SMGW_BLOB_DIR; default), or PostgreSQL. */
    blobs?: 'database' | 'files';
  } = {},
): Promise<TestGateway> {
  const names = options.services ?? ['ingest', 'scan', 'encrypt', 'signature-verify', 'deliver', 'admin'];
  const [db, vhost, relay, smarthost, dns] = await Promise.all([
    createTestDatabase(),
    createTestVhost(),
    startSmtpSink(),
    startSmtpSink(),
    startStubDns(),
  ]);
  const [inboundPort, submissionPort, adminPort, portalPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const adminToken = randomBytes(24).toString('hex');
  const blobDir = options.blobs === 'database' ? undefined : await mkdtemp(join(tmpdir(), 'smgw-blobs-'));
  const masterKey = options.env?.SMGW_MASTER_KEY
    ? Buffer.from(options.env.SMGW_MASTER_KEY, 'base64')
    : db.keys.masterKey;
  const env: Record<string, string> = {
    ...db.env,
    ...vhost.env,
    SMGW_REDIS_PREFIX: testRedisPrefix(),
    SMGW_SMTP_INBOUND_PORT: String(inboundPort),
    SMGW_SMTP_SUBMISSION_PORT: String(submissionPort),
    SMGW_ADMIN_PORT: String(adminPort),
    SMGW_PORTAL_PORT: String(portalPort),
    // Links in the portal's mails point at this gateway's portal.
    SMGW_PUBLIC_URL: `http://127.0.0.1:${portalPort}`,
    SMGW_ADMIN_TOKEN: adminToken,
    SMGW_INTERNAL_DOMAINS: 'behoerde.example,*.land.example',
    SMGW_INTERNAL_RELAY: `127.0.0.1:${relay.port}`,
    SMGW_SMARTHOST: `127.0.0.1:${smarthost.port}`,
    SMGW_DELIVER_RETRY_LADDER: '500ms,1s,2s',
    SMGW_STAGE_RETRY_LADDER: '500ms,1s,2s',
    SMGW_HOSTNAME: 'smgw.test',
    SMGW_DNS_RESOLVERS: dns.address,
    // Revocation is checked as in production (require); a test without revocation at hand passes 'off' in env.
    SMGW_REVOCATION_MODE: 'require',
    // scan streams every message to the shared clamd (deploy/local/infrastructure.sh).
    CLAMD_URL: process.env.CLAMD_URL ?? 'tcp://127.0.0.1:3310',
    ...(blobDir === undefined ? {} : { SMGW_BLOB_DIR: blobDir }),
    ...options.env,
  };
  const services: Record<string, ServiceProcess> = {};
  for (const name of names) {
    const healthPort = name === 'admin' ? adminPort : await freePort();
    services[name] = serviceProcess(name, env, healthPort);
    for (let n = 2; n <= (options.replicas?.[name] ?? 1); n++) {
      // A further mailbox replica serves the portal on a port of its own (behind a load balancer in production).
      const replicaEnv = name === 'mailbox' ? { ...env, SMGW_PORTAL_PORT: String(await freePort()) } : env;
      services[`${name}-${n}`] = serviceProcess(`${name}-${n}`, replicaEnv, await freePort(), name);
    }
  }
  const gateway: TestGateway = {
    env,
    db,
    vhost,
    relay,
    smarthost,
    dns,
    inboundPort,
    submissionPort,
    adminPort,
    portalPort,
    adminToken,
    masterKey,
    keys: { keyStoreDir: db.keys.keyStoreDir, masterKey },
    blobDir,
    services,
    service(name) {
      const found = services[name];
      if (!found) throw new Error(`${name} was not started in this test gateway`);
      return found;
    },
    async close() {
      await Promise.all(Object.values(services).map((s) => s.stop()));
      await Promise.all([relay.close(), smarthost.close(), dns.close()]);
      await Promise.all([db.drop(), vhost.drop()]);
      if (blobDir !== undefined) await rm(blobDir, { recursive: true, force: true });
    },
  };
  try {
    for (const s of Object.values(services)) await s.start();
  } catch (err) {
    await gateway.close();
    throw err;
  }
  return gateway;
}
