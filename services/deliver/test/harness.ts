// A real deliver service for integration tests: its own PostgreSQL schema and RabbitMQ vhost, SMTP sinks as the
// agencies' relay and as the smarthost, and a publisher that submits messages the way ingest does.
import { Readable } from 'node:stream';
import { type BlobStore, createBlobStore } from '@smgw/blob-store';
import { loadConfig } from '@smgw/config';
import type { Envelope } from '@smgw/envelope';
import { connectMq, type Mq } from '@smgw/mq';
import { createLogger, type Logger } from '@smgw/observability';
import {
  createTestDatabase,
  createTestVhost,
  envelopeFixture,
  type SmtpSink,
  startSmtpSink,
  type TestDatabase,
  type TestVhost,
  waitFor,
} from '@smgw/testing';
import { getTrace, type MessageTrace, recordMessage } from '@smgw/trace';
import { type DeliverConfig, deliverSpec } from '../src/config.ts';
import { type DeliverOptions, type RunningDeliver, startDeliver } from '../src/service.ts';

export const testLogger: Logger = createLogger('deliver-test', process.env.SMGW_TEST_LOG_LEVEL ?? 'silent');

export interface World {
  db: TestDatabase;
  vhost: TestVhost;
  config: DeliverConfig;
  deliver: RunningDeliver;
  publisher: Mq;
  blobStore: BlobStore;
  close(): Promise<void>;
}

export async function startWorld(env: Record<string, string>, options: DeliverOptions = {}): Promise<World> {
  const db = await createTestDatabase();
  const vhost = await createTestVhost();
  const config = loadConfig(deliverSpec, {
    ...db.env,
    ...vhost.env,
    SMGW_INTERNAL_DOMAINS: 'behoerde.example',
    SMGW_HOSTNAME: 'smgw.test',
    SMGW_DELIVER_RETRY_LADDER: '200ms,200ms',
    SMGW_DELIVER_TIMEOUT_MS: '10000',
    SMGW_HEALTH_PORT: '0',
    SMGW_PREFETCH: '8',
    ...env,
  });
  const deliver = await startDeliver(config, testLogger, options);
  const publisher = await connectMq({ url: vhost.url, logger: testLogger, connectionName: 'deliver-test-publisher' });
  return {
    db,
    vhost,
    config,
    deliver,
    publisher,
    blobStore: createBlobStore(db.pool),
    async close() {
      await deliver.stop();
      await publisher.close();
      await db.drop();
      await vhost.drop();
    },
  };
}

/** Stores the message, records it and publishes its envelope to smgw.deliver, as an earlier stage would. */
export async function submit(world: World, message: Buffer, overrides: Partial<Envelope> = {}): Promise<Envelope> {
  const blob = await world.blobStore.put(Readable.from([message]));
  const envelope = envelopeFixture({ blob, itinerary: ['deliver'], hop: 1, ...overrides });
  await recordMessage(world.db.pool, envelope);
  await world.publisher.publish(envelope);
  return envelope;
}

export async function trace(world: World, id: string): Promise<MessageTrace> {
  const found = await getTrace(world.db.pool, id);
  if (!found) throw new Error(`no trace for ${id}`);
  return found;
}

/** Waits until the recipient of the message reaches `state` in message_recipients. */
export function waitForState(world: World, id: string, recipient: string, state: string): Promise<MessageTrace> {
  return waitFor(`${recipient} of ${id} to be ${state}`, async () => {
    const t = await trace(world, id);
    return t.recipients.find((r) => r.address === recipient)?.state === state ? t : undefined;
  });
}

/** Messages the sink received for a recipient. */
export function receivedFor(sink: SmtpSink, recipient: string) {
  return sink.messages.filter((m) => m.rcptTo.includes(recipient));
}

/** Generated messages (DSNs) recorded for an original message. */
export async function dsnsOf(
  world: World,
  id: string,
): Promise<{ id: string; mail_from: string; blob_sha256: string }[]> {
  const { rows } = await world.db.pool.query('select id, mail_from, blob_sha256 from messages where relates_to = $1', [
    id,
  ]);
  return rows;
}

/** A counter's value from the service's /metrics (summed over label sets matching `labels`). */
export async function metric(world: World, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${world.deliver.healthPort}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.split(' ').pop());
  }
  return sum;
}

export { type SmtpSink, startSmtpSink, waitFor };
