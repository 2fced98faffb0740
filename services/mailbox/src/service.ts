// Starts mailbox: database, blob store, broker, consumer, PIN mail sweep, health server. Stops in reverse order.
import { createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { createPool, databaseReachable } from '@smgw/db';
import { connectMq, instrumentHandler } from '@smgw/mq';
import { createRegistry, type Logger, startHealthServer } from '@smgw/observability';
import { recordParkedAt } from '@smgw/trace';
import { createArrivalHandler } from './arrival.ts';
import type { MailboxConfig } from './config.ts';
import { mailboxMetrics } from './metrics.ts';
import { loadMailboxTemplates } from './notices.ts';
import { pinSweepInterval, startPinMailSweep } from './pin-mail-sweep.ts';

export interface RunningMailbox {
  healthPort: number;
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
  const blobStore = createBlobStore(pool, { keyStore: createFolderKeyStore(config) });
  const mq = await connectMq({ url: config.amqpUrl, logger: log, connectionName: 'smgw-mailbox' });
  await mq.declareTopology({ mailbox: config.stageRetryLadder });

  const registry = createRegistry('mailbox');
  const metrics = mailboxMetrics(registry);
  const templates = await loadMailboxTemplates();
  const handler = createArrivalHandler({
    pool,
    blobStore,
    masterKey: config.masterKey,
    masterKeyPrevious: config.masterKeyPrevious,
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
      masterKey: config.masterKey,
      masterKeyPrevious: config.masterKeyPrevious,
      hostname: config.hostname,
      publicUrl: config.publicUrl,
      templates,
      publish: (envelope) => mq.publish(envelope),
      onSent: () => metrics.pinMails.inc(),
    },
    pinSweepInterval(config.pinDelay),
    log,
  );

  const health = await startHealthServer({
    port: config.healthPort,
    host: config.healthBind,
    registry,
    checks: { amqp: () => mq.isReady(), db: () => databaseReachable(pool) },
  });
  log.info({ healthPort: health.port }, 'mailbox started');

  return {
    healthPort: health.port,
    async stop() {
      await consumer.drain();
      await sweep.stop();
      await mq.close();
      await health.close();
      await pool.end();
      log.info('mailbox stopped');
    },
  };
}
