// The settings encrypt reads (SPEC.md "Settings"); main loads them once, `--print-config` shows them (secrets hidden).
import { base64Key, type ConfigOf, setting, settings } from '@smgw/config';

export const encryptSpec = {
  databaseUrl: settings.databaseUrl,
  databaseSchema: settings.databaseSchema,
  amqpUrl: settings.amqpUrl,
  /** Required here: inbound decryption opens the agencies' sealed private keys with it. */
  masterKey: setting('SMGW_MASTER_KEY', base64Key(32), undefined, settings.masterKey.help, {
    secret: true,
    required: true,
  }),
  revocationMode: settings.revocationMode,
  revocationAllow: settings.revocationAllow,
  maxMessageBytes: settings.maxMessageBytes,
  stageRetryLadder: settings.stageRetryLadder,
  prefetch: settings.prefetch,
  healthPort: settings.healthPort,
  healthBind: settings.healthBind,
  logLevel: settings.logLevel,
  internalDomains: settings.internalDomains,
  hostname: settings.hostname,
};

export type EncryptConfig = ConfigOf<typeof encryptSpec>;
