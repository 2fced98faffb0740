// The settings the mailbox stage reads (SPEC.md "Settings"); main loads them once, `--print-config` shows them.
import { blobStoreSettings, type ConfigOf, settings } from '@smgw/config';

export const mailboxSpec = {
  databaseUrl: settings.databaseUrl,
  databaseSchema: settings.databaseSchema,
  // The pipeline's blob is read here, and the generated mails are written to the blob store; the master key also
  // unseals each mailbox's data key.
  ...blobStoreSettings,
  amqpUrl: settings.amqpUrl,
  stageRetryLadder: settings.stageRetryLadder,
  prefetch: settings.prefetch,
  healthPort: settings.healthPort,
  healthBind: settings.healthBind,
  logLevel: settings.logLevel,
  hostname: settings.hostname,
  publicUrl: settings.publicUrl,
  mailboxQuotaBytes: settings.mailboxQuotaBytes,
  internalDomains: settings.internalDomains,
  portalMaxUploadBytes: settings.portalMaxUploadBytes,
  pinDelay: settings.pinDelay,
  activationLinkLifetime: settings.activationLinkLifetime,
  reactivationLinkLifetime: settings.reactivationLinkLifetime,
  // The portal (src/portal/): sessions and rate limits in Redis.
  redisUrl: settings.redisUrl,
  redisPrefix: settings.redisPrefix,
  portalPort: settings.portalPort,
  portalBind: settings.portalBind,
  portalSessionIdle: settings.portalSessionIdle,
  portalSessionMax: settings.portalSessionMax,
  portalTrustProxy: settings.portalTrustProxy,
  pinMaxAttempts: settings.pinMaxAttempts,
  /** Certificates uploaded on /schluessel are validated as the admin API validates them. */
  revocationMode: settings.revocationMode,
  revocationAllow: settings.revocationAllow,
  portalRequestsPerMinute: settings.portalRequestsPerMinute,
  portalMessageViewsPerMinute: settings.portalMessageViewsPerMinute,
  portalViewTimeLimitSeconds: settings.portalViewTimeLimitSeconds,
  portalViewWorkers: settings.portalViewWorkers,
  portalSendsPerHour: settings.portalSendsPerHour,
};

export type MailboxConfig = ConfigOf<typeof mailboxSpec>;
