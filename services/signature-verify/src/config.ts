// The settings signature-verify reads (README "Settings"); main loads them once, `--print-config` shows them.
import { blobStoreSettings, type ConfigOf, integer, setting, settings } from '@smgw/config';
import { trustedListSettings } from '@smgw/trusted-list';

export const verifySpec = {
  databaseUrl: settings.databaseUrl,
  databaseSchema: settings.databaseSchema,
  /** The master key opens the blob store: the message is read, and the report message written, there. */
  ...blobStoreSettings,
  amqpUrl: settings.amqpUrl,
  revocationMode: settings.revocationMode,
  revocationAllow: settings.revocationAllow,
  maxMessageBytes: settings.maxMessageBytes,
  stageRetryLadder: settings.stageRetryLadder,
  prefetch: settings.prefetch,
  healthPort: settings.healthPort,
  healthBind: settings.healthBind,
  logLevel: settings.logLevel,
  hostname: settings.hostname,
  /** Optional: without a trusted list no signature is called qualified (QES). */
  ...trustedListSettings,
  tryLaterAttempts: setting(
    'SMGW_VERIFY_TRY_LATER_ATTEMPTS',
    integer(0, 20),
    '3',
    'retries (by SMGW_STAGE_RETRY_LADDER) while OCSP/CRL is unreachable; then the message goes on, INDETERMINATE TRY_LATER',
  ),
};

export type VerifyConfig = ConfigOf<typeof verifySpec>;
