// The settings the lifecycle reaper reads (SPEC.md "Settings"); main and the operator command load them once.
import { blobStoreSettings, type ConfigOf, settings } from '@smgw/config';

export const reaperSpec = {
  databaseUrl: settings.databaseUrl,
  databaseSchema: settings.databaseSchema,
  // The key store: KEKs no blob names any more are retired from it (kekPeriod says which are old enough).
  ...blobStoreSettings,
  healthPort: settings.healthPort,
  healthBind: settings.healthBind,
  logLevel: settings.logLevel,
  reaperInterval: settings.reaperInterval,
  messageRetention: settings.messageRetention,
};

export type ReaperConfig = ConfigOf<typeof reaperSpec>;
