// `./smgw bench` (or `./smgw bench compare`): the gateway beside the systems it is measured against, all on this
// machine's loopback with the same load: Postfix's smtp-source (20 parallel connections, the same messages and
// counts) into Postfix's smtp-sink.
//   postfix          Postfix as a plain relay: scans nothing (the long-term bar)
//   postfix+amavis   Postfix + amavisd-new + ClamAV as a content filter (smtpd → amavis → reinjection smtpd → sink),
//                    virus scanning only, on the same clamd as the gateway (the peer of issue 12's targets)
//   gateway          every protection on (blob encryption at rest, SPF/DKIM/DMARC through the local stub resolver),
//                    worker replicas, on each path of --paths:
//     inbound  the internet to an agency (bench@example.org → amt@behoerde.example) on the MX port: ingest → encrypt
//              → scan → deliver → the sink as the agencies' relay
//     smime    an agency to the outside (bench@behoerde.example → smime@buerger.example) on the submission port (no
//              AUTH: SMGW_SUBMISSION_NETWORKS 127.0.0.0/8): ingest → scan → encrypt → deliver → the sink as
//              SMGW_SMARTHOST; the recipient's certificate (RSA-3072) from a test CA that is a trust anchor
//     pgp      the same to pgp@buerger.example, whose OpenPGP key (gpg's ed25519/cv25519) is imported and approved
//     portal   the same to portal@buerger.example, who has no key: encrypt hands the message to mailbox, which stores
//              it in the recipient's portal mailbox; arrival is its row there (mailbox_messages, polled), and a
//              round's CPU is read once its notices (link to the recipient, PIN to the sender) are out. All of it
//              goes to that one mailbox, whose row lock each arrival holds: one busy recipient, not many
//   floor            on the inbound path: what the gateway's design alone costs per message (peers/floor.ts): SMTP in,
//                    clamd, the row committed and the publish confirmed before 250; consume, claim, relay, outcome
//                    before the ack; same libraries and servers as the gateway, none of the gateway's own work
//   Each path has a gateway of its own (started for it, stopped after it) and its own rounds and tables; the peers are
//   measured again beside each with the same messages (they relay or scan, and encrypt nothing).
// Options: --paths inbound,smime,pgp,portal (the default: all four; `--paths inbound` is the inbound comparison alone)
//          --messages N (per round and size, default 1000)  --rounds R (default 3)  --sizes 10k,100k
//          --sessions S (default 20)  --replicas K (scan, encrypt, deliver, mailbox; default 1: on 2 cores one process per worker did better than two)
//          --amavis-processes P (8)  --no-accept-rate (the inbound path's accept rate)  --cpu-prof DIR (the gateway's
//          services under node --cpu-prof; prints the top 10 self-time functions of each service of each path at the
//          end; profiling slows the gateway, so its figures are not the run's)
//          --pg-stats (PostgreSQL collects pg_stat_statements; prints the gateway's statements per message and their
//          time, per path)  --only NAME[,NAME] (run only these systems: postfix, postfix+amavis, floor, gateway)
//          --warmup W (unmeasured rounds of the first size per system and path before the measured ones; default 1)
//          --clamd-tmp memory|disk (clamd's TemporaryDirectory, where it spools each stream and unpacks what it
//          scans: a folder in /dev/shm, the default, or clamd's own /tmp; both systems share that clamd)
//          --floor simple|batched (the floor system's writes: a statement per message, or group commits of every
//          message waiting while one runs)
//          --blobs-in files|database (where the gateway keeps message contents: files in a folder of its own, the
//          default, as SMGW_BLOB_DIR; or PostgreSQL, the setting's default when unset)
// PostgreSQL, RabbitMQ, Redis and clamd are the run's own (PostgreSQL with fsync on, as Postfix fsyncs its queue), so
// the CPU per message of each system is its processes' alone: /proc/<pid>/stat utime+stime of every process of
// the system (and of its exited children), before and after each round. First it checks that each scanning
// system really scans: EICAR through it must not reach the sink; otherwise there is no comparison. Before an
// outbound path is measured, EICAR submitted on it must end quarantined, and a sample of the load must reach the
// outside only encrypted to the recipient (opened with the recipient's key) or, on the portal path, not at all.
// Needs root (Postfix's master, amavisd dropping to its user, PostgreSQL and RabbitMQ as theirs).
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { createTestPki, type TestPki } from '@smgw/crypto/testing';
import {
  assertQueued,
  freePort,
  type PrivateServers,
  startPrivateServers,
  startTestGateway,
  type TestGateway,
  waitFor,
} from '@smgw/testing';
import { getTrace } from '@smgw/trace';
import nodemailer from 'nodemailer';
import { type AmavisInstance, startAmavis } from './peers/amavis.ts';
import { readProcesses, treeCpuMs } from './peers/cpu.ts';
import {
  comparisonTable,
  median,
  type RoundFigures,
  ratioLine,
  roundFigures,
  type SystemSummary,
} from './peers/figures.ts';
import { type FloorInstance, startFloor } from './peers/floor.ts';
import { type MailboxArrivals, watchMailbox } from './peers/mailbox-arrivals.ts';
import { addPgpRecipient, addSmimeRecipient, type OutsideRecipient } from './peers/outside-recipients.ts';
import {
  type BenchPath,
  isOutbound,
  judgeOutsideSample,
  LOAD_TEXT_IN_CLEAR,
  type OutboundPath,
  outboundNote,
  outsideForm,
  PATH_ADDRESSES,
  type PathAddresses,
  parsePaths,
} from './peers/paths.ts';
import { type PostfixInstance, startPostfix } from './peers/postfix.ts';
import { topSelfTime } from './peers/profile-top.ts';
import { portOpen, runSmtpSource, type SmtpSink, startSmtpSink } from './peers/smtp-tools.ts';

