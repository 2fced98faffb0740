// Builds the ingest service from its settings: database pool, blob store, broker, Redis, the two SMTP listeners
// and the health server. `stop()` shuts down in the order that loses nothing (see below).
import type { AddressInfo } from 'node:net';
import { createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { createPool, databaseReachable, groupCommits } from '@smgw/db';
import { cachedAddressesVerifyingSignatures, listenForKeyDirectoryChanges } from '@smgw/key-directory';
import { connectMq, type Mq } from '@smgw/mq';
import { createRegistry, type Logger, startHealthServer } from '@smgw/observability';
import { type MessageRecord, recordMessages } from '@smgw/trace';
import { Redis } from 'ioredis';
import type { IngestConfig } from './config.ts';
import { withDnsCache } from './dns-cache.ts';
import { createDnsLookup } from './mail-auth.ts';
import { blobDirectoryMetrics, ingestMetrics, scanCopyMetrics } from './metrics.ts';
import { createRateLimits, redisNameSecretFrom } from './rate-limits.ts';
import { createRecipientVerification } from './recipient-verification.ts';
import { createIngestScanner } from './scan-at-ingest.ts';
import { createSmtpListener, DRAIN_TIMEOUT_MS, type ListenerOptions, type SmtpListener } from './smtp-listener.ts';
import { installSmtpServerPatches } from './smtp-server-patches.ts';
import { certificateNotAfter, loadTlsCredentials } from './tls.ts';

/** Messages per group commit at most (each batch is one statement with every message's rows, events and blob rows). */
const RECORD_BATCH_MAX = 32;

export interface RunningIngest {
  inboundPort: number;
  submissionPort: number;
  healthPort: number;
  /** Stops taking connections, lets messages in DATA finish, then closes broker, database and Redis. */
  stop(): Promise<void>;
}

/** Only tests pass these (see ListenerOptions); main.ts never does. */
export type IngestOptions = ListenerOptions;

export async function startIngest(
  config: IngestConfig,
  log: Logger,
  options: IngestOptions = {},
): Promise<RunningIngest> {
  installSmtpServerPatches();
  const tls = await loadTlsCredentials({
    certFile: config.tlsCertFile,
    keyFile: config.tlsKeyFile,
    hostname: config.hostname,
  });
  if (tls.selfSigned) {
    log.warn(
      { code: 'TLS_SELF_SIGNED' },
      'STARTTLS uses a self-signed certificate made at start; set SMGW_TLS_CERT_FILE and SMGW_TLS_KEY_FILE',
    );
  }

  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanUp = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  };
  try {
    const pool = createPool({ url: config.databaseUrl, schema: config.databaseSchema, applicationName: 'smgw-ingest' });
    cleanups.push(() => pool.end());
    const blobStore = createBlobStore(pool, { keyStore: createFolderKeyStore(config), directory: config.blobDir });
    // Who verifies signatures (where clean mail goes after scan) is kept in memory while changes are heard.
    const agencyAddressChanges = listenForKeyDirectoryChanges({
      url: config.databaseUrl,
      applicationName: 'smgw-ingest-listener',
      onLost: (err) =>
        log.warn({ code: 'DB_LISTEN_LOST', err }, 'not hearing key directory changes; asking the database meanwhile'),
    });
    cleanups.push(() => agencyAddressChanges.close());
    const mq: Mq = await connectMq({ url: config.amqpUrl, logger: log, connectionName: 'smgw-ingest' });
    cleanups.push(() => mq.close());
    await mq.declareTopology({});

    const redis = new Redis(config.redisUrl, {
      // Fail fast instead of queueing while Redis is away: the session gets a temporary refusal (REDIS_UNAVAILABLE).
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 2000,
      connectionName: 'smgw-ingest',
    });
    cleanups.push(async () => redis.disconnect());
    let redisDown = false;
    redis.on('error', (err: Error) => {
      if (!redisDown) log.warn({ code: 'REDIS_UNAVAILABLE', err }, 'Redis connection failed; SMTP sessions get 421');
      redisDown = true;
    });
    redis.on('ready', () => {
      if (redisDown) log.info('Redis connection is back');
      redisDown = false;
    });
    await waitForRedis(redis, 5000, log);
    // Names in Redis of accounts and addresses: HMACs, nothing a reader can test a guess against.
    const redisNameSecret = redisNameSecretFrom(config.masterKey);
    const rateLimits = createRateLimits(redis, {
      prefix: config.redisPrefix,
      redisNameSecret,
      maxConnectionsPerClient: config.maxConnectionsPerClient,
      maxConnectionsPerNetwork: config.maxConnectionsPerNetwork,
      commandsPerMinute: config.commandRatePerMinute,
      ipv6ClientPrefix: config.ipv6ClientPrefix,
      tlsSessionsPerMinute: {
        inbound: { client: config.mxTlsSessionsPerMinute, network: config.mxTlsSessionsPerMinutePerNetwork },
        submission: {
          client: config.submissionTlsSessionsPerMinute,
          network: config.submissionTlsSessionsPerMinutePerNetwork,
        },
      },
      submission: {
        account: {
          messages: config.submissionMessagesPerHour,
          recipients: config.submissionRecipientsPerHour,
          bytes: config.submissionBytesPerHour,
        },
        network: {
          messages: config.submissionNetworkMessagesPerHour,
          recipients: config.submissionNetworkRecipientsPerHour,
          bytes: config.submissionNetworkBytesPerHour,
        },
      },
    });

    const registry = createRegistry('ingest');
    const metrics = ingestMetrics(registry);
    if (config.blobDir !== undefined) blobDirectoryMetrics(registry, config.blobDir);
    const tlsNotAfter = certificateNotAfter(tls.cert);
    if (tlsNotAfter) metrics.tlsCertificateExpiry.set(tlsNotAfter.getTime() / 1000);
    const recipientVerification = createRecipientVerification(
      redis,
      {
        mode: config.recipientVerify,
        relays: config.internalRelay,
        hostname: config.hostname,
        prefix: config.redisPrefix,
        redisNameSecret,
        knownTtlMs: config.recipientVerifyKnownTtl,
        unknownTtlMs: config.recipientVerifyUnknownTtl,
        probeTimeoutMs: config.recipientVerifyTimeout,
        maxUnknownPerClient: config.maxUnknownRecipients,
        maxUnknownPerNetwork: config.maxUnknownRecipientsPerNetwork,
        unknownWindowMs: config.unknownRecipientWindow,
        ipv6ClientPrefix: config.ipv6ClientPrefix,
      },
      { counter: metrics.recipientVerifications },
    );

    // Small messages scanned here before their 250, so clean ones skip the scan stage (scan-at-ingest.ts).
    const scanner =
      config.ingestScanMaxBytes > 0
        ? await createIngestScanner({
            clamdUrl: config.clamdUrl,
            maxBytes: config.ingestScanMaxBytes,
            log,
            onResult: (result) => metrics.scans.inc({ result }),
          })
        : undefined;
    if (scanner) {
      cleanups.push(() => scanner.close());
      scanCopyMetrics(registry, () => scanner.copyBudget.held());
    }

    const deps = {
      settings: {
        hostname: config.hostname,
        internalDomains: config.internalDomains,
        submissionNetworks: config.submissionNetworks,
        maxMessageBytes: config.maxMessageBytes,
        maxRecipients: config.maxRecipients,
        maxErrorsPerSession: config.maxErrorsPerSession,
        maxClients: config.maxClients,
        mxAgencySenderExceptions: config.mxAgencySenderExceptions,
        fastGreetingForTrusted: config.fastGreetingForTrusted,
        forbidUnauthPipelining: config.forbidUnauthPipelining,
      },
      tls,
      pool,
      accept: {
        pool,
        blobStore,
        mq,
        hostname: config.hostname,
        internalDomains: config.internalDomains,
        maxMessageBytes: config.maxMessageBytes,
        mailAuth:
          config.mailAuth === 'on'
            ? {
                hostname: config.hostname,
                dmarcReject: config.dmarcReject,
                dnsFailure: config.dnsFailure,
                lookup: withDnsCache(
                  createDnsLookup({ servers: config.dnsResolvers, timeoutMs: config.dnsTimeoutMs }),
                  { ttlMs: config.dnsCacheSeconds * 1000 },
                ),
              }
            : undefined,
        scanner,
        verifyingSignatures: cachedAddressesVerifyingSignatures(pool, agencyAddressChanges),
        // The messages of all sessions that reach their commit while one statement runs share the next one.
        recordAccepted: groupCommits<MessageRecord>((records) => recordMessages(pool, records), {
          maxBatch: RECORD_BATCH_MAX,
        }),
      },
      rateLimits,
      recipientVerification,
      metrics,
      log,
    };
    const inbound = createSmtpListener('inbound', deps, options);
    const submission = createSmtpListener('submission', deps, options);
    const inboundPort = await listen(inbound, config.smtpInboundPort, config.smtpBindHost);
    cleanups.push(() => closeListener(inbound, 0, log));
    const submissionPort = await listen(submission, config.smtpSubmissionPort, config.smtpBindHost);
    cleanups.push(() => closeListener(submission, 0, log));

    const health = await startHealthServer({
      port: config.healthPort,
      host: config.healthBind,
      registry,
      checks: {
        amqp: () => mq.isReady(),
        db: () => databaseReachable(pool),
        redis: () => redis.status === 'ready',
      },
    });
    log.info({ inboundPort, submissionPort, healthPort: health.port, bind: config.smtpBindHost }, 'ingest listening');

    let stopping: Promise<void> | undefined;
    return {
      inboundPort,
      submissionPort,
      healthPort: health.port,
      stop() {
        stopping ??= (async () => {
          // 1. No new connections; sessions in DATA finish (their publishes are confirmed), the rest get 421.
          await Promise.all([
            closeListener(inbound, DRAIN_TIMEOUT_MS, log),
            closeListener(submission, DRAIN_TIMEOUT_MS, log),
          ]);
          // 2. Then the clients they used: clamd, broker (waits for outstanding confirms), database, Redis, health.
          await health.close();
          await scanner
            ?.close()
            .catch((err: unknown) => log.warn({ code: 'CLAMD_CLOSE_FAILED', err }, 'closing clamd'));
          await mq.close().catch((err: unknown) => log.warn({ code: 'MQ_CLOSE_FAILED', err }, 'closing the broker'));
          await agencyAddressChanges.close();
          await pool.end().catch(() => {});
          await redis.quit().catch(() => redis.disconnect());
          log.info('ingest stopped');
        })();
        return stopping;
      },
    };
  } catch (err) {
    await cleanUp();
    throw err;
  }
}

