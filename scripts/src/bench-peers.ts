// `./smgw bench` (or `./smgw bench compare`): the gateway beside the systems it is measured against, all on this
// machine's loopback with the same load: Postfix's smtp-source (20 parallel connections, the same messages and
// counts) into Postfix's smtp-sink.
//   postfix          Postfix as a plain relay: scans nothing (the long-term bar)
//   postfix+amavis   Postfix + amavisd-new + ClamAV as a content filter (smtpd → amavis → reinjection smtpd → sink),
//                    virus scanning only, on the same clamd as the gateway (the peer of issue 12's targets)
//   gateway          ingest → scan → encrypt → deliver with every protection on (blob encryption at rest, SPF/DKIM/
//                    DMARC through the local stub resolver), worker replicas
// Options: --messages N (per round and size, default 1000)  --rounds R (default 3)  --sizes 10k,100k
//          --sessions S (default 20)  --replicas K (scan, encrypt, deliver; default 2)  --amavis-processes P (8)
//          --no-accept-rate  --cpu-prof DIR (the gateway's services under node --cpu-prof; prints the top 10 self-time
//          functions of each service at the end; profiling slows the gateway, so its figures are not the run's)
//          --pg-stats (PostgreSQL collects pg_stat_statements; prints the gateway's statements per message and their
//          time)  --only NAME[,NAME] (run only these systems: postfix, postfix+amavis, gateway)
// PostgreSQL, RabbitMQ, Redis and clamd are the run's own (PostgreSQL with fsync on, as Postfix fsyncs its queue), so
// the CPU per message of each system is its processes' alone: /proc/<pid>/stat utime+stime of every process of
// the system (and of its exited children), before and after each round. First it checks that each scanning
// system really scans: EICAR through it must not reach the sink; otherwise there is no comparison.
// Needs root (Postfix's master, amavisd dropping to its user, PostgreSQL and RabbitMQ as theirs).
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import {
  freePort,
  type PrivateServers,
  startPrivateServers,
  startTestGateway,
  type TestGateway,
  waitFor,
} from '@smgw/testing';
import nodemailer from 'nodemailer';
import { type AmavisInstance, startAmavis } from './peers/amavis.ts';
import { readProcesses, treeCpuMs } from './peers/cpu.ts';
import { comparisonTable, median, type RoundFigures, roundFigures, type SystemSummary } from './peers/figures.ts';
import { type PostfixInstance, startPostfix } from './peers/postfix.ts';
import { topSelfTime } from './peers/profile-top.ts';
import { portOpen, runSmtpSource, type SmtpSink, startSmtpSink } from './peers/smtp-tools.ts';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
    sizes: { type: 'string', default: '10k,100k' },
    sessions: { type: 'string', default: '20' },
    replicas: { type: 'string', default: '2' },
    'amavis-processes': { type: 'string', default: '8' },
    'no-accept-rate': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    'pg-stats': { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
const N = Number(args.messages);
const ROUNDS = Number(args.rounds);
const SESSIONS = Number(args.sessions);
const REPLICAS = Number(args.replicas);
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

interface System {
  name: string;
  port: number;
  sink: SmtpSink;
  /** The roots of every process that works for this system, by part (postfix, amavisd, clamd; ingest, PostgreSQL…). */
  parts(): Promise<Record<string, number[]>>;
  /** Scans: EICAR through it must be blocked. */
  scans: boolean;
}

const dir = await mkdtemp('/tmp/smgw-bench-');
await chmod(dir, 0o755); // Postfix's and amavis's users work below it
let servers: PrivateServers | undefined;
let gateway: TestGateway | undefined;
const postfixes: PostfixInstance[] = [];
let amavis: AmavisInstance | undefined;
const sinks: SmtpSink[] = [];

async function cleanUp() {
  await gateway?.close().catch((err) => say(`stopping the gateway: ${err}`));
  await amavis?.stop().catch((err) => say(`stopping amavisd: ${err}`));
  for (const p of postfixes) await p.stop().catch((err) => say(`stopping ${p.name}: ${err}`));
  for (const s of sinks) await s.close().catch(() => {});
  await servers?.close().catch((err) => say(`stopping the servers: ${err}`));
  await rm(dir, { recursive: true, force: true });
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

/** Sends one message with nodemailer (the scanning check needs its own content). */
async function sendRaw(port: number, raw: string) {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, ignoreTLS: true });
  try {
    await transport.sendMail({ envelope: { from: 'bench@example.org', to: ['amt@behoerde.example'] }, raw });
  } finally {
    transport.close();
  }
}

