// The settings scan reads (SPEC.md "Settings"); main loads them once, `--print-config` shows them.
import { blobStoreSettings, type ConfigOf, integer, setting, settings } from '@smgw/config';
import { parseScanPolicy } from './scan-policy.ts';

export const scanSpec = {
  databaseUrl: settings.databaseUrl,
  databaseSchema: settings.databaseSchema,
  ...blobStoreSettings,
  amqpUrl: settings.amqpUrl,
  clamdUrl: settings.clamdUrl,
  maxMessageBytes: settings.maxMessageBytes,
  stageRetryLadder: settings.stageRetryLadder,
  prefetch: settings.prefetch,
  healthPort: settings.healthPort,
  healthBind: settings.healthBind,
  logLevel: settings.logLevel,
  hostname: settings.hostname,
  quarantineRetention: settings.quarantineRetention,
  inboundVirusNoticeTo: settings.inboundVirusNoticeTo,
  /** One deadline for upload and scan of one message (clamd's own MaxScanTime is 120 s in ./smgw up). */
  clamdTimeoutMs: setting(
    'SMGW_CLAMD_TIMEOUT_MS',
    integer(1000, 3_600_000),
    '180000',
    'deadline for streaming one message to clamd and getting its verdict',
  ),
  scanPolicy: setting(
    'SMGW_SCAN_PASS_SUSPICIOUS',
    parseScanPolicy,
    '',
    'suspicious findings that pass instead of quarantine, as direction:category (encrypted, limits, broken, heuristic)',
  ),
};

export type ScanConfig = ConfigOf<typeof scanSpec>;
