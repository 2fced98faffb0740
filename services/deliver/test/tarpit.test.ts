// A destination that stalls (a tarpit: it takes the connection and never greets) against the real deliver: the
// handler with real PostgreSQL and real servers on 127.0.0.1, then the whole service with RabbitMQ and its prefetch.
// What is asserted is behaviour: which recipients were deferred without a connection, what the relay got while MX
// handlers were held; never how long anything took.
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { loadConfig } from '@smgw/config';
import { type Envelope, newMessageId } from '@smgw/envelope';
import { connectMq, type HandlerContext, type Mq, type Outcome } from '@smgw/mq';
import { createRegistry } from '@smgw/observability';
import {
  createTestDatabase,
  envelopeFixture,
  freePort,
  type SmtpSink,
  startSmtpSink,
  startTestGateway,
  type TestDatabase,
  type TestGateway,
  waitFor,
} from '@smgw/testing';
import { getTrace, recordMessage } from '@smgw/trace';
import { deliverSpec } from '../src/config.ts';
import { createDeliverHandler, type DeliverDeps } from '../src/deliver-envelope.ts';
import { DestinationSlots } from '../src/destination-slots.ts';
import { deliverMetrics } from '../src/metrics.ts';
import { type RunningDeliver, startDeliver } from '../src/service.ts';
import { SuspendedDestinations } from '../src/suspended-destinations.ts';
import { createTransports, type TransportSettings } from '../src/transports.ts';
import { sampleEnvelope, sampleMessage } from './fixtures.ts';
import { handlerDepsFor, testLogger } from './harness.ts';

/** Takes every connection and never says a word; counts what it took and keeps it open until `dropAll`. */
interface Tarpit {
  port: number;
  /** Connections taken so far. */
  accepted: number;
  /** Connections open now. */
  open: number;
  dropAll(): void;
  close(): Promise<void>;
}