const { values: args } = parseArgs({
  options: {
    paths: { type: 'string', default: 'inbound,smime,pgp,portal' },
    messages: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    sizes: { type: 'string', default: '10k,100k' },
    sessions: { type: 'string', default: '20' },
    replicas: { type: 'string', default: '1' },
    'amavis-processes': { type: 'string', default: '8' },
    'no-accept-rate': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    'pg-stats': { type: 'boolean', default: false },
    only: { type: 'string' },
    'blobs-in': { type: 'string', default: 'files' },
    warmup: { type: 'string', default: '1' },
    'clamd-tmp': { type: 'string', default: 'memory' },
    floor: { type: 'string', default: 'simple' },
  },
});
if (args['clamd-tmp'] !== 'memory' && args['clamd-tmp'] !== 'disk') {
  throw new Error(`--clamd-tmp is memory or disk, not ${args['clamd-tmp']}`);
}
if (args.floor !== 'simple' && args.floor !== 'batched') {
  throw new Error(`--floor is simple or batched, not ${args.floor}`);
}
if (args['blobs-in'] !== 'files' && args['blobs-in'] !== 'database') {
  throw new Error(`--blobs-in is files or database, not ${args['blobs-in']}`);
}
const PATHS = parsePaths(args.paths ?? '');
const N = Number(args.messages);
const ROUNDS = Number(args.rounds);
const SESSIONS = Number(args.sessions);
const REPLICAS = Number(args.replicas);
const WARMUP_ROUNDS = Number(args.warmup);
if (!Number.isInteger(WARMUP_ROUNDS) || WARMUP_ROUNDS < 0)
  throw new Error(`--warmup is a whole number, not ${args.warmup}`);
