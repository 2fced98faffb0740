import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { serviceProcessEnv } from './isolation.ts';
import { waitFor } from './wait.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * A free TCP port on 127.0.0.1 (bound and released; fine for tests on one machine), taken below the kernel's range
 * of ephemeral ports where it can. A port from that range (what `listen(0)` hands out) can be taken, between this
 * check and the server's own bind, as the local port of any outgoing connection: the crash and chaos runs open
 * thousands of them beside the other tests, and a private RabbitMQ node once died at start that way.
 */
export async function freePort(): Promise<number> {
  const below = await ephemeralPortsStart();
  for (let attempt = 0; below > FIRST_CHOSEN_PORT && attempt < 50; attempt++) {
    const port = FIRST_CHOSEN_PORT + Math.floor(Math.random() * (below - FIRST_CHOSEN_PORT));
    if (await canListen(port)) return port;
  }
  return listenOnce(0);
}

/** Where ports picked at random begin: above the ports of the servers a machine runs (5432, 5672, 6379, 15672…). */
const FIRST_CHOSEN_PORT = 20_000;

async function ephemeralPortsStart(): Promise<number> {
  const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '');
  const start = Number(range.trim().split(/\s+/)[0]);
  return Number.isInteger(start) && start > 0 ? start : 0;
}

async function canListen(port: number): Promise<boolean> {
  return listenOnce(port).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE' || error.code === 'EACCES') return false;
      throw error;
    },
  );
}

/** Listens on `port` (0: any) of 127.0.0.1, closes again and returns the port. */
async function listenOnce(port: number): Promise<number> {
  const server = createServer();
  server.listen(port, '127.0.0.1');
  await once(server, 'listening'); // rejects with the 'error' event's error, e.g. EADDRINUSE
  const bound = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return bound;
}

export interface ServiceProcess {
  /** The instance: the service's name, or `<service>-<n>` for a further replica. */
  name: string;
  /** Which service this is (`services/<service>`). */
  service: string;
  healthPort: number;
  /** The running child, if any. */
  child: ChildProcess | undefined;
  /** Everything the process wrote (stdout and stderr), for diagnosing a failed test. */
  output: string[];
  start(): Promise<void>;
  /** kill -9: no shutdown hooks run. */
  crash(): Promise<void>;
  /**
   * SIGTERM and wait for the exit; kill -9 only if it has not exited within `graceMs` (default 20 s), as Kubernetes
   * does after terminationGracePeriodSeconds. Says whether it exited by itself and how.
   */
  stop(graceMs?: number): Promise<StopResult>;
  /** Peak resident set size (VmHWM) of the current child in bytes, from /proc. */
  peakRssBytes(): Promise<number | undefined>;
  /** A metric's value from the service's /metrics, summed over the label sets that have `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

export interface StopResult {
  /** false: still running at the end of the grace period, so it was killed (-9). */
  exitedByItself: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * A gateway service (`services/<service>/src/main.ts`) as a real child process with its own environment,
 * started and restarted like a supervisor would, ready when its /readyz answers 200. `name` tells replicas of
 * one service apart (`scan`, `scan-2`).
 */
export function serviceProcess(
  name: string,
  env: Record<string, string>,
  healthPort: number,
  service = name,
): ServiceProcess {
  const entry = `${ROOT}services/${service}/src/main.ts`;
  /** Spawns the process and waits until it is ready; its last output if it exited instead. */
  const startOnce = async (): Promise<string | undefined> => {
    const child = spawn(process.execPath, [entry], {
      cwd: ROOT,
      // Each service logs in as its own test role (serviceProcessEnv), granted what the service is in production.
      env: {
        ...process.env,
        SMGW_LOG_LEVEL: 'warn',
        ...serviceProcessEnv(env, service),
        SMGW_HEALTH_PORT: String(handle.healthPort),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    handle.child = child;
    const keep = (chunk: Buffer) => {
      handle.output.push(chunk.toString());
      if (handle.output.length > 2000) handle.output.splice(0, 1000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let exited = false;
    child.once('exit', () => {
      exited = true;
    });
    await waitFor(
      `${name} to become ready on :${handle.healthPort}`,
      async () => {
        if (exited) return true; // stop waiting; reported by the caller
        const res = await fetch(`http://127.0.0.1:${handle.healthPort}/readyz`).catch(() => undefined);
        return res?.ok;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    return exited ? handle.output.join('').slice(-3000) : undefined;
  };
  const handle: ServiceProcess = {
    name,
    service,
    healthPort,
    child: undefined,
    output: [],
    async start() {
      // A port found free may be taken before the service binds it (another test's outgoing connection gets it
      // as its local port): a service that could not bind its health port is started again on a fresh one.
      for (let attempt = 1; ; attempt++) {
        const output = await startOnce();
        if (output === undefined) return;
        const healthPortTaken = output.includes(`EADDRINUSE: address already in use 127.0.0.1:${handle.healthPort}`);
        if (!healthPortTaken || attempt === 3) throw new Error(`${name} exited during start:\n${output}`);
        handle.healthPort = await freePort();
      }
    },
    async crash() {
      const child = handle.child;
      if (!child || child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
    async stop(graceMs = 20_000) {
      const child = handle.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) {
        return { exitedByItself: true, code: child?.exitCode ?? null, signal: child?.signalCode ?? null };
      }
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      let killed = false;
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        killed = true;
        child.kill('SIGKILL');
      }, graceMs);
      const [code, signal] = await exited;
      clearTimeout(timer);
      return { exitedByItself: !killed, code, signal };
    },
    async peakRssBytes() {
      const pid = handle.child?.pid;
      if (!pid) return undefined;
      try {
        const { readFile } = await import('node:fs/promises');
        const status = await readFile(`/proc/${pid}/status`, 'utf8');
        const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
        return kb ? Number(kb) * 1024 : undefined;
      } catch {
        return undefined;
      }
    },
    async metric(name, labels = {}) {
      const text = await (await fetch(`http://127.0.0.1:${handle.healthPort}/metrics`)).text();
      let sum = 0;
      for (const line of text.split('\n')) {
        if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
        const matches = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
        if (matches) sum += Number(line.split(' ').pop());
      }
      return sum;
    },
  };
  return handle;
}
