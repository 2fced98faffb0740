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
  inboundVirusNoticesPerHour: settings.inboundVirusNoticesPerHour,
  inboundVirusNoticesPerHourTotal: settings.inboundVirusNoticesPerHourTotal,
  /** One deadline for upload and scan of one message (clamd's own MaxScanTime is 120 s in ./smgw up). */
  clamdTimeoutMs: setting(
    'SMGW_CLAMD_TIMEOUT_MS',
    integer(1000, 3_600_000),
    '180000',
    'deadline for streaming one message to clamd and getting its verdict',
  ),
  /**
   * The longest stream sent to clamd: keep it at clamd's StreamMaxLength. Past it our client stops and the message is
   * quarantined (Smgw.Limits.Exceeded.StreamMaxLength). clamd's own refusal past its limit comes with a close that
   * can beat its answer (a write after it fails, the answer unread): a lost connection, retried until parked, never
   * passed, but not quarantined either. Unset: SMGW_MAX_MESSAGE_BYTES + 1 MiB, what ./smgw up and the manifests set
   * clamd's StreamMaxLength to.
   */
  clamdStreamMaxBytes: setting(
    'SMGW_CLAMD_STREAM_MAX_BYTES',
    integer(1024, 2 ** 31),
    undefined,
    "longest stream sent to clamd (keep it at clamd's StreamMaxLength); unset: SMGW_MAX_MESSAGE_BYTES + 1 MiB",
  ),
  scanPolicy: setting(
    'SMGW_SCAN_PASS_SUSPICIOUS',
    parseScanPolicy,
    '',
    'suspicious findings that pass instead of quarantine, as direction:category (encrypted, limits, broken, heuristic)',
  ),
};

export type ScanConfig = ConfigOf<typeof scanSpec>;
