// deliver as a real process for integration tests (the shared test gateway with deliver alone): its own PostgreSQL
// schema and RabbitMQ vhost, SMTP sinks as the agencies' relay and as the smarthost, and a publisher that submits
// messages the way an earlier stage does.
import { Readable } from 'node:stream';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { type Envelope, newMessageId } from '@smgw/envelope';
import { connectMq, type Mq } from '@smgw/mq';
import { createLogger, type Logger } from '@smgw/observability';
import {
  envelopeFixture,
  type ServiceProcess,
  type SmtpSink,
  startSmtpSink,
  startTestGateway,
  type TestGateway,
  waitFor,
} from '@smgw/testing';
import { getTrace, type MessageTrace, recordMessage } from '@smgw/trace';
import type { DeliverDeps } from '../src/deliver-envelope.ts';
import { loadDsnTemplates } from '../src/dsn.ts';
import { createTransports } from '../src/transports.ts';

export const testLogger: Logger = createLogger('deliver-test', process.env.SMGW_TEST_LOG_LEVEL ?? 'silent');

/** What the deliver handler needs besides its transports and publisher, for tests without a broker. */
export async function handlerDepsFor(
  db: TestGateway['db'],
  relayPort: number,
): Promise<Omit<DeliverDeps, 'transports' | 'publish'>> {
  return {
    pool: db.pool,
    blobStore: createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) }),
    routing: { internalDomains: ['behoerde.example'], internalRelay: [{ host: '127.0.0.1', port: relayPort }] },
    hostname: 'smgw.test',
    maxMessageBytes: 10 * 1024 * 1024,
    attemptTimeoutMs: 20_000,
    claimLeaseMs: 60_000,
    templates: await loadDsnTemplates(),
  };
}

/** The handler's world without a broker: a relay sink, pooled transports to it, and deps whose publish collects. */
export interface HandlerWorld {
  relay: SmtpSink;
  /** What the handler published itself (DSNs beside a retry). */
  published: Envelope[];
  deps: DeliverDeps;
  close(): Promise<void>;
}

/** A HandlerWorld on `db`, its relay answering recipients as `reject` says (undefined: 250). */
export async function startHandlerWorld(
  db: TestGateway['db'],
  reject?: SmtpSink['rejectRecipient'],
): Promise<HandlerWorld> {
  const relay = await startSmtpSink();
  relay.rejectRecipient = reject;
  const transports = createTransports({
    hostname: 'smgw.test',
    connectionsPerDestination: 2,
    timeoutMs: 5000,
    requireTlsOutside: false,
  });
  const published: Envelope[] = [];
  const deps: DeliverDeps = {
    ...(await handlerDepsFor(db, relay.port)),
    transports,
    publish: async (envelope) => {
      published.push(envelope);
    },
  };
  return {
    relay,
    published,
    deps,
    async close() {
      transports.close();
      await relay.close();
    },
  };
}

export interface World {
  gateway: TestGateway;
  db: TestGateway['db'];
  vhost: TestGateway['vhost'];
  /** The agencies' mail server (SMGW_INTERNAL_RELAY, unless `env` points elsewhere). */
  relay: SmtpSink;
  /** The way out (SMGW_SMARTHOST, unless `env` points elsewhere). */
  smarthost: SmtpSink;
  deliver: ServiceProcess;
  publisher: Mq;
  blobStore: BlobStore;
  close(): Promise<void>;
}

export async function startWorld(env: Record<string, string> = {}): Promise<World> {
  const gateway = await startTestGateway({
    services: ['deliver'],
    env: {
      SMGW_INTERNAL_DOMAINS: 'behoerde.example',
      SMGW_DELIVER_RETRY_LADDER: '200ms,200ms',
      SMGW_DELIVER_TIMEOUT_MS: '10000',
      SMGW_PREFETCH: '8',
      ...env,
    },
  });
  const publisher = await connectMq({
    url: gateway.vhost.url,
    logger: testLogger,
    connectionName: 'deliver-test-publisher',
  });
  return {
    gateway,
    db: gateway.db,
    vhost: gateway.vhost,
    relay: gateway.relay,
    smarthost: gateway.smarthost,
    deliver: gateway.service('deliver'),
    publisher,
    blobStore: createBlobStore(gateway.db.pool, {
      keyStore: createFolderKeyStore(gateway.keys),
      directory: gateway.blobDir,
    }),
    async close() {
      await publisher.close();
      await gateway.close();
    },
  };
}

/** Stores the message, records it and publishes its envelope to smgw.deliver, as an earlier stage would. */
export async function submit(world: World, message: Buffer, overrides: Partial<Envelope> = {}): Promise<Envelope> {
  const id = overrides.id ?? newMessageId();
  const blob = await world.blobStore.put(Readable.from([message]), { messageId: id });
  const envelope = envelopeFixture({ blob, itinerary: ['deliver'], hop: 1, ...overrides, id });
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

export { type SmtpSink, startSmtpSink, waitFor };
