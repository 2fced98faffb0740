// The settings the ingest service reads (SPEC.md "Settings"; definitions in @smgw/config).
import { blobStoreSettings, type ConfigOf, settings } from '@smgw/config';

export const ingestSpec = {
  databaseUrl: settings.databaseUrl,
  databaseSchema: settings.databaseSchema,
  ...blobStoreSettings,
  amqpUrl: settings.amqpUrl,
  redisUrl: settings.redisUrl,
  redisPrefix: settings.redisPrefix,
  smtpInboundPort: settings.smtpInboundPort,
  smtpSubmissionPort: settings.smtpSubmissionPort,
  smtpBindHost: settings.smtpBindHost,
  internalDomains: settings.internalDomains,
  submissionNetworks: settings.submissionNetworks,
  maxMessageBytes: settings.maxMessageBytes,
  hostname: settings.hostname,
  tlsCertFile: settings.tlsCertFile,
  tlsKeyFile: settings.tlsKeyFile,
  logLevel: settings.logLevel,
  maxConnectionsPerClient: settings.maxConnectionsPerClient,
  maxRecipients: settings.maxRecipients,
  maxClients: settings.maxClients,
  ipv6ClientPrefix: settings.ipv6ClientPrefix,
  mxAgencySenderExceptions: settings.mxAgencySenderExceptions,
  commandRatePerMinute: settings.commandRatePerMinute,
  fastGreetingForTrusted: settings.fastGreetingForTrusted,
  forbidUnauthPipelining: settings.forbidUnauthPipelining,
  healthPort: settings.healthPort,
  healthBind: settings.healthBind,
} as const;

export type IngestConfig = ConfigOf<typeof ingestSpec>;
