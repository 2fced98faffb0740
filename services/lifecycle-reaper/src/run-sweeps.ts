// One round of every sweep, each under its lock (or, for a dry run, all in one transaction that is rolled back).
// A failing sweep is logged and the others still run: a stuck quarantine purge must not stop token expiry.
import { type BlobFiles, createBlobStore, type KeyStore } from '@smgw/blob-store';
import type { Pool } from '@smgw/db';
import type { InactivitySchedule, MailboxKeyStore } from '@smgw/mailbox-store';
import type { Logger } from '@smgw/observability';
import { withDryRun } from './dry-run.ts';
import type { ReaperMetrics } from './metrics.ts';
import type { Publisher, ReaperTemplates } from './notices.ts';
import { withSweepLock } from './sweep-lock.ts';
import { type KeyFileFolders, SWEEP_NAMES, SWEEPS, type SweepContext, type SweepName } from './sweeps.ts';

export interface ReaperDeps {
  pool: Pool;
  keyStore: KeyStore;
  mailboxKeys: MailboxKeyStore;
  /** Where the notices go (deliver, through the broker). */
  publisher: Publisher;
  templates: ReaperTemplates;
  hostname: string;
  publicUrl: string;
  messageRetentionMs: number;
  traceRetentionMs: number;
  kekPeriodMs: number;
  inactivity: InactivitySchedule;
  parkedRetentionMs: number;
  parkedAction: 'report' | 'remove';
  refusedMessageGraceMs: number;
  /**
   * SMGW_BLOB_DIR, when blob contents are kept in files: the notices' blobs are written there, and `blobFiles`
   * unlinks purged blobs' files and sweeps leftovers. A dry run writes its notices into the database (the rolled-back
   * transaction) and unlinks nothing.
   */
  blobDir?: string | undefined;
  blobFiles?: BlobFiles | undefined;
  /** The key store's folders (the KEK files, the mailbox key files): key-file-leftovers sweeps their crash leftovers. */
  keyFiles?: KeyFileFolders | undefined;
  log: Logger;
  metrics?: ReaperMetrics | undefined;
}

export interface SweepReport {
  sweep: SweepName;
  /** done: ran and removed (or sent) `items`; locked: another replica was running it; failed: see the log. */
  outcome: 'done' | 'locked' | 'failed';
  items: number;
  /** More than the count, for the operator command (parked: how many and since when). */
  note?: string;
}

export async function runSweeps(
  deps: ReaperDeps,
  options: { now: Date; dryRun?: boolean | undefined },
): Promise<SweepReport[]> {
  if (options.dryRun) {
    return withDryRun(deps, (dry) => runEach({ ...dry, metrics: undefined }, options.now, false));
  }
  return runEach(deps, options.now, true);
}

async function runEach(deps: ReaperDeps, now: Date, takeLocks: boolean): Promise<SweepReport[]> {
  const context: SweepContext = {
    ...deps,
    // Over the round's pool: in a dry run the notices' blobs are written into the transaction that is rolled back.
    blobStore: createBlobStore(deps.pool, { keyStore: deps.keyStore, directory: deps.blobDir }),
    now,
  };
  const reports: SweepReport[] = [];
  for (const sweep of SWEEP_NAMES) {
    const started = process.hrtime.bigint();
    try {
      const outcome = takeLocks
        ? await withSweepLock(deps.pool, sweep, () => SWEEPS[sweep](context))
        : { ran: true as const, result: await SWEEPS[sweep](context) };
      if (!outcome.ran) {
        deps.log.debug({ sweep }, 'sweep skipped: another replica holds its lock');
        reports.push({ sweep, outcome: 'locked', items: 0 });
        continue;
      }
      const result = typeof outcome.result === 'number' ? { items: outcome.result } : outcome.result;
      deps.metrics?.sweepSeconds.observe({ sweep }, Number(process.hrtime.bigint() - started) / 1e9);
      deps.metrics?.lastSuccess.set({ sweep }, Date.now() / 1000);
      deps.metrics?.items.inc({ sweep }, result.items);
      if (result.items > 0 && takeLocks) {
        deps.log.info({ code: 'REAPER_SWEEP_DONE', sweep, items: result.items }, 'sweep removed items');
      }
      reports.push({ sweep, outcome: 'done', ...result });
    } catch (err) {
      deps.log.error({ code: 'REAPER_SWEEP_FAILED', sweep, err }, 'sweep failed; the next round goes on from there');
      reports.push({ sweep, outcome: 'failed', items: 0 });
    }
  }
  return reports;
}
