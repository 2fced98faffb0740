// Starts deliver: database, blob store, broker, transports, consumer, health server. Stops in reverse order.
import { createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { dkimSigningOf } from '@smgw/config';
import { createPool, databaseReachable } from '@smgw/db';
import { connectMq, instrumentHandler } from '@smgw/mq';
import { createRegistry, type Logger, startHealthServer } from '@smgw/observability';
import { recordParkedAt } from '@smgw/trace';
import type { DeliverConfig } from './config.ts';
import { createDeliverHandler } from './deliver-envelope.ts';
import { createOutcomeRecorder } from './delivery-records.ts';
import { DestinationSlots, destinationLimitFor, mxLimitFor } from './destination-slots.ts';
import { loadDsnTemplates } from './dsn.ts';
import { installFastDataStream } from './fast-data-stream.ts';
import { deliverMetrics } from './metrics.ts';
import { startOwnerHeartbeat } from './owner-heartbeat.ts';
import { SuspendedDestinations } from './suspended-destinations.ts';
import { connectTimeoutFor, createTransports, type TransportSettings } from './transports.ts';

export interface DeliverOptions {
  /** Merged into every mx-connect call (tests resolve a domain to a local sink). */
  mxConnectOptions?: TransportSettings['mxConnectOptions'];
  /** Close a destination's transport after this long unused (default 10 minutes). */
  idleCloseMs?: number;
  /** TESTS ONLY (transports.ts): an MX may be the test's server on 127.0.0.1. Never set by main.ts. */
  testOnlyAllowLoopbackMx?: true;
}

export interface RunningDeliver {
  healthPort: number;
  /** Stops consuming, lets in-flight envelopes finish, closes transports, broker and database. */
  stop(): Promise<void>;
}

export async function startDeliver(
  config: DeliverConfig,
  log: Logger,
  options: DeliverOptions = {},
): Promise<RunningDeliver> {
  const pool = createPool({
    url: config.databaseUrl,
    schema: config.databaseSchema,
    applicationName: 'smgw-deliver',
    max: Math.min(config.prefetch + 4, 50),
  });
  const blobStore = createBlobStore(pool, { keyStore: createFolderKeyStore(config), directory: config.blobDir });
  const owner = await startOwnerHeartbeat(pool, log);
  const mq = await connectMq({ url: config.amqpUrl, logger: log, connectionName: 'smgw-deliver' });
  await mq.declareTopology({ deliver: config.deliverRetryLadder });

  const dataStream = installFastDataStream();
  if (typeof dataStream === 'object') {
    log.warn(
      { code: 'NODEMAILER_UNCHECKED', reason: dataStream.skipped },
      "nodemailer's own DATA transform kept (slower)",
    );
  }
  const connectTimeoutMs = connectTimeoutFor(config.deliverTimeoutMs);
  const transports = createTransports({
    hostname: config.hostname,
    connectionsPerDestination: config.deliverConnectionsPerDestination,
    timeoutMs: config.deliverTimeoutMs,
    connectTimeoutMs,
    requireTlsOutside: config.deliverRequireTlsOutside,
    idleCloseMs: options.idleCloseMs,
    closedNetwork: { relayHosts: config.internalRelay, networks: config.submissionNetworks },
    mxConnectOptions: options.mxConnectOptions,
    ...(options.testOnlyAllowLoopbackMx ? { testOnlyAllowLoopbackMx: true } : {}),
    onMtaStsFetchFailed: (domain, err) =>
      log.info({ code: 'MTA_STS_FETCH_FAILED', domain, reason: err.message }, 'MTA-STS policy not fetched'),
  });
  const idleSweep = setInterval(() => transports.closeIdle(), 60_000);
  idleSweep.unref();

  const registry = createRegistry('deliver');
  const metrics = deliverMetrics(registry, () => transports.count());
  // One attempt: connect, greeting, MAIL/RCPT/DATA, each bounded by the timeout; the claim outlives all of it.
  const attemptTimeoutMs = 4 * config.deliverTimeoutMs;
  // Domains' MX share the handlers that are not kept for the relay and the smarthost, each at most half of them.
  const mxHandlers = mxLimitFor(config.prefetch);
  const handler = createDeliverHandler({
    pool,
    blobStore,
    transports,
    routing: {
      internalDomains: config.internalDomains,
      internalRelay: config.internalRelay,
      smarthost: config.smarthost,
    },
    hostname: config.hostname,
    maxMessageBytes: config.maxMessageBytes,
    attemptTimeoutMs,
    claimLeaseMs: attemptTimeoutMs + 60_000,
    owner,
    sending: new Set(),
    templates: await loadDsnTemplates(),
    dkim: dkimSigningOf(config),
    // The results of all envelopes that reach their record while one statement runs share the next (group commit).
    recordOutcomes: createOutcomeRecorder(pool, { maxBatch: config.prefetch }),
    publish: (envelope) => mq.publish(envelope),
    recipientsTotal: metrics.recipients,
    notTriedTotal: metrics.notTried,
    destinationSlots: new DestinationSlots(destinationLimitFor(config.prefetch), mxHandlers),
    suspendedDestinations: new SuspendedDestinations(),
  });
  const consumer = await mq.consume('deliver', instrumentHandler(handler, metrics), {
    retryLadder: config.deliverRetryLadder,
    prefetch: config.prefetch,
    onParked: recordParkedAt(pool, 'deliver'),
  });

  const health = await startHealthServer({
    port: config.healthPort,
    host: config.healthBind,
    registry,
    checks: { amqp: () => mq.isReady(), db: () => databaseReachable(pool) },
  });
  log.info(
    {
      healthPort: health.port,
      relay: config.internalRelay,
      smarthost: config.smarthost,
      mxHandlers,
      connectTimeoutMs,
      dkim: config.dkimDomain ? `${config.dkimSelector}._domainkey.${config.dkimDomain}` : null,
    },
    'deliver started',
  );

  return {
    healthPort: health.port,
    async stop() {
      await consumer.drain();
      clearInterval(idleSweep);
      transports.close();
      await mq.close();
      await health.close();
      await owner.close();
      await pool.end();
      log.info('deliver stopped');
    },
  };
}
