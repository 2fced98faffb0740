// Starts encrypt: database, blob store, broker, revocation fetcher, consumer, health server. Stops in reverse order.
import { createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { createPathValidationCache, createRevocationFetcher, startDecryptionWorkers } from '@smgw/crypto';
import { createPool, databaseReachable } from '@smgw/db';
import { agencyCertificateExpiries, cachedKeyDirectory, listenForKeyDirectoryChanges } from '@smgw/key-directory';
import { connectMq, instrumentHandler } from '@smgw/mq';
import { createRegistry, type Logger, startHealthServer } from '@smgw/observability';
import { recordParkedAt } from '@smgw/trace';
import type { EncryptConfig } from './config.ts';
import { createEncryptHandler } from './encrypt-envelope.ts';
import { encryptMetrics } from './metrics.ts';

/**
 * How long a recipient certificate's successful validation is reused for the next messages to it (never past a
 * notAfter on its path nor a revocation answer's nextUpdate): the revocation answers themselves are cached until
 * their nextUpdate, so this adds at most a minute to how late a revocation is seen, and spares each message the path
 * validation.
 */
const RECIPIENT_VALIDATION_REUSE_MS = 60_000;

/** An encrypted copy may be this much larger than the original (base64 4/3, line ends, armour, CMS framing). */
const ENCRYPTED_GROWTH = 1.5;

export interface RunningEncrypt {
  healthPort: number;
  /** Stops consuming, lets in-flight envelopes finish, closes broker and database. */
  stop(): Promise<void>;
}

export async function startEncrypt(
  config: EncryptConfig,
  log: Logger,
  now: () => Date = () => new Date(),
): Promise<RunningEncrypt> {
  const pool = createPool({
    url: config.databaseUrl,
    schema: config.databaseSchema,
    applicationName: 'smgw-encrypt',
    max: Math.min(config.prefetch * 2 + 4, 50),
  });
  const blobStore = createBlobStore(pool, { keyStore: createFolderKeyStore(config), directory: config.blobDir });
  // Trust anchors and who signs are kept in memory while their changes are heard (migration 017).
  const keyDirectoryChanges = listenForKeyDirectoryChanges({
    url: config.databaseUrl,
    applicationName: 'smgw-encrypt-listener',
    onLost: (err) =>
      log.warn({ code: 'DB_LISTEN_LOST', err }, 'not hearing key directory changes; asking the database meanwhile'),
  });
  const mq = await connectMq({ url: config.amqpUrl, logger: log, connectionName: 'smgw-encrypt' });
  await mq.declareTopology({ encrypt: config.stageRetryLadder });

  // Inbound decryption runs in worker threads under a time limit (openpgp can be made to take seconds per MB).
  const decryptionWorkers = startDecryptionWorkers({ size: config.decryptWorkers });

  const registry = createRegistry('encrypt');
  const metrics = encryptMetrics(registry, () => agencyCertificateExpiries(pool));
  const handler = createEncryptHandler({
    pool,
    keyDirectory: cachedKeyDirectory(pool, keyDirectoryChanges),
    blobStore,
    fetcher: createRevocationFetcher({ now, allow: config.revocationAllow }),
    revocationMode: config.revocationMode,
    validations: createPathValidationCache({ ttlMs: RECIPIENT_VALIDATION_REUSE_MS }),
    masterKey: config.masterKey,
    masterKeyPrevious: config.masterKeyPrevious,
    maxMessageBytes: config.maxMessageBytes,
    hostname: config.hostname,
    internalDomains: config.internalDomains,
    maxEncryptedBytes: Math.ceil(config.maxMessageBytes * ENCRYPTED_GROWTH) + 1024 * 1024,
    decryptionWorkers,
    decryptionCpuLimitMs: config.decryptTimeLimitSeconds * 1000,
    metrics,
    now,
  });
  const consumer = await mq.consume('encrypt', instrumentHandler(handler, metrics), {
    retryLadder: config.stageRetryLadder,
    prefetch: config.prefetch,
    onParked: recordParkedAt(pool, 'encrypt'),
  });

  const health = await startHealthServer({
    port: config.healthPort,
    host: config.healthBind,
    registry,
    checks: { amqp: () => mq.isReady(), db: () => databaseReachable(pool) },
  });
  log.info({ healthPort: health.port, revocationMode: config.revocationMode }, 'encrypt started');

  return {
    healthPort: health.port,
    async stop() {
      await consumer.drain();
      await decryptionWorkers.close();
      await mq.close();
      await health.close();
      await keyDirectoryChanges.close();
      await pool.end();
      log.info('encrypt stopped');
    },
  };
}