const mail = (subject: string, body: string) =>
  [
    'From: bench@example.org',
    'To: amt@behoerde.example',
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
  // smtp-sink runs as nobody and writes `<file><random suffix>`: a folder of nobody's for each check.
  const dumps = join(dir, `dump-${system.name.replace(/\W/g, '_')}`);
  await mkdir(dumps);
  await chown(dumps, Number((await run('id', ['-u', 'nobody'])).stdout), 0);
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
    await checkSink.close();
    // The load's sink on the same port, counting from zero.
    const fresh = await startSmtpSink(system.sink.port);
    sinks.splice(sinks.indexOf(system.sink), 1, fresh);
    system.sink = fresh;
  }
}

const only = (pid: number | undefined): number[] => (pid === undefined ? [] : [pid]);

async function cpuMsOf(system: System): Promise<Record<string, number>> {
  const [processes, parts] = await Promise.all([readProcesses(), system.parts()]);
  return Object.fromEntries(Object.entries(parts).map(([part, roots]) => [part, treeCpuMs(processes, roots)]));
}

async function round(system: System, bodyBytes: number): Promise<RoundFigures> {
  const before = system.sink.count();
  const cpuBefore = await cpuMsOf(system);
  const source = await runSmtpSource({ port: system.port, messages: N, sessions: SESSIONS, bodyBytes, reuse: true });
  await waitFor(`${N} messages through ${system.name} at the sink`, () => system.sink.count() >= before + N, {
    timeoutMs: 60 * 60_000,
    intervalMs: 20,
  });
  const cpuAfter = await cpuMsOf(system);
  const cpuByPartMs = Object.fromEntries(
    Object.entries(cpuAfter).map(([part, ms]) => [part, ms - (cpuBefore[part] ?? 0)]),
  );
  if (system.sink.count() > before + N) say(`  ${system.name}: ${system.sink.count() - before - N} more than sent`);
  return roundFigures({
    messages: N,
    sourceStart: source.start,
    accepted: source.accepted,
    arrived: system.sink.arrivals.slice(before, before + N),
    cpuByPartMs,
  });
}

/**
 * pg_stat_statements of the run's PostgreSQL (only the gateway uses it): 'reset' empties it; with a message count,
 * the statements by total time, with calls and time per message, as a table.
 */
async function gatewayStatements(running: PrivateServers | undefined, messages: number | 'reset'): Promise<string> {
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
    `select calls, total_exec_time, regexp_replace(left(query, 110), '\\s+', ' ', 'g') from pg_stat_statements
      where query not ilike '%pg_stat_statements%' order by total_exec_time desc limit 25`,
  );
  const lines = [
    `
PostgreSQL statements of the gateway (${messages} messages), by total time:`,
  ];
  lines.push('  calls/msg  ms/msg  statement');
  let totalCalls = 0;
  let totalMs = 0;
  for (const row of stdout.trim().split('\n')) {
    const [calls, ms, query] = row.split('\t');
    totalCalls += Number(calls);
    totalMs += Number(ms);
    lines.push(
      `  ${(Number(calls) / messages).toFixed(2).padStart(9)}  ${(Number(ms) / messages).toFixed(3).padStart(6)}  ${query}`,
    );
  }
  lines.push(
    `  ${(totalCalls / messages).toFixed(2).padStart(9)}  ${(totalMs / messages).toFixed(3).padStart(6)}  (these 25)`,
  );
  return lines.join('\n');
}