const AMAVIS_PROCESSES = Number(args['amavis-processes']);
const SIZES = (args.sizes ?? '').split(',').map((s) => {
  const m = /^(\d+)(k)?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size ${s} (10k, 100k, or bytes)`);
  return Number(m[1]) * (m[2] ? 1024 : 1);
});
for (const [name, v] of Object.entries({ N, ROUNDS, SESSIONS, REPLICAS, AMAVIS_PROCESSES })) {
  if (!(Number.isInteger(v) && v > 0)) throw new Error(`${name} must be a positive integer`);
}
if (process.getuid?.() !== 0) throw new Error('./smgw bench runs Postfix, amavisd-new and servers of its own: root');

const run = promisify(execFile);
const say = (line: string) => process.stdout.write(`${line}\n`);
const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
/** Messages of the check before an outbound path is measured. */
const SAMPLE = Math.min(N, 20);
const WORKERS = ['scan', 'encrypt', 'deliver'];

interface System {
  name: string;
  port: number;
  sink: SmtpSink;
  /**
   * The portal path's arrivals (rows in the recipient's mailbox), counted instead of the sink's. Each message also
   * sends a link notice to the recipient (the sink) and a PIN notice to the sender (`agencyRelay`): a round's CPU is
   * read once both have them all.
   */
  mailbox?: MailboxArrivals;
  agencyRelay?: SmtpSink;
  /** The roots of every process that works for this system, by part (postfix, amavisd, clamd; ingest, PostgreSQL…). */
  parts(): Promise<Record<string, number[]>>;
  /** Processes of the bench's own inside those trees (the mailbox poll's PostgreSQL backend): left out. */
  benchPids?: number[];
  /** Scans: EICAR through it must be blocked. */
  scans: boolean;
}

const dir = await mkdtemp('/tmp/smgw-bench-');
await chmod(dir, 0o755); // Postfix's and amavis's users work below it
// clamd spools each stream and unpacks what it scans into its TemporaryDirectory: in memory (tmpfs), as a host
// whose disk is slow would set it, or on disk (clamd's default /tmp).
const clamdTmp = args['clamd-tmp'] === 'memory' ? await mkdtemp('/dev/shm/smgw-bench-clamd-') : undefined;
let servers: PrivateServers | undefined;
let gateway: TestGateway | undefined;
let mailboxWatch: MailboxArrivals | undefined;
let pki: TestPki | undefined;
const postfixes: PostfixInstance[] = [];
let amavis: AmavisInstance | undefined;
let floor: FloorInstance | undefined;
const sinks: SmtpSink[] = [];

async function cleanUp() {
  await mailboxWatch?.close().catch(() => {});
  await gateway?.close().catch((err) => say(`stopping the gateway: ${err}`));
  await floor?.stop().catch((err) => say(`stopping the floor: ${err}`));
  await amavis?.stop().catch((err) => say(`stopping amavisd: ${err}`));
  for (const p of postfixes) await p.stop().catch((err) => say(`stopping ${p.name}: ${err}`));
  for (const s of sinks) await s.close().catch(() => {});
  await servers?.close().catch((err) => say(`stopping the servers: ${err}`));
  // gpg started an agent for the bench's GNUPGHOME (the pgp path); stop it before its directory goes.
  await run('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: join(dir, 'gnupg') } }).catch(
    () => undefined,
  );
  await pki?.remove().catch(() => {});
  await rm(dir, { recursive: true, force: true });
  if (clamdTmp) await rm(clamdTmp, { recursive: true, force: true });
}
const interrupted = async () => {
  await cleanUp();
  process.exit(130);
};
process.once('SIGINT', interrupted);
process.once('SIGTERM', interrupted);

async function sinkOn(): Promise<SmtpSink> {
  const sink = await startSmtpSink(await freePort());
  sinks.push(sink);
  return sink;
}

/** A fresh sink on the port of `system`'s, counting from zero, in place of the one a check used. */
async function freshSink(system: System, used: SmtpSink) {
  await used.close();
  const fresh = await startSmtpSink(system.sink.port);
  sinks.splice(sinks.indexOf(system.sink), 1, fresh);
  system.sink = fresh;
}

/** smtp-sink runs as nobody and writes below a folder: one of nobody's for each check. */
async function nobodysFolder(name: string): Promise<string> {
  const folder = join(dir, name.replace(/\W/g, '_'));
  await mkdir(folder);
  await chown(folder, Number((await run('id', ['-u', 'nobody'])).stdout), 0);
  return folder;
}

/** Sends one message with nodemailer (the checks need their own content); the gateway's reply. */
async function sendRaw(port: number, raw: string, addresses: PathAddresses = PATH_ADDRESSES.inbound) {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, ignoreTLS: true });
  try {
    const info = await transport.sendMail({ envelope: { from: addresses.from, to: [addresses.to] }, raw });
    return info.response;
  } finally {
    transport.close();
  }
}

const mail = (subject: string, body: string, addresses: PathAddresses = PATH_ADDRESSES.inbound) =>
  [
    `From: ${addresses.from}`,
    `To: ${addresses.to}`,
    `Subject: ${subject}`,
    `Message-ID: <${subject.replace(/\W/g, '')}.${Date.now()}@bench.test>`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    body,
    '',
  ].join('\r\n');

/**
 * EICAR then a clean message through the system, into a sink that keeps what it takes (-D): scanned means the
 * clean one arrives and EICAR, given the same time and more, does not.
 */
async function eicarPasses(system: System): Promise<boolean> {
  await system.sink.close();
  const dumps = await nobodysFolder(`dump-${system.name}`);
  const checkSink = await startSmtpSink(system.sink.port, join(dumps, 'mail'));
  const dumped = async () =>
    (await Promise.all((await readdir(dumps)).map((f) => readFile(join(dumps, f), 'latin1')))).join('');
  try {
    await sendRaw(system.port, mail('eicar check', EICAR));
    await sendRaw(system.port, mail('clean check', 'nothing to find here'));
    await waitFor(`the clean check message through ${system.name}`, () => checkSink.count() >= 1, {
      timeoutMs: 120_000,
      intervalMs: 100,
    });
    await new Promise((r) => setTimeout(r, 5000));
    if (!(await dumped()).includes('clean check')) throw new Error(`smtp-sink kept nothing in ${dumps}`);
    return (await dumped()).includes('EICAR-STANDARD-ANTIVIRUS-TEST-FILE');
  } finally {
    await freshSink(system, checkSink);
  }
}

/**
 * Before an outbound path is measured: EICAR submitted on it must end quarantined, and a sample of the load
 * (smtp-source as in the rounds) must reach the outside sink only in the path's encrypted form, one of them opened by
 * the recipient's key to the load's text; on the portal path the sample must be in the mailbox and only notices
 * outside. Throws if not.
 */
async function checkOutboundPath(
  path: OutboundPath,
  system: System,
  gw: TestGateway,
  recipient: OutsideRecipient | undefined,
): Promise<string> {
  const addresses = PATH_ADDRESSES[path];
  const eicarId = assertQueued(await sendRaw(system.port, mail('eicar check', EICAR, addresses), addresses));
  await system.sink.close();
  const dumps = await nobodysFolder(`sample-${path}`);
  const sampleSink = await startSmtpSink(system.sink.port, undefined, join(dumps, 'mail.'));
  const relayBefore = system.agencyRelay?.count() ?? 0;
  try {
    const inMailbox = system.mailbox?.awaitCount(system.mailbox.count() + SAMPLE, { timeoutMs: 300_000 });
    inMailbox?.catch(() => {});
    await runSmtpSource({
      port: system.port,
      messages: SAMPLE,
      sessions: Math.min(SESSIONS, SAMPLE),
      bodyBytes: Math.min(...SIZES),
      reuse: true,
      ...addresses,
    });
    await inMailbox;
    // smime, pgp: the sample itself; portal: its link notices, and its PIN notices at the agency relay (before a round
    // counts its own).
    await waitFor(`the ${path} sample at the outside sink`, () => sampleSink.count() >= SAMPLE, {
      timeoutMs: 300_000,
      intervalMs: 100,
    });
    const relay = system.agencyRelay;
    if (relay) {
      await waitFor(`the ${path} sample's notices at the agency relay`, () => relay.count() >= relayBefore + SAMPLE, {
        timeoutMs: 300_000,
        intervalMs: 100,
      });
    }
    const eicarState = await waitFor(
      'the EICAR check message to be settled',
      async () => {
        const state = (await getTrace(gw.db.pool, eicarId))?.recipients[0]?.state;
        return state && state !== 'pending' ? state : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 200 },
    );
    if (eicarState !== 'quarantined') throw new Error(`EICAR on the ${path} path ended ${eicarState}: no comparison`);
    const files = (await readdir(dumps)).map((f) => join(dumps, f));
    const forms = await Promise.all(files.map(async (f) => outsideForm(await readFile(f, 'latin1'))));
    const sample = judgeOutsideSample(path, forms, SAMPLE);
    if (!sample.ok) throw new Error(`the ${path} sample: ${sample.summary}`);
    let opened = '';
    if (recipient && files[0]) {
      if (!(await recipient.open(files[0])).includes(LOAD_TEXT_IN_CLEAR)) {
        throw new Error(`the ${path} sample: the recipient's key does not open it to the load's text`);
      }
      opened = '; the recipient’s key opens one to the load’s text';
    }
    const stored = system.mailbox ? `; ${SAMPLE} of ${SAMPLE} in the recipient’s portal mailbox` : '';
    return `EICAR quarantined; sample of ${SAMPLE}: ${sample.summary}${opened}${stored}`;
  } finally {
    await freshSink(system, sampleSink);
  }
}

