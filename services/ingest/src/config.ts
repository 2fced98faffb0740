// The settings the ingest service reads (SPEC.md "Settings"; definitions in @smgw/config).
import { blobStoreSettings, ConfigError, type ConfigOf, settings } from '@smgw/config';

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
  clamdUrl: settings.clamdUrl,
  ingestScanMaxBytes: settings.ingestScanMaxBytes,
  hostname: settings.hostname,
  tlsCertFile: settings.tlsCertFile,
  tlsKeyFile: settings.tlsKeyFile,
  logLevel: settings.logLevel,
  maxConnectionsPerClient: settings.maxConnectionsPerClient,
  maxConnectionsPerNetwork: settings.maxConnectionsPerNetwork,
  maxRecipients: settings.maxRecipients,
  submissionMessagesPerHour: settings.submissionMessagesPerHour,
  submissionRecipientsPerHour: settings.submissionRecipientsPerHour,
  submissionBytesPerHour: settings.submissionBytesPerHour,
  submissionNetworkMessagesPerHour: settings.submissionNetworkMessagesPerHour,
  submissionNetworkRecipientsPerHour: settings.submissionNetworkRecipientsPerHour,
  submissionNetworkBytesPerHour: settings.submissionNetworkBytesPerHour,
  maxErrorsPerSession: settings.maxErrorsPerSession,
  maxClients: settings.maxClients,
  ipv6ClientPrefix: settings.ipv6ClientPrefix,
  mxAgencySenderExceptions: settings.mxAgencySenderExceptions,
  internalRelay: settings.internalRelay,
  recipientVerify: settings.recipientVerify,
  recipientVerifyKnownTtl: settings.recipientVerifyKnownTtl,
  recipientVerifyUnknownTtl: settings.recipientVerifyUnknownTtl,
  recipientVerifyTimeout: settings.recipientVerifyTimeout,
  maxUnknownRecipients: settings.maxUnknownRecipients,
  maxUnknownRecipientsPerNetwork: settings.maxUnknownRecipientsPerNetwork,
  unknownRecipientWindow: settings.unknownRecipientWindow,
  commandRatePerMinute: settings.commandRatePerMinute,
  mxTlsSessionsPerMinute: settings.mxTlsSessionsPerMinute,
  mxTlsSessionsPerMinutePerNetwork: settings.mxTlsSessionsPerMinutePerNetwork,
  submissionTlsSessionsPerMinute: settings.submissionTlsSessionsPerMinute,
  submissionTlsSessionsPerMinutePerNetwork: settings.submissionTlsSessionsPerMinutePerNetwork,
  mailAuth: settings.mailAuth,
  dmarcReject: settings.dmarcReject,
  dnsFailure: settings.dnsFailure,
  dnsResolvers: settings.dnsResolvers,
  dnsTimeoutMs: settings.dnsTimeoutMs,
  dnsCacheSeconds: settings.dnsCacheSeconds,
  fastGreetingForTrusted: settings.fastGreetingForTrusted,
  forbidUnauthPipelining: settings.forbidUnauthPipelining,
  healthPort: settings.healthPort,
  healthBind: settings.healthBind,
} as const;

export type IngestConfig = ConfigOf<typeof ingestSpec>;

/**
 * The hourly byte budgets hold at least one message of the largest size: a smaller one would answer such a message
 * 451 every hour until the client gave up on it days later (ConfigError naming the budget otherwise).
 */
export function checkSubmissionByteLimits(
  config: Pick<IngestConfig, 'maxMessageBytes' | 'submissionBytesPerHour' | 'submissionNetworkBytesPerHour'>,
): void {
  const budgets = [
    ['SMGW_SUBMISSION_BYTES_PER_HOUR', config.submissionBytesPerHour],
    ['SMGW_SUBMISSION_NETWORK_BYTES_PER_HOUR', config.submissionNetworkBytesPerHour],
  ] as const;
  for (const [name, bytes] of budgets) {
    if (bytes < config.maxMessageBytes) {
      throw new ConfigError(name, `must be at least SMGW_MAX_MESSAGE_BYTES (${config.maxMessageBytes}), got ${bytes}`);
    }
  }
}
