// One chaos run: servers of its own, the whole gateway with two replicas of every queue worker, recipient
// certificates, then the load and the nemeses side by side, then a wait until every queue has drained, and the
// checker's verdict. `./smgw chaos` and the crash test in `./smgw test` are both this function at two sizes.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type PrivateServers, startPrivateServers, startTestGateway, type TestGateway, waitFor } from '@smgw/testing';
import { check, formatVerdict, type Verdict } from './checker.ts';
import { LoadRecord, sendWorkload } from './generator.ts';
import { type NemesisEvent, type NemesisKind, planNemeses, unleash } from './nemeses.ts';
import { observe } from './observe.ts';

import { seededRandom } from './random.ts';
import { issueRecipientCertificates } from './recipient-certificates.ts';
import { superviseProcesses } from './supervisor.ts';
import { CERTIFICATE_HOLDERS, planWorkload } from './workload.ts';

export interface ChaosOptions {
  messages: number;
  seed: number;
  /** Each of these once, at a random point of the load. */
  nemeses: readonly NemesisKind[];
  /** Further kill -9s of random replicas. */
  extraKills: number;
  /** Parallel SMTP clients (default 16). */
  concurrency?: number;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

export interface ChaosRun {
  runId: string;
  verdict: Verdict;
  table: string;
  /** Where each process's last output was written when the run failed. */
  logsDir?: string;
}

/** The services of a run; two processes of every queue worker, so one can be killed while the other goes on. */
const SERVICES = ['ingest', 'scan', 'encrypt', 'deliver', 'mailbox', 'admin'];
const REPLICAS = { scan: 2, encrypt: 2, deliver: 2, mailbox: 2 };

/** Settings of the run: ladders short enough to end within minutes, long enough to outlast every fault. */
const RUN_SETTINGS: Record<string, string> = {
  SMGW_DELIVER_RETRY_LADDER: '1s,2s,3s,5s,10s,15s,20s,30s,30s,60s,60s,60s',
  SMGW_STAGE_RETRY_LADDER: '1s,2s,3s,5s,10s,15s,30s,30s,60s,60s',
  SMGW_PREFETCH: '8',
  SMGW_SMTP_MAX_CONNECTIONS_PER_CLIENT: '1000',
  SMGW_SMTP_COMMANDS_PER_MINUTE: '1000000',
  // The load comes from one trusted client address: the hourly submission limits are not what is measured.
  SMGW_SUBMISSION_NETWORK_MESSAGES_PER_HOUR: '1000000000',
  SMGW_SUBMISSION_NETWORK_RECIPIENTS_PER_HOUR: '1000000000',
  SMGW_SUBMISSION_NETWORK_BYTES_PER_HOUR: '1000000000000000',
  SMGW_SMTP_MAX_UNKNOWN_RECIPIENTS: '1000000',
  SMGW_REVOCATION_MODE: 'off',
  SMGW_PIN_DELAY: '1s',
  // A claim nobody can vouch for is freed by its lease, 4 × this timeout (20 minutes by default, 2 here; the sinks
  // answer at once); claims of deliver instances (owner-heartbeat.ts) are freed within seconds.
  SMGW_DELIVER_TIMEOUT_MS: '30000',
};

/** Kubernetes gives workers 60–120 s (terminationGracePeriodSeconds); the shortest is the bar. */
const SIGTERM_GRACE_MS = 60_000;

async function keepLogs(gateway: TestGateway, runId: string): Promise<string> {
  const dir = join(tmpdir(), `smgw-chaos-${runId}-logs`);
  await mkdir(dir, { recursive: true });
  for (const s of Object.values(gateway.services)) await writeFile(join(dir, `${s.name}.log`), s.output.join(''));
  return dir;
}

/** Waits until nothing is queued (work and retry queues) three polls in a row; parked envelopes do not count. */
async function settle(gateway: TestGateway, runId: string, planned: Parameters<typeof observe>[2], record: LoadRecord) {
  let quiet = 0;
  await waitFor(
    'every queue to drain',
    async () => {
      const seen = await observe(gateway, runId, planned, record, { states: false });
      quiet = seen.queued.work + seen.queued.retry === 0 ? quiet + 1 : 0;
      return quiet >= 3;
    },
    { timeoutMs: 15 * 60_000, intervalMs: 3000 },
  ).catch(() => {}); // the verdict reports what is still queued
}

export async function runChaos(options: ChaosOptions): Promise<ChaosRun> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const random = seededRandom(options.seed);
  const runId = `${options.seed.toString(36)}${randomBytes(2).toString('hex')}`;
  log(`chaos ${runId}: starting PostgreSQL, RabbitMQ, Redis and clamd of its own`);
  const servers: PrivateServers = await startPrivateServers();
  // @smgw/testing and every service process read these: the run never touches the machine's shared servers.
  Object.assign(process.env, servers.env);
  let gateway: TestGateway | undefined;
  // Ctrl-C or a CI timeout: stop the processes and the servers of the run, not only this process.
  const interrupted = async () => {
    await gateway?.close().catch(() => {});
    await servers.close();
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    log(`chaos ${runId}: starting ${SERVICES.join(', ')} (two of every queue worker)`);
    gateway = await startTestGateway({
      services: SERVICES,
      replicas: REPLICAS,
      // The contents in files (SMGW_BLOB_DIR), the faster store: kill -9 and restarts must lose nothing there too.
      blobs: 'files',
      env: RUN_SETTINGS,
    });
    await issueRecipientCertificates(gateway, CERTIFICATE_HOLDERS);

    const planned = planWorkload(options.messages, random, servers.clamdStreamMaxBytes);
    const plans = planNemeses(random, options.nemeses, options.extraKills);
    const record = new LoadRecord();
    const events: NemesisEvent[] = [];
    log(`chaos ${runId}: ${planned.length} messages, ${plans.length} nemeses, seed ${options.seed}`);

    // Each nemesis strikes at its share of the load: once the messages before that point are done with (but those
    // still in flight), and the messages after it wait until it has begun, however fast the gateway takes them.
    const threshold = (share: number) => Math.floor(share * planned.length);
    const begun = plans.map(() => Promise.withResolvers<void>());
    const gate = async (seq: number) => {
      await Promise.all(plans.flatMap((p, i) => (threshold(p.atShare) <= seq ? [begun[i]?.promise] : [])));
    };
    const concurrency = options.concurrency ?? 16;
    const load = sendWorkload(
      planned,
      { host: '127.0.0.1', inboundPort: gateway.inboundPort, submissionPort: gateway.submissionPort },
      record,
      { runId, concurrency, maxTries: 200, gate },
    );
    const busy = new Set<string>();
    const supervisor = superviseProcesses(gateway, busy);
    const world = { gateway, servers, random, graceMs: SIGTERM_GRACE_MS, busy };
    for (const [i, plan] of plans.entries()) {
      await waitFor(
        `${Math.round(plan.atShare * 100)} % of the messages sent`,
        () => record.finished >= threshold(plan.atShare) - concurrency,
        { timeoutMs: 20 * 60_000, intervalMs: 100 },
      );
      const striking = unleash(plan, world, record.accepted);
      begun[i]?.resolve();
      const event = await striking;
      events.push(event);
      log(`chaos ${runId}: ${event.kind} ${event.target} at ${event.atAccepted} accepted`);
    }
    await load;
    log(`chaos ${runId}: load done (${record.accepted} accepted); waiting for the queues to drain`);
    await settle(gateway, runId, planned, record);
    await sleep(3000); // a late duplicate still on its way is counted too
    await supervisor.stop();
    const seen = await observe(gateway, runId, planned, record, { states: true });
    const verdict = check(planned, [...record.attempts.values()], seen, events, supervisor.exits);
    const table = formatVerdict(verdict, `chaos run ${runId} (seed ${options.seed}, ${options.messages} messages)`);
    const logsDir = verdict.violations.length > 0 ? await keepLogs(gateway, runId) : undefined;
    return { runId, verdict, table, ...(logsDir ? { logsDir } : {}) };
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await gateway?.close().catch(() => {});
    await servers.close();
  }
}
