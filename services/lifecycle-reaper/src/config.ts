// The settings the lifecycle reaper reads (SPEC.md "Settings"); main and the operator command load them once.
import {
  blobStoreSettings,
  ConfigError,
  type ConfigOf,
  exitOnConfigError,
  loadConfigOrExit,
  settings,
} from '@smgw/config';

export const reaperSpec = {
  databaseUrl: settings.databaseUrl,
  databaseSchema: settings.databaseSchema,
  // The key store: KEKs no blob names any more are retired from it (kekPeriod says which are old enough), the keys
  // of deleted mailboxes are destroyed in it, and the notices are written to the blob store under its KEKs.
  ...blobStoreSettings,
  // The notices (inactivity warnings, "never read" to senders) are published to deliver.
  amqpUrl: settings.amqpUrl,
  hostname: settings.hostname,
  publicUrl: settings.publicUrl,
  healthPort: settings.healthPort,
  healthBind: settings.healthBind,
  logLevel: settings.logLevel,
  reaperInterval: settings.reaperInterval,
  messageRetention: settings.messageRetention,
  traceRetention: settings.traceRetention,
  inactivityFirstWarning: settings.inactivityFirstWarning,
  inactivitySecondWarning: settings.inactivitySecondWarning,
  inactivityDeletion: settings.inactivityDeletion,
  inactivityMinMessageAge: settings.inactivityMinMessageAge,
  parkedRetention: settings.parkedRetention,
  parkedAction: settings.parkedAction,
  refusedMessageGrace: settings.refusedMessageGrace,
};

export type ReaperConfig = ConfigOf<typeof reaperSpec>;

/** The warnings come in order, and each leaves time before the deletion. */
export function checkInactivitySchedule(config: ReaperConfig): void {
  if (!(config.inactivityFirstWarning < config.inactivitySecondWarning)) {
    throw new ConfigError('SMGW_INACTIVITY_SECOND_WARNING', 'must be later than SMGW_INACTIVITY_FIRST_WARNING');
  }
  if (!(config.inactivitySecondWarning < config.inactivityDeletion)) {
    throw new ConfigError('SMGW_INACTIVITY_DELETION', 'must be later than SMGW_INACTIVITY_SECOND_WARNING');
  }
}

export function loadReaperConfigOrExit(): ReaperConfig {
  const config = loadConfigOrExit('lifecycle-reaper', reaperSpec);
  exitOnConfigError('lifecycle-reaper', () => checkInactivitySchedule(config));
  return config;
}