const only = (pid: number | undefined): number[] => (pid === undefined ? [] : [pid]);

async function cpuMsOf(system: System): Promise<Record<string, number>> {
  const [processes, parts] = await Promise.all([readProcesses(), system.parts()]);
  return Object.fromEntries(
    Object.entries(parts).map(([part, roots]) => [part, treeCpuMs(processes, roots, system.benchPids)]),
  );
}

async function round(system: System, bodyBytes: number, path: BenchPath): Promise<RoundFigures> {
  const arrivals = system.mailbox ?? system.sink;
  const before = arrivals.count();
  // The portal path's notices: to the recipient at the sink, to the sender at the agency relay.
  const noticeSinks = system.mailbox ? [system.sink, ...(system.agencyRelay ? [system.agencyRelay] : [])] : [];
  const noticesBefore = noticeSinks.map((sink) => sink.count());
  const cpuBefore = await cpuMsOf(system);
  // A sink timestamps what it takes by itself; the mailbox is polled while the load runs.
  const inMailbox = system.mailbox?.awaitCount(before + N, { timeoutMs: 60 * 60_000 });
  inMailbox?.catch(() => {});
  const source = await runSmtpSource({
    port: system.port,
    messages: N,
    sessions: SESSIONS,
    bodyBytes,
    reuse: true,
    ...PATH_ADDRESSES[path],
  });
  if (inMailbox) await inMailbox;
  await waitFor(`${N} messages through ${system.name} at the sink`, () => arrivals.count() >= before + N, {
    timeoutMs: 60 * 60_000,
    intervalMs: 20,
  });
  for (const [i, sink] of noticeSinks.entries()) {
    await waitFor(`${N} notices from ${system.name}`, () => sink.count() >= (noticesBefore[i] ?? 0) + N, {
      timeoutMs: 60 * 60_000,
      intervalMs: 20,
    });
  }
  const cpuAfter = await cpuMsOf(system);
  const cpuByPartMs = Object.fromEntries(
    Object.entries(cpuAfter).map(([part, ms]) => [part, ms - (cpuBefore[part] ?? 0)]),
  );
  if (arrivals.count() > before + N) say(`  ${system.name}: ${arrivals.count() - before - N} more than sent`);
  return roundFigures({
    messages: N,
    sourceStart: source.start,
    accepted: source.accepted,
    arrived: arrivals.arrivals.slice(before, before + N),
    cpuByPartMs,
  });
}

/**
 * pg_stat_statements of the run's PostgreSQL (only the gateway uses it): 'reset' empties it; with a message count,
 * the statements by total time, with calls and time per message, as a table. The portal path's poll of the mailbox
 * count is the bench's and left out.
 */
