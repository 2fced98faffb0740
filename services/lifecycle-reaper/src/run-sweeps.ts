// One round of every sweep, each under its lock (or, for a dry run, all in one transaction that is rolled back).
// A failing sweep is logged and the others still run: a stuck quarantine purge must not stop token expiry.
import type { KeyStore } from '@smgw/blob-store';
import type { Pool } from '@smgw/db';
import type { Logger } from '@smgw/observability';
import { withDryRun } from './dry-run.ts';
import type { ReaperMetrics } from './metrics.ts';
import { withSweepLock } from './sweep-lock.ts';
import { SWEEP_NAMES, SWEEPS, type SweepName } from './sweeps.ts';

export interface ReaperDeps {
  pool: Pool;
  keyStore: KeyStore;
  messageRetentionMs: number;
  kekPeriodMs: number;
  log: Logger;
  metrics?: ReaperMetrics | undefined;
}

export interface SweepReport {
  sweep: SweepName;
  /** done: ran and removed `items`; locked: another replica was running it; failed: see the log. */
  outcome: 'done' | 'locked' | 'failed';
  items: number;
}

export async function runSweeps(
  deps: ReaperDeps,
  options: { now: Date; dryRun?: boolean | undefined },
): Promise<SweepReport[]> {
  if (options.dryRun) {
    return withDryRun(deps.pool, deps.keyStore, (pool, keyStore) =>
      runEach({ ...deps, pool, keyStore }, options.now, false),
    );
  }
  return runEach(deps, options.now, true);
}

async function runEach(deps: ReaperDeps, now: Date, takeLocks: boolean): Promise<SweepReport[]> {
  const context = {
    pool: deps.pool,
    keyStore: deps.keyStore,
    now,
    messageRetentionMs: deps.messageRetentionMs,
    kekPeriodMs: deps.kekPeriodMs,
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
      const items = outcome.result;
      deps.metrics?.sweepSeconds.observe({ sweep }, Number(process.hrtime.bigint() - started) / 1e9);
      deps.metrics?.lastSuccess.set({ sweep }, Date.now() / 1000);
      deps.metrics?.items.inc({ sweep }, items);
      if (items > 0 && takeLocks) deps.log.info({ code: 'REAPER_SWEEP_DONE', sweep, items }, 'sweep removed items');
      reports.push({ sweep, outcome: 'done', items });
    } catch (err) {
      deps.log.error({ code: 'REAPER_SWEEP_FAILED', sweep, err }, 'sweep failed; the next round goes on from there');
      reports.push({ sweep, outcome: 'failed', items: 0 });
    }
  }
  return reports;
}