try {
  say(
    `bench: ${N} messages per round, ${ROUNDS} round(s), sizes ${SIZES.map((s) => `${s / 1024} KB`).join(', ')}, ` +
      `${SESSIONS} connections (smtp-source -d), gateway worker replicas ${REPLICAS}, amavisd children ${AMAVIS_PROCESSES}`,
  );
  say('starting PostgreSQL (fsync on), RabbitMQ, Redis and clamd of the run');
  servers = await startPrivateServers({
    durable: true,
    clamdThreads: 8,
    clamdStreamMaxBytes: 53 * 1024 * 1024,
    statementStats: args['pg-stats'],
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

  say(`starting the gateway (ingest, scan, encrypt, deliver; ${REPLICAS} of each worker)`);
  const gatewaySink = await sinkOn();
  gateway = await startTestGateway({
    services: ['ingest', 'scan', 'encrypt', 'deliver'],
    replicas: { scan: REPLICAS, encrypt: REPLICAS, deliver: REPLICAS },
    env: {
      SMGW_INTERNAL_RELAY: `127.0.0.1:${gatewaySink.port}`,
      SMGW_SMTP_MAX_CONNECTIONS_PER_CLIENT: '10000',
      SMGW_SMTP_COMMANDS_PER_MINUTE: '10000000',
      SMGW_SMTP_MAX_UNKNOWN_RECIPIENTS: '1000000',
      SMGW_REVOCATION_MODE: 'off',
      SMGW_LOG_LEVEL: 'warn',
      ...(args['cpu-prof'] ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${args['cpu-prof']}` } : {}),
    },
  });
  const gw = gateway;

  const allSystems: System[] = [
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
    {
      name: 'gateway',
      port: gw.inboundPort,
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
    },
  ];

  const onlySystems = args.only?.split(',').map((name) => name.trim());
  const systems = allSystems.filter((s) => !onlySystems || onlySystems.includes(s.name));
  if (systems.length === 0) throw new Error(`--only ${args.only}: no such system (postfix, postfix+amavis, gateway)`);

  say('\nscanning check: EICAR, then a clean message, through each system');
  let honest = true;
  for (const system of systems) {
    const passed = await eicarPasses(system);
    const verdict = passed ? (system.scans ? 'EICAR REACHED THE SINK' : 'passes (scans nothing)') : 'blocked';
    say(`  ${system.name.padEnd(16)} ${verdict}`);
    if (system.scans && passed) honest = false;
  }
  if (!honest) throw new Error('a scanning system let EICAR through: no comparison');

  if (args['pg-stats']) await gatewayStatements(servers, 'reset');
  const tables: string[] = [];
  for (const size of SIZES) {
    const summaries: SystemSummary[] = systems.map((s) => ({ system: s.name, rounds: [] }));
    for (let r = 1; r <= ROUNDS; r++) {
      // Rounds interleave the systems, so a slow minute of the shared machine falls on each of them alike.
      for (const [i, system] of systems.entries()) {
        const figures = await round(system, size);
        summaries[i]?.rounds.push(figures);
        say(
          `  ${size / 1024} KB round ${r} ${system.name.padEnd(16)} ${figures.msgPerSecond.toFixed(1).padStart(7)} msg/s` +
            `  p50 ${figures.p50Ms?.toFixed(0)} ms  p99 ${figures.p99Ms?.toFixed(0)} ms` +
            `  CPU ${figures.cpuMsPerMessage.toFixed(2)} ms/msg`,
        );
      }
    }
    tables.push(
      comparisonTable(`\n${size / 1024} KB messages (${N} per round, ${ROUNDS} rounds)`, summaries, 'gateway'),
    );
  }

  if (args['pg-stats'] && systems.some((s) => s.name === 'gateway')) {
    tables.push(await gatewayStatements(servers, N * ROUNDS * SIZES.length));
  }

  const postfixAndGateway = ['postfix', 'gateway'].map((name) => systems.find((s) => s.name === name));
  if (!args['no-accept-rate'] && postfixAndGateway.every((s) => s !== undefined)) {
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
      const rates: Record<string, number[]> = { postfix: [], gateway: [] };
      for (let r = 0; r < ROUNDS; r++) {
        for (const system of postfixAndGateway as System[]) rates[system.name]?.push(await acceptRate(system, reuse));
      }
      const pf = median(rates.postfix ?? []);
      const ours = median(rates.gateway ?? []);
      lines.push(
        `  ${reuse ? 'connection reuse         ' : 'one message per connection'}  postfix ${pf.toFixed(1)}/s  gateway ${ours.toFixed(1)}/s  ratio ${(ours / pf).toFixed(2)}x`,
      );
    }
    tables.push(lines.join('\n'));
  }
  say(tables.join('\n'));
  if (args['cpu-prof']) {
    // The profiles are written when the services exit: stop them first, then match files to services by pid.
    const serviceOfPid = new Map(Object.values(gw.services).map((s) => [s.child?.pid, s.service]));
    await gw.close();
    gateway = undefined;
    const files = await readdir(args['cpu-prof']);
    for (const service of ['ingest', 'scan', 'encrypt', 'deliver']) {
      const mine = files.filter((f) => serviceOfPid.get(Number(f.split('.')[3])) === service);
      say(`\ntop 10 self time of ${service} (${mine.length} profile(s) in ${args['cpu-prof']}):`);
      for (const t of await topSelfTime(mine.map((f) => join(args['cpu-prof'] as string, f)))) {
        say(`  ${(t.share * 100).toFixed(1).padStart(5)}%  ${t.ms.toFixed(0).padStart(7)} ms  ${t.name}`);
      }
    }
  }
  say(
    '\nlatency: k-th 250 at smtp-source to k-th arrival at smtp-sink; CPU: every process of the system ' +
      '(postfix: master and children; +amavis: amavisd and clamd; gateway: its services, PostgreSQL, RabbitMQ, Redis, clamd)',
  );
} finally {
  process.removeListener('SIGINT', interrupted);
  process.removeListener('SIGTERM', interrupted);
  await cleanUp();
}
