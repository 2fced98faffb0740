// Integration test world: a PostgreSQL schema, a RabbitMQ vhost and a Redis prefix of its own, and ingest
// instances started on port 0 against them. Not a test file itself.
import { loadConfig } from '@smgw/config';
import { decodeEnvelope, type Envelope } from '@smgw/envelope';
import { createLogger, type Logger } from '@smgw/observability';
// @smgw/testing is not a dependency of this package (yet); its source is imported directly.
import {
  createTestDatabase,
  createTestVhost,
  rabbitManagementApi,
  type SmtpSink,
  type StubDns,
  startSmtpSink,
  startStubDns,
  type TestDatabase,
  type TestVhost,
  testRedisPrefix,
} from '@smgw/testing';
import { Redis } from 'ioredis';
import { type IngestConfig, ingestSpec } from '../src/config.ts';
import { type IngestOptions, type RunningIngest, startIngest } from '../src/service.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestWorld {
  db: TestDatabase;
  vhost: TestVhost;
  redisPrefix: string;
  /** The agencies' relay (SMGW_INTERNAL_RELAY) that the MX port verifies recipients against; takes every RCPT. */
  relay: SmtpSink;
  /** The DNS server every ingest of this world asks (SMGW_DNS_RESOLVERS): empty, so every name is NXDOMAIN. */
  dns: StubDns;
  /**
   * Starts an ingest against this world; `env` overrides settings (ports are 0 unless given); `log` replaces the
   * silent test logger (to read what ingest logs).
   */
  start(
    env?: Record<string, string>,
    log?: Logger,
    options?: IngestOptions,
  ): Promise<{ ingest: RunningIngest; config: IngestConfig }>;
  /** Takes (acks) every envelope waiting in a queue of this vhost. */
  takeEnvelopes(queue: string): Promise<Envelope[]>;
  /**
   * Takes every envelope of mail from the internet, wherever ingest routed it: smgw.encrypt, or smgw.scan for plain
   * mail, which skips encrypt (inbound-crypto-route.ts).
   */
  takeInboundEnvelopes(): Promise<Envelope[]>;
  deleteQueue(queue: string): Promise<void>;
  close(): Promise<void>;
}

export async function createTestWorld(): Promise<TestWorld> {
  const db = await createTestDatabase();
  const vhost = await createTestVhost();
  const redisPrefix = testRedisPrefix();
  const relay = await startSmtpSink();
  const dns = await startStubDns();
  const running: RunningIngest[] = [];
  const log = createLogger('ingest-test', process.env.TEST_LOG_LEVEL ?? 'silent');

  async function takeEnvelopes(queue: string): Promise<Envelope[]> {
    const res = await rabbitManagementApi(`/queues/${vhost.name}/${encodeURIComponent(queue)}/get`, 'POST', {
      count: 1000,
      ackmode: 'ack_requeue_false',
      encoding: 'base64',
    });
    if (!res.ok) throw new Error(`cannot get from ${queue}: HTTP ${res.status}`);
    const messages = (await res.json()) as { payload: string }[];
    return messages.map((m) => {
      const parsed = decodeEnvelope(Buffer.from(m.payload, 'base64'));
      if (!parsed.ok) throw new Error(`bad envelope in ${queue}: ${parsed.error}`);
      return parsed.envelope;
    });
  }

  return {
    db,
    vhost,
    redisPrefix,
    relay,
    dns,
    async start(env = {}, ingestLog = log, options = {}) {
      const config = loadConfig(ingestSpec, {
        ...db.envFor('ingest'),
        ...vhost.env,
        REDIS_URL,
        SMGW_REDIS_PREFIX: redisPrefix,
        SMGW_SMTP_INBOUND_PORT: '0',
        SMGW_SMTP_SUBMISSION_PORT: '0',
        SMGW_HEALTH_PORT: '0',
        SMGW_HOSTNAME: 'smgw.test',
        SMGW_INTERNAL_DOMAINS: 'behoerde.example,*.sachsen.example',
        SMGW_INTERNAL_RELAY: `127.0.0.1:${relay.port}`,
        SMGW_DNS_RESOLVERS: dns.address,
        // These tests watch what ingest queues for the scan stage; scan-at-ingest.test.ts turns ingest's own scan on.
        SMGW_INGEST_SCAN_MAX_BYTES: '0',
        CLAMD_URL: process.env.CLAMD_URL ?? 'tcp://127.0.0.1:3310',
        ...env,
      });
      const ingest = await startIngest(config, ingestLog, options);
      running.push(ingest);
      return { ingest, config };
    },
    takeEnvelopes,
    async takeInboundEnvelopes() {
      return [...(await takeEnvelopes('smgw.encrypt')), ...(await takeEnvelopes('smgw.scan'))];
    },
    async deleteQueue(queue) {
      const res = await rabbitManagementApi(`/queues/${vhost.name}/${encodeURIComponent(queue)}`, 'DELETE');
      if (!res.ok) throw new Error(`cannot delete ${queue}: HTTP ${res.status}`);
    },
    async close() {
      await Promise.all(running.map((ingest) => ingest.stop()));
      await relay.close();
      await dropRedisKeys(redisPrefix);
      await db.drop();
      await vhost.drop();
      await dns.close();
    },
  };
}

async function dropRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true });
  try {
    await redis.connect();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

/**
 * Waits for the next clock hour when less than 2 minutes of this one are left: the hourly submission counts start
 * again at the turn of the hour, and a test that crossed it would see them start again halfway.
 */
export async function awayFromHourTurn(): Promise<void> {
  const untilNextHour = 3_600_000 - (Date.now() % 3_600_000);
  if (untilNextHour < 120_000) await new Promise((resolve) => setTimeout(resolve, untilNextHour + 1000));
}