async function gatewayStatements(
  running: PrivateServers | undefined,
  messages: number | 'reset',
  path: BenchPath = 'inbound',
): Promise<string> {
  const url = running?.env.DATABASE_URL;
  if (!url) throw new Error('no PostgreSQL of the run');
  const psql = (sql: string) =>
    promisify(execFile)('psql', [url, '-XAtF', '\t', '-c', sql], { maxBuffer: 16 * 1024 * 1024 });
  await psql('create extension if not exists pg_stat_statements');
  if (messages === 'reset') {
    await psql('select pg_stat_statements_reset()');
    return '';
  }
  const { stdout } = await psql(
    `select calls, total_exec_time, plans, total_plan_time, regexp_replace(left(query, 110), '\\s+', ' ', 'g')
       from pg_stat_statements
      where query not ilike '%pg_stat_statements%' and query not like 'select folder, count(*) as messages%'
      order by total_exec_time + total_plan_time desc limit 25`,
  );
  const lines = [
    `
PostgreSQL statements of the gateway${path === 'inbound' ? '' : `, ${path} path`} (${messages} messages), by total time:`,
  ];
  lines.push('  calls/msg  ms/msg  plans/msg  plan ms/msg  statement');
  let totalCalls = 0;
  let totalMs = 0;
  let totalPlans = 0;
  let totalPlanMs = 0;
  const perMessage = (n: number, digits: number, width: number) => (n / messages).toFixed(digits).padStart(width);
  for (const row of stdout.trim().split('\n')) {
    const [calls, ms, plans, planMs, query] = row.split('\t').map((field, i) => (i < 4 ? Number(field) : field)) as [
      number,
      number,
      number,
      number,
      string,
    ];
    totalCalls += calls;
    totalMs += ms;
    totalPlans += plans;
    totalPlanMs += planMs;
    lines.push(
      `  ${perMessage(calls, 2, 9)}  ${perMessage(ms, 3, 6)}  ${perMessage(plans, 2, 9)}  ${perMessage(planMs, 3, 11)}  ${query}`,
    );
  }
  lines.push(
    `  ${perMessage(totalCalls, 2, 9)}  ${perMessage(totalMs, 3, 6)}  ${perMessage(totalPlans, 2, 9)}  ${perMessage(totalPlanMs, 3, 11)}  (these 25)`,
  );
  return lines.join('\n');
}

/** The services of the gateway on `path`: mailbox only where messages go to the portal. */
const servicesOf = (path: BenchPath) => ['ingest', ...WORKERS, ...(path === 'portal' ? ['mailbox'] : [])];

/**
 * The gateway for one path, with its own database schema, vhost and sinks: inbound delivers to `sink` as the
 * agencies' relay; the outbound paths deliver to `sink` as the smarthost and their notices to the agency sender to
 * `agencyRelay`, and take submissions from loopback without AUTH.
 */
