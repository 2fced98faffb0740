// Starts scan: database, blob store, broker, clamd watch and sessions, consumer, health server. Stops in reverse order.
import type { Readable } from 'node:stream';
import { createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { createClamdPool, watchClamd } from '@smgw/clamd';
import { createPool, databaseReachable } from '@smgw/db';
import { connectMq, instrumentHandler } from '@smgw/mq';
import { createRegistry, type Logger, startHealthServer } from '@smgw/observability';
import { DEFAULT_SIGNED_CONTENT_LIMITS } from '@smgw/signature-verify';
import { recordParkedAt } from '@smgw/trace';
import type { ScanConfig } from './config.ts';
import { scanMetrics } from './metrics.ts';
import { loadNoticeTemplates } from './notice.ts';
import { createScanHandler } from './scan-envelope.ts';
import { archiveLimitsFor } from './zip-members.ts';

/** What clamd may be sent beyond SMGW_MAX_MESSAGE_BYTES: our Received header and the like (./smgw up sets StreamMaxLength to match). */
export const STREAM_SLACK_BYTES = 1024 * 1024;

export interface RunningScan {
  healthPort: number;
  /** Stops consuming, lets in-flight envelopes finish, closes broker and database. */
  stop(): Promise<void>;
}

export async function startScan(config: ScanConfig, log: Logger): Promise<RunningScan> {
  const pool = createPool({
    url: config.databaseUrl,
    schema: config.databaseSchema,
    applicationName: 'smgw-scan',
    max: Math.min(config.prefetch + 4, 50),
  });
  const blobStore = createBlobStore(pool, { keyStore: createFolderKeyStore(config), directory: config.blobDir });
  const mq = await connectMq({ url: config.amqpUrl, logger: log, connectionName: 'smgw-scan' });
  await mq.declareTopology({ scan: config.stageRetryLadder });

  const registry = createRegistry('scan');
  const metrics = scanMetrics(registry);
  const target = { url: config.clamdUrl };
  const clamd = watchClamd(target, log, (up) => metrics.clamdUp.set(up ? 1 : 0));
  await clamd.check();
  const clamdPoll = setInterval(() => void clamd.check(), 10_000);
  clamdPoll.unref();
  // One clamd session per envelope in flight: scans reuse connections instead of opening one per message.
  const clamdSessions = createClamdPool({ ...target, maxSessions: config.prefetch });
  // clamd's StreamMaxLength (README "clamd configuration").
  const clamdStreamMaxBytes = config.clamdStreamMaxBytes ?? config.maxMessageBytes + STREAM_SLACK_BYTES;

  const handler = createScanHandler({
    pool,
    blobStore,
    scan: (open: () => Readable) =>
      clamdSessions.scanStream(open, {
        deadlineMs: config.clamdTimeoutMs,
        maxBytes: clamdStreamMaxBytes,
      }),
    engine: () => clamd.engine(),
    policy: config.scanPolicy,
    quarantineRetentionMs: config.quarantineRetention,
    inboundNoticeTo: config.inboundVirusNoticeTo,
    inboundNoticesPerHour: config.inboundVirusNoticesPerHour,
    inboundNoticesPerHourTotal: config.inboundVirusNoticesPerHourTotal,
    hostname: config.hostname,
    // A message may be signed content inside a signature inside the message (signed, encrypted, signed: decrypted
    // before scan): twice the largest message is what real mail takes out of its SignedData.
    signedContentLimits: { ...DEFAULT_SIGNED_CONTENT_LIMITS, maxBytes: 2 * config.maxMessageBytes },
    // Zip members are counted against the stream limit (the MaxFileSize a clamd configured otherwise may have; the
    // shipped one has MaxFileSize = MaxScanSize), MaxScanSize (4×), MaxRecursion 16.
    archiveLimits: archiveLimitsFor(clamdStreamMaxBytes),
    templates: await loadNoticeTemplates(),
    metrics,
  });
  const consumer = await mq.consume('scan', instrumentHandler(handler, metrics), {
    retryLadder: config.stageRetryLadder,
    prefetch: config.prefetch,
    onParked: recordParkedAt(pool, 'scan'),
  });

  const health = await startHealthServer({
    port: config.healthPort,
    host: config.healthBind,
    registry,
    checks: { amqp: () => mq.isReady(), db: () => databaseReachable(pool), clamd: () => clamd.check() },
  });
  log.info({ healthPort: health.port, clamd: config.clamdUrl, engine: clamd.engine() }, 'scan started');

  return {
    healthPort: health.port,
    async stop() {
      await consumer.drain();
      await clamdSessions.close();
      clearInterval(clamdPoll);
      await mq.close();
      await health.close();
      await pool.end();
      log.info('scan stopped');
    },
  };
}
