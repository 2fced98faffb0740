// Starts mailbox: database, blob store, broker, consumer, PIN mail sweep, Redis and the portal, health server. Stops
// in reverse order: the portal first (no new requests), then the consumer.
import { createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { createPool, databaseReachable } from '@smgw/db';
import { createFolderMailboxKeyStore } from '@smgw/mailbox-store';
import { connectMq, instrumentHandler } from '@smgw/mq';
import { createRegistry, type Logger, startHealthServer } from '@smgw/observability';
import { recordParkedAt } from '@smgw/trace';
import { Redis } from 'ioredis';
import { createArrivalHandler } from './arrival.ts';
import type { MailboxConfig } from './config.ts';
import { mailboxMetrics } from './metrics.ts';
import { loadMailboxTemplates } from './notices.ts';
import { pinSweepInterval, startPinMailSweep } from './pin-mail-sweep.ts';
import { buildPortal } from './portal/app.ts';

export interface RunningMailbox {
  healthPort: number;
  portalPort: number;
  /** Stops consuming and sweeping, lets in-flight work finish, closes broker and database. */
  stop(): Promise<void>;
}

export async function startMailbox(config: MailboxConfig, log: Logger): Promise<RunningMailbox> {
  const pool = createPool({
    url: config.databaseUrl,
    schema: config.databaseSchema,
    applicationName: 'smgw-mailbox',
    max: Math.min(config.prefetch + 4, 50),
  });
  const blobStore = createBlobStore(pool, { keyStore: createFolderKeyStore(config), directory: config.blobDir });
  const mailboxKeys = createFolderMailboxKeyStore(config);
  const mq = await connectMq({ url: config.amqpUrl, logger: log, connectionName: 'smgw-mailbox' });
  await mq.declareTopology({ mailbox: config.stageRetryLadder });

  const registry = createRegistry('mailbox');
  const metrics = mailboxMetrics(registry);
  const templates = await loadMailboxTemplates();
  const handler = createArrivalHandler({
    pool,
    blobStore,
    mailboxKeys,
    hostname: config.hostname,
    publicUrl: config.publicUrl,
    quotaBytes: config.mailboxQuotaBytes,
    pinDelayMs: config.pinDelay,
    linkLifetimeMs: config.activationLinkLifetime,
    templates,
    metrics,
  });
  const consumer = await mq.consume('mailbox', instrumentHandler(handler, metrics), {
    retryLadder: config.stageRetryLadder,
    prefetch: config.prefetch,
    onParked: recordParkedAt(pool, 'mailbox'),
  });
  const sweep = startPinMailSweep(
    {
      pool,
      blobStore,
      mailboxKeys,
      hostname: config.hostname,
      publicUrl: config.publicUrl,
      templates,
      publish: (envelope) => mq.publish(envelope),
      onSent: () => metrics.pinMails.inc(),
      onFailed: ({ mail, outcome, code }) => metrics.tokenMailFailures.inc({ mail, outcome, code }),
    },
    pinSweepInterval(config.pinDelay),
    log,
  );

  const redis = new Redis(config.redisUrl, {
    // Fail fast instead of queueing while Redis is away: the page answers 500 (sessions and limits live there).
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: 2000,
    connectionName: 'smgw-mailbox-portal',
  });
  let redisDown = false;
  redis.on('error', (err: Error) => {
    if (!redisDown) log.warn({ code: 'REDIS_UNAVAILABLE', err }, 'Redis connection failed; portal pages answer 500');
    redisDown = true;
  });
  redis.on('ready', () => {
    redisDown = false;
  });
  const portal = await buildPortal({
    pool,
    redis,
    blobStore,
    mailboxKeys,
    masterKey: config.masterKey,
    templates,
    publish: (envelope) => mq.publish(envelope),
    logger: log,
    settings: {
      publicUrl: config.publicUrl,
      hostname: config.hostname,
      sessionIdleMs: config.portalSessionIdle,
      sessionMaxMs: config.portalSessionMax,
      trustProxy: config.portalTrustProxy,
      pinMaxAttempts: config.pinMaxAttempts,
      pinDelayMs: config.pinDelay,
      linkLifetimeMs: config.activationLinkLifetime,
      reactivationLinkLifetimeMs: config.reactivationLinkLifetime,
      quotaBytes: config.mailboxQuotaBytes,
      redisPrefix: config.redisPrefix,
      internalDomains: config.internalDomains,
      revocationMode: config.revocationMode,
      revocationAllow: config.revocationAllow,
      maxUploadBytes: config.portalMaxUploadBytes,
      requestsPerClientPerMinute: config.portalRequestsPerMinute,
      messageViewsPerClientPerMinute: config.portalMessageViewsPerMinute,
      messageViewCpuLimitMs: config.portalViewTimeLimitSeconds * 1000,
      messageViewWorkers: config.portalViewWorkers,
      sendsPerClientPerHour: config.portalSendsPerHour,
    },
  });
  await portal.listen({ port: config.portalPort, host: config.portalBind });
  const portalAddress = portal.server.address();
  const portalPort = typeof portalAddress === 'object' && portalAddress ? portalAddress.port : config.portalPort;

  const health = await startHealthServer({
    port: config.healthPort,
    host: config.healthBind,
    registry,
    checks: { amqp: () => mq.isReady(), db: () => databaseReachable(pool), redis: () => redis.status === 'ready' },
  });
  log.info({ healthPort: health.port, portalPort }, 'mailbox started');

  return {
    healthPort: health.port,
    portalPort,
    async stop() {
      await portal.close();
      redis.disconnect();
      await consumer.drain();
      await sweep.stop();
      await mq.close();
      await health.close();
      await pool.end();
      log.info('mailbox stopped');
    },
  };
}
