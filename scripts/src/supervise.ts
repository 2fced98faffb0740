// `./smgw up`: runs every service in the foreground with prefixed, readable logs; restarts one that dies, with
// backoff, as a supervisor would (restart-policy.ts); prints the URLs and the admin token once all are ready;
// Ctrl-C stops all. Local sinks stand in for relays left at their defaults (local-relays.ts).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { localMailAuth } from './local-mail-auth.ts';
import { type LocalSink, planLocalRelays, sinkAddress, sinkPortBusyNotice } from './local-relays.ts';
import { formatLogLine } from './log-format.ts';
import { afterExit } from './restart-policy.ts';
import { isReady, type LocalService, localServices, writeRunningServices } from './services.ts';

const root = process.env.SMGW_ROOT ?? process.cwd();
const state = process.env.SMGW_STATE_DIR ?? join(root, '.smgw');
const runDir = join(state, 'run');
mkdirSync(runDir, { recursive: true });
writeFileSync(join(runDir, 'supervisor.pid'), String(process.pid));

/** Whether another program listens on the port a sink would take (checked by binding it, as the sink would). */
function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(true) : reject(err)));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(false)));
  });
}

// Local defaults: deliver hands mail to the local sinks, not to the internet (override by setting them yourself).
const plan = planLocalRelays(process.env);
// SPF, DKIM and DMARC would ask the internet's DNS for every test mail: off locally unless set or SMGW_DNS_RESOLVERS
// names servers to ask (README "Mail from the internet"); the tests and the benchmark answer DNS from a stub instead.
const baseEnv: NodeJS.ProcessEnv = {
  ...process.env,
  ...plan.relayEnv,
  SMGW_MAIL_AUTH: localMailAuth(process.env),
};
const sinks: LocalSink[] = [];
for (const sink of plan.sinks) {
  if (await portTaken(sink.port)) process.stdout.write(`\x1b[33m${sinkPortBusyNotice(sink)}\x1b[0m\n`);
  else sinks.push(sink);
}
const services = localServices(process.env, sinks);
writeRunningServices(runDir, services);

const COLORS = [36, 33, 35, 32, 34, 31, 96];
const width = Math.max(...services.map((s) => s.name.length));
let stopping = false;
const children = new Map<string, ChildProcess>();

function prefix(service: LocalService, index: number): string {
  return `\x1b[${COLORS[index % COLORS.length]}m${service.name.padEnd(width)} |\x1b[0m`;
}

async function run(service: LocalService, index: number): Promise<void> {
  let failures = 0;
  while (!stopping) {
    const started = Date.now();
    const child = spawn(process.execPath, [join(root, service.entry)], {
      cwd: root,
      env: { ...baseEnv, ...service.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.set(service.name, child);
    writeFileSync(join(runDir, `${service.name}.pid`), String(child.pid));
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        process.stdout.write(`${prefix(service, index)} ${formatLogLine(line)}\n`);
      });
    }
    const code = await new Promise<number | string>((resolve) =>
      child.once('exit', (c, signal) => resolve(signal ?? c ?? 0)),
    );
    children.delete(service.name);
    if (stopping) break;
    const next = afterExit(code, failures, Date.now() - started);
    if (!next.restart) {
      process.stdout.write(`${prefix(service, index)} exited (${code}): a restart cannot fix that; not restarted\n`);
      return;
    }
    failures = next.failures;
    process.stdout.write(`${prefix(service, index)} exited (${code}); restarting in ${next.delayMs / 1000}s\n`);
    await sleep(next.delayMs);
  }
}

async function announceWhenReady(services: LocalService[]): Promise<void> {
  for (;;) {
    const ready = await Promise.all(services.map((s) => isReady(s.readyPort)));
    if (ready.every(Boolean)) break;
    if (stopping) return;
    await sleep(500);
  }
  const e = process.env;
  const lines = [
    '',
    '\x1b[1mSecureMail Gateway is running\x1b[0m',
    `  SMTP inbound (MX)      smtp://127.0.0.1:${e.SMGW_SMTP_INBOUND_PORT ?? 2525}   for ${e.SMGW_INTERNAL_DOMAINS ?? 'behoerde.example'}`,
    `  SMTP submission        smtp://127.0.0.1:${e.SMGW_SMTP_SUBMISSION_PORT ?? 2587}   (no AUTH needed from ${e.SMGW_SUBMISSION_NETWORKS ?? '127.0.0.0/8'})`,
    `  admin API              http://127.0.0.1:${e.SMGW_ADMIN_PORT ?? 8081}/api/v1`,
    `  admin token            ${e.SMGW_ADMIN_TOKEN ?? '(unset)'}`,
    '  RabbitMQ dashboard     http://127.0.0.1:15672  (guest/guest)',
    `  metrics                ${services.map((s) => `http://127.0.0.1:${s.readyPort}/metrics`).join(' ')}`,
    `  mail for the agencies  ${relayTarget('agency', baseEnv.SMGW_INTERNAL_RELAY)}`,
    `  mail to the outside    ${relayTarget('outside', baseEnv.SMGW_SMARTHOST || 'MX lookup')}`,
    `  SPF, DKIM, DMARC       SMGW_MAIL_AUTH=${baseEnv.SMGW_MAIL_AUTH}`,
    `  try                    swaks --server 127.0.0.1:${e.SMGW_SMTP_INBOUND_PORT ?? 2525} --to amt@behoerde.example`,
    '  trace a message        ./smgw trace <message-id>      stop: Ctrl-C',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Where delivered mail ends up: a started sink's folder, or the relay the operator set. */
function relayTarget(name: LocalSink['name'], relay: string | undefined): string {
  const sink = sinks.find((s) => s.name === name && sinkAddress(s) === relay);
  return sink ? `${join(state, 'mail', name)}/*.eml  (local sink on ${sink.port})` : `${relay}`;
}

function stopAll(signal: NodeJS.Signals) {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`\nstopping (${signal})…\n`);
  for (const child of children.values()) child.kill('SIGTERM');
  const force = setTimeout(() => {
    for (const child of children.values()) child.kill('SIGKILL');
  }, 15_000);
  force.unref();
}
process.on('SIGINT', () => stopAll('SIGINT'));
process.on('SIGTERM', () => stopAll('SIGTERM'));

void announceWhenReady(services.filter((s) => s.kind === 'gateway'));
await Promise.all(services.map((s, i) => run(s, i)));
rmSync(runDir, { recursive: true, force: true });
process.stdout.write('all stopped\n');
