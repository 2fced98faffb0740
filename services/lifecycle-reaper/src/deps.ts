// What a round of sweeps needs, made from the settings: the service and the operator command build it the same way.
import { blobFiles, type KeyStore } from '@smgw/blob-store';
import type { Pool } from '@smgw/db';
import { createFolderMailboxKeyStore, mailboxKeyFolder } from '@smgw/mailbox-store';
import type { Logger } from '@smgw/observability';
import type { ReaperConfig } from './config.ts';
import type { ReaperMetrics } from './metrics.ts';
import { loadReaperTemplates, type Publisher } from './notices.ts';
import type { ReaperDeps } from './run-sweeps.ts';
import { keyFileFolders } from './sweeps.ts';

export async function reaperDeps(
  config: ReaperConfig,
  clients: { pool: Pool; keyStore: KeyStore; publisher: Publisher; log: Logger; metrics?: ReaperMetrics },
): Promise<ReaperDeps> {
  return {
    ...clients,
    mailboxKeys: createFolderMailboxKeyStore(config),
    templates: await loadReaperTemplates(),
    hostname: config.hostname,
    publicUrl: config.publicUrl,
    messageRetentionMs: config.messageRetention,
    traceRetentionMs: config.traceRetention,
    kekPeriodMs: config.kekPeriod,
    inactivity: {
      firstWarningMs: config.inactivityFirstWarning,
      secondWarningMs: config.inactivitySecondWarning,
      deletionMs: config.inactivityDeletion,
      minMessageAgeMs: config.inactivityMinMessageAge,
    },
    parkedRetentionMs: config.parkedRetention,
    parkedAction: config.parkedAction,
    refusedMessageGraceMs: config.refusedMessageGrace,
    blobDir: config.blobDir,
    blobFiles: config.blobDir === undefined ? undefined : blobFiles(config.blobDir),
    keyFiles: keyFileFolders([config.keyStoreDir, mailboxKeyFolder(config.keyStoreDir)]),
  };
}