async function startTarpit(): Promise<Tarpit> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const dropAll = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    port: (server.address() as AddressInfo).port,
    get accepted() {
      return accepted;
    },
    get open() {
      return sockets.size;
    },
    dropAll,
    close: () => {
      dropAll();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A resolver for which every domain's MX is mx.<domain> on 127.0.0.1. */
function everyMxOnLoopback(name: string, type: string) {
  if (type === 'MX' && !name.startsWith('mx.')) return [{ exchange: `mx.${name}`, priority: 10 }];
  if (type === 'A' && name.startsWith('mx.')) return ['127.0.0.1'];
  throw Object.assign(new Error(`ENODATA ${name} (test resolver)`), { code: 'ENODATA' });
}

/** Every domain's MX is the server on 127.0.0.1:`port`. */
function mxOn(port: number): TransportSettings['mxConnectOptions'] {
  return { port, dnsOptions: { resolveRecords: everyMxOnLoopback }, mtaSts: { enabled: false } };
}

function context(overrides: Partial<HandlerContext> = {}): HandlerContext {
  return { attempt: 0, lastAttempt: false, log: testLogger, signal: new AbortController().signal, ...overrides };
}

/** The deliver events recorded for one recipient, oldest first. */
async function eventsOf(pool: TestDatabase['pool'], id: string, recipient: string) {
  const trace = await getTrace(pool, id);
  return (trace?.events ?? [])
    .filter((e) => e.stage === 'deliver' && e.recipient === recipient)
    .map((e) => ({
      event: e.event,
      code: e.code,
      reason: e.reason ?? '',
      category: (e.data as { category?: string }).category,
    }));
}

describe('deliver against a tarpit MX (the handler)', () => {
  let db: TestDatabase;
  let relay: SmtpSink;
  let tarpit: Tarpit;
  let deps: Omit<DeliverDeps, 'transports'>;
  const opened: ReturnType<typeof createTransports>[] = [];
  let clock = Date.parse('2026-03-02T10:00:00Z');
  const advance = (ms: number) => {
    clock += ms;
  };

  /** The handler with its own transports (every domain's MX on `mxPort`) and its own memory of silent MX. */
  function handlerFor(mxPort: number, overrides: Partial<DeliverDeps> = {}) {
    const transports = createTransports({
      hostname: 'smgw.test',
      connectionsPerDestination: 2,
      // the greeting is waited for this long: a tarpit's connection ends in a timeout
      timeoutMs: 300,
      requireTlsOutside: false,
      testOnlyAllowLoopbackMx: true,
      mxConnectOptions: mxOn(mxPort),
    });
    opened.push(transports);
    const suspended = new SuspendedDestinations({ now: () => clock });
    return {
      handle: createDeliverHandler({ ...deps, transports, suspendedDestinations: suspended, ...overrides }),
      suspended,
    };
  }

  async function stored(recipients: string[], overrides: Partial<Envelope> = {}): Promise<Envelope> {
    const id = newMessageId();
    const blob = await deps.blobStore.put(Readable.from([sampleMessage()]), { messageId: id });
    // mail the gateway makes itself (a DSN, a portal notice): it may go to any domain a stranger names
    const envelope = sampleEnvelope({
      direction: 'generated',
      mailFrom: '',
      recipients,
      blob,
      receivedAt: new Date().toISOString(),
      ...overrides,
      id,
    });
    await recordMessage(db.pool, envelope);
    return envelope;
  }

  async function deliverOnce(handle: ReturnType<typeof handlerFor>['handle'], recipient: string, ctx = context()) {
    const envelope = await stored([recipient]);
    const outcome: Outcome = await handle(envelope, ctx);
    const [last] = (await eventsOf(db.pool, envelope.id, recipient)).slice(-1);
    assert.ok(last, `an event for ${recipient}`);
    return { outcome, ...last };
  }

  before(async () => {
    db = await createTestDatabase();
    relay = await startSmtpSink();
    tarpit = await startTarpit();
    deps = { ...(await handlerDepsFor(db, relay.port)), publish: async () => {} };
  });

  after(async () => {
    for (const transports of opened) transports.close();
    await tarpit?.close();
    await relay?.close();
    await db?.drop();
  });

  it('defers mail for an MX that just timed out without connecting, until the suspension ends', async () => {
    const registry = createRegistry('deliver-tarpit-test');
    const notTriedTotal = deliverMetrics(registry, () => 0).notTried;
    const { handle } = handlerFor(tarpit.port, { notTriedTotal });
    const notTried = async () =>
      (await notTriedTotal.get()).values.find((v) => v.labels.category === 'destination-suspended')?.value ?? 0;
    const first = await deliverOnce(handle, 'a@tarpit.example');
    assert.deepEqual([first.event, first.category], ['recipient.deferred', 'timeout']);
    assert.equal(tarpit.accepted, 1);

    const second = await deliverOnce(handle, 'b@tarpit.example');
    assert.equal(second.outcome.kind, 'retry');
    assert.deepEqual(
      [second.event, second.code, second.category],
      ['recipient.deferred', 'DELIVERY_DEFERRED', 'destination-suspended'],
    );
    assert.match(second.reason, /^delivery to mx:tarpit\.example temporarily suspended: .*\(timeout: /);
    assert.equal(tarpit.accepted, 1, 'no connection for the suspended destination');
    assert.equal(await notTried(), 1, 'counted: smgw_deliver_not_tried_total{category="destination-suspended"}');

    // another domain (even one on the same tarpit) is tried: it has not failed yet
    const other = await deliverOnce(handle, 'c@other-tarpit.example');
    assert.equal(other.category, 'timeout');
    assert.equal(tarpit.accepted, 2);

    advance(5 * 60 * 1000);
    const later = await deliverOnce(handle, 'd@tarpit.example');
    assert.equal(later.category, 'timeout', 'tried again once the suspension ended');
    assert.equal(tarpit.accepted, 3);
  });

  it('on the last attempt, expires a recipient of a suspended MX as it expires a busy one, without connecting', async () => {
    const { handle } = handlerFor(tarpit.port);
    await deliverOnce(handle, 'first@last.example');
    const before = tarpit.accepted;
    const last = await deliverOnce(handle, 'second@last.example', context({ attempt: 9, lastAttempt: true }));
    assert.deepEqual([last.event, last.code], ['recipient.bounced', 'DELIVERY_EXPIRED']);
    assert.match(last.reason, /^retry period expired; last: delivery to mx:last\.example temporarily suspended/);
    assert.equal(tarpit.accepted, before);
  });

  it('suspends an MX that refuses the connection', async () => {
    const { handle } = handlerFor(await freePort());
    const first = await deliverOnce(handle, 'a@refusing.example');
    assert.equal(first.category, 'network');
    const second = await deliverOnce(handle, 'b@refusing.example');
    assert.equal(second.category, 'destination-suspended');
  });

  it('never suspends an MX that replies, even with 4xx or 5xx', async () => {
    const live = await startSmtpSink();
    const asked: string[] = [];
    live.rejectRecipient = (rcpt) => {
      asked.push(rcpt);
      return rcpt.startsWith('grey')
        ? { code: 451, message: '4.7.1 greylisted' }
        : { code: 550, message: '5.1.1 unknown' };
    };
    try {
      const { handle, suspended } = handlerFor(live.port);
      const results = [];
      for (const r of ['grey-1@live.example', 'grey-2@live.example', 'no-1@live.example', 'no-2@live.example']) {
        results.push((await deliverOnce(handle, r)).category);
      }
      assert.deepEqual(results, ['temporary', 'temporary', 'recipient', 'recipient']);
      assert.equal(asked.length, 4, 'every one was sent');
      assert.equal(suspended.size, 0);
    } finally {
      await live.close();
    }
  });

  it('never suspends the relay, even when it times out', async () => {
    const { handle, suspended } = handlerFor(tarpit.port, {
      routing: { internalDomains: ['behoerde.example'], internalRelay: [{ host: '127.0.0.1', port: tarpit.port }] },
    });
    const before = tarpit.accepted;
    for (const r of ['a@behoerde.example', 'b@behoerde.example']) {
      assert.equal((await deliverOnce(handle, r)).category, 'timeout');
    }
    assert.equal(tarpit.accepted, before + 2, 'the relay was connected to both times');
    assert.equal(suspended.size, 0);
  });

  it('does not suspend an MX when this process cut the send short (shutdown)', async () => {
    const { handle, suspended } = handlerFor(tarpit.port);
    const stopping = new AbortController();
    const envelope = await stored(['a@stopping.example']);
    const before = tarpit.accepted;
    const handled = handle(envelope, context({ signal: stopping.signal }));
    await waitFor('the tarpit to take the connection', () => tarpit.accepted > before);
    stopping.abort();
    assert.equal((await handled).kind, 'retry');
    assert.equal(suspended.size, 0);
  });

  it('defers at once, past the limit for all MX together, and still sends the relay its recipients', async () => {
    const slots = new DestinationSlots(2, 2);
    const { handle } = handlerFor(tarpit.port, { destinationSlots: slots });
    assert.equal(slots.take('mx:held-1.example'), 'taken');
    assert.equal(slots.take('mx:held-2.example'), 'taken');
    const envelope = await stored(['x@third.example', 'amt@behoerde.example']);
    const before = { tarpit: tarpit.accepted, relay: relay.messages.length };
    const outcome = await handle(envelope, context());
    assert.deepEqual(outcome.kind === 'retry' && outcome.envelope?.recipients, ['x@third.example']);
    const [deferred] = await eventsOf(db.pool, envelope.id, 'x@third.example');
    assert.equal(deferred?.category, 'destination-busy');
    assert.match(deferred?.reason ?? '', /^all MX handlers busy: 2 of 2 /);
    assert.equal(tarpit.accepted, before.tarpit, 'not connected');
    assert.deepEqual(
      relay.messages.slice(before.relay).flatMap((m) => m.rcptTo),
      ['amt@behoerde.example'],
    );
  });
});

describe('deliver against tarpit MX (the service, with RabbitMQ and SMGW_PREFETCH=4)', () => {
  let gateway: TestGateway;
  let tarpit: Tarpit;
  let deliver: RunningDeliver | undefined;
  let publisher: Mq;
  let blobStore: BlobStore;

  before(async () => {
    tarpit = await startTarpit();
    gateway = await startTestGateway({ services: [] });
    const config = loadConfig(deliverSpec, {
      ...gateway.env,
      SMGW_INTERNAL_DOMAINS: 'behoerde.example',
      // no smarthost: mail for the outside goes to the domain's MX
      SMGW_SMARTHOST: '',
      SMGW_PREFETCH: '4',
      // long enough that a tarpit holds its handler for the whole test, and deferred mail is not tried again in it
      SMGW_DELIVER_TIMEOUT_MS: '120000',
      SMGW_DELIVER_RETRY_LADDER: '10m',
    });
    deliver = await startDeliver(config, testLogger, {
      mxConnectOptions: mxOn(tarpit.port),
      testOnlyAllowLoopbackMx: true,
    });
    publisher = await connectMq({ url: gateway.vhost.url, logger: testLogger, connectionName: 'tarpit-test' });
    blobStore = createBlobStore(gateway.db.pool, {
      keyStore: createFolderKeyStore(gateway.keys),
      directory: gateway.blobDir,
    });
  });

  after(async () => {
    // the held sends end (connection closed) before deliver drains
    tarpit?.dropAll();
    await deliver?.stop();
    await publisher?.close();
    await gateway?.close();
    await tarpit?.close();
  });

  async function submit(overrides: Partial<Envelope>): Promise<Envelope> {
    const id = newMessageId();
    const blob = await blobStore.put(Readable.from([sampleMessage()]), { messageId: id });
    const envelope = envelopeFixture({ blob, itinerary: ['deliver'], hop: 1, ...overrides, id });
    await recordMessage(gateway.db.pool, envelope);
    await publisher.publish(envelope);
    return envelope;
  }

  const generated = (recipient: string) => submit({ direction: 'generated', mailFrom: '', recipients: [recipient] });

  it('keeps a handler for the relay while stalling MX hold all the others', async () => {
    // three domains of a stranger's, one handler each: all that 4 handlers give the MX (one is kept)
    for (const d of ['t1', 't2', 't3']) await generated(`opfer@${d}.example`);
    await waitFor('three connections held by the tarpit', () => tarpit.open === 3);

    const fourth = await generated('opfer@t4.example');
    const deferred = await waitFor('the fourth domain deferred', async () =>
      (await eventsOf(gateway.db.pool, fourth.id, 'opfer@t4.example')).find((e) => e.event === 'recipient.deferred'),
    );
    assert.equal(deferred.category, 'destination-busy');
    assert.match(deferred.reason, /^all MX handlers busy: 3 of 3 /);
    assert.equal(tarpit.accepted, 3, 'the fourth domain was not connected to');

    const inbound = await submit({ recipients: ['eingang@behoerde.example'] });
    await waitFor('the inbound message at the relay', () =>
      gateway.relay.messages.some((m) => m.rcptTo.includes('eingang@behoerde.example')),
    );
    // The relay has the message before deliver has recorded it (the outcome commits after the SMTP transaction).
    const delivered = await waitFor('the delivery recorded', async () =>
      (await eventsOf(gateway.db.pool, inbound.id, 'eingang@behoerde.example')).find(
        (e) => e.event === 'recipient.delivered',
      ),
    );
    assert.equal(delivered.event, 'recipient.delivered');
    assert.equal(tarpit.open, 3, 'delivered while the tarpit held its three handlers');
  });
});
