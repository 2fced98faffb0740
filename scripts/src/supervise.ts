// `./smgw up`: runs every service in the foreground with prefixed, readable logs; restarts one that dies, with
// backoff, as a supervisor would; prints the URLs and the admin token once all are ready; Ctrl-C stops all.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatLogLine } from './log-format.ts';
import { isReady, type LocalService, localServices } from './services.ts';

const root = process.env.SMGW_ROOT ?? process.cwd();
const state = process.env.SMGW_STATE_DIR ?? join(root, '.smgw');
const runDir = join(state, 'run');
mkdirSync(runDir, { recursive: true });
writeFileSync(join(runDir, 'supervisor.pid'), String(process.pid));

// Local defaults: deliver hands mail to the local sinks, not to the internet (override by setting them yourself).
const baseEnv: NodeJS.ProcessEnv = {
  ...process.env,
  SMGW_INTERNAL_RELAY: process.env.SMGW_INTERNAL_RELAY ?? '127.0.0.1:2526',
  SMGW_SMARTHOST: process.env.SMGW_SMARTHOST ?? '127.0.0.1:2527',
};

const COLORS = [36, 33, 35, 32, 34, 31];
const width = Math.max(...localServices().map((s) => s.name.length));
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
    // Back off 1 s, 2 s, 4 s … 30 s; a run that lasted a minute counts as healthy again.
    failures = Date.now() - started > 60_000 ? 1 : failures + 1;
    const delay = Math.min(30_000, 1000 * 2 ** (failures - 1));
    process.stdout.write(`${prefix(service, index)} exited (${code}); restarting in ${delay / 1000}s\n`);
    await sleep(delay);
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
    `  mail that left         ${join(state, 'mail')}/{agency,outside}/*.eml`,
    '  try                    swaks --server 127.0.0.1:2525 --to amt@behoerde.example',
    '  trace a message        ./smgw trace <message-id>      stop: Ctrl-C',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
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

const services = localServices();
void announceWhenReady(services.filter((s) => s.name !== 'sink'));
await Promise.all(services.map((s, i) => run(s, i)));
rmSync(runDir, { recursive: true, force: true });
process.stdout.write('all stopped\n');
