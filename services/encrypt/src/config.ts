// The settings encrypt reads (SPEC.md "Settings"); main loads them once, `--print-config` shows them (secrets hidden).
import { blobStoreSettings, type ConfigOf, settings } from '@smgw/config';

export const encryptSpec = {
  databaseUrl: settings.databaseUrl,
  databaseSchema: settings.databaseSchema,
  amqpUrl: settings.amqpUrl,
  /** The master key is required here: it opens the key store of blobs and the agencies' sealed private keys. */
  ...blobStoreSettings,
  revocationMode: settings.revocationMode,
  revocationAllow: settings.revocationAllow,
  maxMessageBytes: settings.maxMessageBytes,
  stageRetryLadder: settings.stageRetryLadder,
  prefetch: settings.prefetch,
  decryptTimeLimitSeconds: settings.decryptTimeLimitSeconds,
  decryptWorkers: settings.decryptWorkers,
  healthPort: settings.healthPort,
  healthBind: settings.healthBind,
  logLevel: settings.logLevel,
  internalDomains: settings.internalDomains,
  hostname: settings.hostname,
};

export type EncryptConfig = ConfigOf<typeof encryptSpec>;