async function startPathGateway(path: BenchPath, sink: SmtpSink, agencyRelay: SmtpSink | undefined) {
  const workers = servicesOf(path).filter((service) => service !== 'ingest');
  return startTestGateway({
    services: path === 'inbound' ? ['ingest', 'scan', 'encrypt', 'deliver'] : servicesOf(path),
    replicas: Object.fromEntries(workers.map((service) => [service, REPLICAS])),
    blobs: args['blobs-in'] === 'database' ? 'database' : 'files',
    env: {
      ...(isOutbound(path)
        ? {
            SMGW_SMARTHOST: `127.0.0.1:${sink.port}`,
            SMGW_INTERNAL_RELAY: `127.0.0.1:${agencyRelay?.port}`,
            SMGW_SUBMISSION_NETWORKS: '127.0.0.0/8',
            // Every round's messages go to one mailbox; the quota is not what is measured.
            SMGW_MAILBOX_QUOTA_BYTES: String(2 ** 40),
          }
        : { SMGW_INTERNAL_RELAY: `127.0.0.1:${sink.port}` }),
      SMGW_SMTP_MAX_CONNECTIONS_PER_CLIENT: '10000',
      SMGW_SMTP_COMMANDS_PER_MINUTE: '10000000',
      // The load comes from one trusted client address: the hourly submission limits are not what is measured.
      SMGW_SUBMISSION_NETWORK_MESSAGES_PER_HOUR: '1000000000',
      SMGW_SUBMISSION_NETWORK_RECIPIENTS_PER_HOUR: '1000000000',
      SMGW_SUBMISSION_NETWORK_BYTES_PER_HOUR: '1000000000000000',
      SMGW_SMTP_MAX_UNKNOWN_RECIPIENTS: '1000000',
      SMGW_REVOCATION_MODE: 'off',
      SMGW_LOG_LEVEL: 'warn',
      ...(args['cpu-prof'] ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${args['cpu-prof']}` } : {}),
    },
  });
}

try {
  say(
    `bench: ${N} messages per round, ${ROUNDS} round(s), sizes ${SIZES.map((s) => `${s / 1024} KB`).join(', ')}, ` +
      `${SESSIONS} connections (smtp-source -d), gateway worker replicas ${REPLICAS}, amavisd children ${AMAVIS_PROCESSES}`,
  );
  if (PATHS.some(isOutbound)) {
    say(`paths: ${PATHS.join(', ')} (each with a gateway of its own; the peers measured again beside each)`);
  }
  say(
    'starting PostgreSQL (fsync on), RabbitMQ, Redis and clamd of the run ' +
      `(clamd's temporary files ${clamdTmp ? 'in memory' : 'on disk'})`,
  );
  servers = await startPrivateServers({
    durable: true,
    clamdThreads: 8,
    clamdStreamMaxBytes: 53 * 1024 * 1024,
    statementStats: args['pg-stats'],
    clamdTemporaryDirectory: clamdTmp,
  });
  Object.assign(process.env, servers.env);
  const clamdPort = Number(new URL(servers.env.CLAMD_URL as string).port);
  const clamdPid = async () => (await (servers as PrivateServers).pids()).clamd;

  say('starting Postfix (plain relay)');
  const plainSink = await sinkOn();
  const plain = await startPostfix({
    dir: join(dir, 'postfix'),
    name: 'postfix',
    smtpPort: await freePort(),
    relayPort: plainSink.port,
  });
  postfixes.push(plain);

  say('starting Postfix + amavisd-new + ClamAV');
  const filterSink = await sinkOn();
  const amavisPort = await freePort();
  const reinjectPort = await freePort();
  const filtered = await startPostfix({
    dir: join(dir, 'postfix-amavis'),
    name: 'postfix-amavis',
    smtpPort: await freePort(),
    relayPort: filterSink.port,
    contentFilter: { amavisPort, reinjectPort, processes: AMAVIS_PROCESSES },
  });
  postfixes.push(filtered);
  amavis = await startAmavis({
    dir: join(dir, 'amavis'),
    port: amavisPort,
    reinjectPort,
    clamdPort,
    processes: AMAVIS_PROCESSES,
  });
  await waitFor('amavisd-new to listen', () => portOpen(amavisPort), { timeoutMs: 60_000, intervalMs: 200 });

  const onlySystems = args.only?.split(',').map((name) => name.trim());
  const wanted = (name: string) => !onlySystems || onlySystems.includes(name);
  if (!['postfix', 'postfix+amavis', 'floor', 'gateway'].some(wanted)) {
    throw new Error(`--only ${args.only}: no such system (postfix, postfix+amavis, floor, gateway)`);
  }
  const peers: System[] = [
    {
      name: 'postfix',
      port: plain.smtpPort,
      sink: plainSink,
      scans: false,
      parts: async () => ({ postfix: only(await plain.masterPid()) }),
    },
    {
      name: 'postfix+amavis',
      port: filtered.smtpPort,
      sink: filterSink,
      scans: true,
      parts: async () => ({
        postfix: only(await filtered.masterPid()),
        amavisd: only(await amavis?.pid()),
        clamd: only(await clamdPid()),
      }),
    },
  ].filter((s) => wanted(s.name));

  let floorSystem: System | undefined;
  if (wanted('floor') && PATHS.includes('inbound')) {
    say(`starting the floor (a receiver, ${REPLICAS} relayer(s); ${args.floor} writes)`);
    const floorSink = await sinkOn();
    const started = await startFloor({
      env: servers.env,
      relayPort: floorSink.port,
      relayers: REPLICAS,
      prefetch: 16,
      batch: args.floor === 'batched',
      nodeOptions: args['cpu-prof'] ? `--cpu-prof --cpu-prof-dir=${args['cpu-prof']}` : undefined,
    });
    floor = started;
    floorSystem = {
      name: 'floor',
      port: started.port,
      sink: floorSink,
      scans: true,
      parts: async () => {
        const pids = await (servers as PrivateServers).pids();
        return {
          ...started.pids(),
          postgres: only(pids.postgres),
          rabbitmq: only(pids.rabbitmq),
          clamd: only(pids.clamd),
        };
      },
    };
  }

  const tables: string[] = [];
  /** Which path and service each profiled process was (its profile is written when it exits, named by its pid). */
  const profiled = new Map<number, { path: BenchPath; service: string }>();
  let peersChecked = false;
  for (const path of PATHS) {
    let gatewaySystem: System | undefined;
    let recipient: OutsideRecipient | undefined;
    const pathSinks: SmtpSink[] = [];
    if (wanted('gateway')) {
      const workers = servicesOf(path).slice(1).join(', ');
      say(
        path === 'inbound'
          ? `starting the gateway (ingest, scan, encrypt, deliver; ${REPLICAS} of each worker)`
          : `\nstarting the gateway for the ${path} path (ingest, ${workers}; ${REPLICAS} of each worker)`,
      );
      const gatewaySink = await sinkOn();
      pathSinks.push(gatewaySink);
      const agencyRelay = isOutbound(path) ? await sinkOn() : undefined;
      if (agencyRelay) pathSinks.push(agencyRelay);
      gateway = await startPathGateway(path, gatewaySink, agencyRelay);
      const gw = gateway;
      if (path === 'smime') {
        pki = await createTestPki('smgw-bench-pki-');
        recipient = await addSmimeRecipient(gw.db.pool, pki, PATH_ADDRESSES.smime.to);
      }
      if (path === 'pgp') {
        await mkdir(join(dir, 'gnupg'), { mode: 0o700 });
        recipient = await addPgpRecipient(gw.db.pool, join(dir, 'gnupg'), PATH_ADDRESSES.pgp.to);
      }
      if (path === 'portal') mailboxWatch = await watchMailbox(gw.db.pool, PATH_ADDRESSES.portal.to);
      const mailbox = mailboxWatch;
      const system: System = {
        name: 'gateway',
        port: isOutbound(path) ? gw.submissionPort : gw.inboundPort,
        sink: gatewaySink,
        scans: true,
        parts: async () => {
          const parts: Record<string, number[]> = {};
          for (const s of Object.values(gw.services)) {
            if (s.child?.pid) parts[s.service] = [...(parts[s.service] ?? []), s.child.pid];
          }
          const pids = await (servers as PrivateServers).pids();
          for (const [server, pid] of Object.entries(pids)) parts[server] = only(pid);
          return parts;
        },
      };
      if (mailbox && agencyRelay) {
        system.mailbox = mailbox;
        system.benchPids = [mailbox.backendPid];
        system.agencyRelay = agencyRelay;
      }
      gatewaySystem = system;
    }
    const pathPeers = [...peers, ...(path === 'inbound' && floorSystem ? [floorSystem] : [])];
    const systems = [...pathPeers, ...(gatewaySystem ? [gatewaySystem] : [])];

    const scanChecked = [
      ...(peersChecked ? [] : peers),
      ...(path === 'inbound' && floorSystem ? [floorSystem] : []),
      ...(path === 'inbound' && gatewaySystem ? [gatewaySystem] : []),
    ];
    peersChecked = true;
    if (scanChecked.length > 0) {
      say('\nscanning check: EICAR, then a clean message, through each system');
      let honest = true;
      for (const system of scanChecked) {
        const passed = await eicarPasses(system);
        const verdict = passed ? (system.scans ? 'EICAR REACHED THE SINK' : 'passes (scans nothing)') : 'blocked';
        say(`  ${system.name.padEnd(16)} ${verdict}`);
        if (system.scans && passed) honest = false;
      }
      if (!honest) throw new Error('a scanning system let EICAR through: no comparison');
    }
    if (gatewaySystem && gateway && isOutbound(path)) {
      say(`\n${path} path check: EICAR submitted, then ${SAMPLE} messages of the load, through the gateway`);
      say(`  gateway          ${await checkOutboundPath(path, gatewaySystem, gateway, recipient)}`);
    }

    const prefix = path === 'inbound' ? '' : `${path} `;
    // Fresh processes are slow at first (JIT, connections, caches, prepared statements): unmeasured rounds of the
    // first size for every system, so the measured rounds compare steady states.
    for (let r = 1; r <= WARMUP_ROUNDS; r++) {
      for (const system of systems) {
        const figures = await round(system, SIZES[0] ?? 10240, path);
        say(
          `  ${prefix}warm-up ${r} ${system.name.padEnd(16)} ${figures.msgPerSecond.toFixed(1).padStart(7)} msg/s (not counted)`,
        );
      }
    }
    if (args['pg-stats']) await gatewayStatements(servers, 'reset');
    for (const size of SIZES) {
      const summaries: SystemSummary[] = systems.map((s) => ({ system: s.name, rounds: [] }));
      for (let r = 1; r <= ROUNDS; r++) {
        // Rounds interleave the systems, so a slow minute of the shared machine falls on each of them alike.
        for (const [i, system] of systems.entries()) {
          const figures = await round(system, size, path);
          summaries[i]?.rounds.push(figures);
          say(
            `  ${prefix}${size / 1024} KB round ${r} ${system.name.padEnd(16)} ${figures.msgPerSecond.toFixed(1).padStart(7)} msg/s` +
              `  p50 ${figures.p50Ms?.toFixed(0)} ms  p99 ${figures.p99Ms?.toFixed(0)} ms` +
              `  CPU ${figures.cpuMsPerMessage.toFixed(2)} ms/msg`,
          );
        }
      }
      const counts = `${size / 1024} KB messages (${N} per round, ${ROUNDS} rounds)`;
      if (isOutbound(path)) {
        tables.push(
          `${comparisonTable(`\n${path} path, agency → outside: ${counts}`, summaries, 'gateway')}\n${outboundNote(path)}`,
        );
      } else {
        const floorRow = summaries.find((s) => s.system === 'floor');
        const amavisRow = summaries.find((s) => s.system === 'postfix+amavis');
        const floorLine = floorRow && amavisRow ? `\n  ${ratioLine(floorRow, amavisRow)} (the design's floor)` : '';
        tables.push(`${comparisonTable(`\n${counts}`, summaries, 'gateway')}${floorLine}`);
      }
    }

    if (args['pg-stats'] && gatewaySystem) {
      tables.push(await gatewayStatements(servers, N * ROUNDS * SIZES.length, path));
    }

    const postfixAndGateway = ['postfix', 'gateway'].map((name) => systems.find((s) => s.name === name));
    if (path === 'inbound' && !args['no-accept-rate'] && postfixAndGateway.every((s) => s !== undefined)) {
      const accepting = [...(postfixAndGateway as System[]), ...(floorSystem ? [floorSystem] : [])];
      // 250s per second as smtp-source sees them; the messages are then carried on to the sink before the next run.
      const acceptRate = async (system: System, reuse: boolean) => {
        const before = system.sink.count();
        const source = await runSmtpSource({
          port: system.port,
          messages: N,
          sessions: SESSIONS,
          bodyBytes: 10240,
          reuse,
        });
        await waitFor(`${system.name} to carry the accept-rate messages on`, () => system.sink.count() >= before + N, {
          timeoutMs: 60 * 60_000,
          intervalMs: 50,
        });
        return N / ((source.end - source.start) / 1000);
      };
      const lines = [
        `\ningest accept rate (250s per second, 10 KB, ${SESSIONS} connections, ${N} messages, ${ROUNDS} rounds)`,
      ];
      for (const reuse of [false, true]) {
        const rates: Record<string, number[]> = Object.fromEntries(accepting.map((s) => [s.name, []]));
        for (let r = 0; r < ROUNDS; r++) {
          for (const system of accepting) rates[system.name]?.push(await acceptRate(system, reuse));
        }
        const pf = median(rates.postfix ?? []);
        const ours = median(rates.gateway ?? []);
        const floorRate = rates.floor
          ? `  (floor ${median(rates.floor).toFixed(1)}/s, ${(median(rates.floor) / pf).toFixed(2)}x)`
          : '';
        lines.push(
          `  ${reuse ? 'connection reuse         ' : 'one message per connection'}  postfix ${pf.toFixed(1)}/s  gateway ${ours.toFixed(1)}/s  ratio ${(ours / pf).toFixed(2)}x${floorRate}`,
        );
      }
      tables.push(lines.join('\n'));
    }

    // This path's gateway goes (its profiles are written as its services exit); the next path starts its own.
    if (gateway) {
      for (const s of Object.values(gateway.services)) {
        if (s.child?.pid) profiled.set(s.child.pid, { path, service: s.service });
      }
      await mailboxWatch?.close();
      mailboxWatch = undefined;
      await gateway.close();
      gateway = undefined;
    }
    if (path === 'inbound' && floor) {
      for (const [role, pids] of Object.entries(floor.pids())) {
        for (const pid of pids) profiled.set(pid, { path, service: `floor ${role}` });
      }
      await floor.stop();
      floor = undefined;
    }
    // Its sinks go too (the gateway's current one: a check may have put a fresh one in place of the first).
    for (const sink of new Set([...pathSinks, ...(gatewaySystem ? [gatewaySystem.sink] : [])])) {
      await sink.close();
      if (sinks.includes(sink)) sinks.splice(sinks.indexOf(sink), 1);
    }
  }
  say(tables.join('\n'));
  if (args['cpu-prof'] && profiled.size > 0) {
    const files = await readdir(args['cpu-prof']);
    for (const path of PATHS) {
      const floorRoles = path === 'inbound' && floorSystem ? ['floor receive', 'floor relay'] : [];
      for (const service of [...servicesOf(path), ...floorRoles]) {
        const mine = files.filter((f) => {
          const owner = profiled.get(Number(f.split('.')[3]));
          return owner?.path === path && owner.service === service;
        });
        if (path !== 'inbound' && mine.length === 0) continue;
        const of = path === 'inbound' ? service : `${service} on the ${path} path`;
        say(`\ntop 10 self time of ${of} (${mine.length} profile(s) in ${args['cpu-prof']}):`);
        for (const t of await topSelfTime(mine.map((f) => join(args['cpu-prof'] as string, f)))) {
          say(`  ${(t.share * 100).toFixed(1).padStart(5)}%  ${t.ms.toFixed(0).padStart(7)} ms  ${t.name}`);
        }
      }
    }
  }
  say(
    '\nlatency: k-th 250 at smtp-source to k-th arrival at smtp-sink; CPU: every process of the system ' +
      '(postfix: master and children; +amavis: amavisd and clamd; floor: its receiver and relayers, PostgreSQL, ' +
      'RabbitMQ, clamd; gateway: its services, PostgreSQL, RabbitMQ, Redis, clamd)',
  );
  if (PATHS.includes('portal') && wanted('gateway')) {
    say(
      'portal path: arrival is the message’s row in the recipient’s mailbox (polled every 20 ms on a connection whose ' +
        'PostgreSQL backend is left out of the CPU); a round’s CPU is read once its link and PIN notices are delivered',
    );
  }
} finally {
  process.removeListener('SIGINT', interrupted);
  process.removeListener('SIGTERM', interrupted);
  await cleanUp();
}