/** Waits until Redis is ready or has failed once (at most `timeoutMs`); never throws. */
async function waitForRedis(redis: Redis, timeoutMs: number, log: Logger): Promise<void> {
  if (redis.status === 'ready') return;
  const ready = await new Promise<boolean>((resolve) => {
    const done = (value: boolean) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onError);
      resolve(value);
    };
    const onReady = () => done(true);
    const onError = () => done(false);
    const timer = setTimeout(() => done(false), timeoutMs);
    redis.once('ready', onReady);
    redis.once('error', onError);
  });
  // Start anyway: sessions get a temporary 421 until Redis is there, and /readyz says redis: false.
  if (!ready) log.warn({ code: 'REDIS_UNAVAILABLE' }, 'Redis is not reachable; starting without it');
}

function listen(listener: SmtpListener, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    listener.server.server.once('error', reject);
    listener.server.listen(port, host, () => {
      listener.server.server.off('error', reject);
      resolve((listener.server.server.address() as AddressInfo).port);
    });
  });
}

/**
 * Stops accepting; waits (at most `drainMs`) for messages that are being received to be answered; then ends the
 * remaining sessions with 421 and resolves when every socket is gone.
 */
async function closeListener(listener: SmtpListener, drainMs: number, log: Logger): Promise<void> {
  const { server } = listener;
  if (!server.server.listening && server.connections.size === 0) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const drained = Promise.allSettled([...listener.inFlight]);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, drainMs);
  });
  await Promise.race([drained, timeout]);
  clearTimeout(timer);
  if (listener.inFlight.size > 0) {
    log.warn({ code: 'SHUTDOWN_DRAIN_TIMEOUT', listener: listener.listener }, 'closing sessions still in DATA');
  }
  for (const connection of server.connections) {
    connection.send(421, '4.3.2 Service shutting down');
    connection.close();
  }
  await closed;
}
