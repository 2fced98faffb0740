// Starts signature-verify: trusted lists, database, blob store, broker, consumer, health server. Stops in reverse.
import { createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { createRevocationFetcher } from '@smgw/crypto';
import { createPool, databaseReachable } from '@smgw/db';
import { connectMq, instrumentHandler } from '@smgw/mq';
import { createRegistry, type Logger, startHealthServer } from '@smgw/observability';
import { recordParkedAt } from '@smgw/trace';
import type { TrustedListConfig } from '@smgw/trusted-list';
import type { VerifyConfig } from './config.ts';
import { verifyMetrics } from './metrics.ts';
import { loadTrustedLists, qualifiedStatusFrom } from './trusted-lists.ts';
import { createVerify } from './verifier.ts';
import { verifyEnvelope } from './verify-envelope.ts';

/** Room for the PDF and XML reports (base64) beside the message. */
const REPORT_ALLOWANCE_BYTES = 8 * 1024 * 1024;

export interface RunningVerify {
  healthPort: number;
  stop(): Promise<void>;
}

export async function startVerify(
  config: VerifyConfig,
  trustedListConfig: TrustedListConfig,
  log: Logger,
  now: () => Date = () => new Date(),
): Promise<RunningVerify> {
  const trusted = await loadTrustedLists(trustedListConfig, now());
  for (const r of trusted.refused) {
    log.warn(
      { code: 'VERIFY_TRUSTED_LIST_REFUSED', source: r.source, territory: r.territory, reason: r.reason },
      'trusted list not used',
    );
  }
  const pool = createPool({
    url: config.databaseUrl,
    schema: config.databaseSchema,
    applicationName: 'smgw-signature-verify',
    max: Math.min(config.prefetch + 4, 50),
  });
  const blobStore = createBlobStore(pool, { keyStore: createFolderKeyStore(config), directory: config.blobDir });
  const mq = await connectMq({ url: config.amqpUrl, logger: log, connectionName: 'smgw-signature-verify' });
  await mq.declareTopology({ verify: config.stageRetryLadder });

  const registry = createRegistry('signature-verify');
  const metrics = verifyMetrics(registry);
  metrics.trustedLists.set(trusted.lists.length);
  const verify = createVerify({
    pool,
    fetcher: createRevocationFetcher({ now, allow: config.revocationAllow }),
    revocation: config.revocationMode,
    qualifiedStatus: qualifiedStatusFrom(trusted.lists),
    now,
  });
  const deps = {
    pool,
    blobStore,
    verify,
    trustedLists: trusted.lists,
    hostname: config.hostname,
    tryLaterAttempts: config.tryLaterAttempts,
    maxReportBytes: Math.ceil(config.maxMessageBytes * 1.1) + REPORT_ALLOWANCE_BYTES,
    metrics,
  };
  const consumer = await mq.consume(
    'verify',
    instrumentHandler((envelope, context) => verifyEnvelope(deps, envelope, context), metrics),
    { retryLadder: config.stageRetryLadder, prefetch: config.prefetch, onParked: recordParkedAt(pool, 'verify') },
  );

  const health = await startHealthServer({
    port: config.healthPort,
    host: config.healthBind,
    registry,
    checks: { amqp: () => mq.isReady(), db: () => databaseReachable(pool) },
  });
  log.info(
    { healthPort: health.port, trustedLists: trusted.lists.length, revocationMode: config.revocationMode },
    'signature-verify started',
  );
  return {
    healthPort: health.port,
    async stop() {
      await consumer.drain();
      await mq.close();
      await health.close();
      await pool.end();
      log.info('signature-verify stopped');
    },
  };
}
