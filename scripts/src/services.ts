// What `./smgw up` runs locally, and where each process answers /readyz.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type LocalSink, planLocalRelays } from './local-relays.ts';

export interface LocalService {
  name: string;
  /** A gateway service, or a local stand-in for a relay (not part of the gateway: not waited for). */
  kind: 'gateway' | 'sink';
  entry: string;
  /** Port of /readyz (the health server, or the admin API). */
  readyPort: number;
  env: Record<string, string>;
}

/** The sinks wanted by the relay settings (see local-relays.ts), then the gateway's services. */
export function localServices(
  env: NodeJS.ProcessEnv = process.env,
  sinks: LocalSink[] = planLocalRelays(env).sinks,
): LocalService[] {
  const adminPort = Number(env.SMGW_ADMIN_PORT ?? 8081);
  const worker = (name: string, healthPortSetting: string, defaultPort: string): LocalService => ({
    name,
    kind: 'gateway',
    entry: `services/${name}/src/main.ts`,
    readyPort: Number(env[healthPortSetting] ?? defaultPort),
    env: { SMGW_HEALTH_PORT: env[healthPortSetting] ?? defaultPort },
  });
  return [
    ...sinks.map(
      (sink): LocalService => ({
        name: `sink-${sink.name}`,
        kind: 'sink',
        entry: 'scripts/src/mail-sink.ts',
        readyPort: sink.healthPort,
        env: {
          SMGW_SINK_NAME: sink.name,
          SMGW_SINK_PORT: String(sink.port),
          SMGW_HEALTH_PORT: String(sink.healthPort),
        },
      }),
    ),
    worker('ingest', 'SMGW_INGEST_HEALTH_PORT', '9101'),
    worker('scan', 'SMGW_SCAN_HEALTH_PORT', '9103'),
    worker('encrypt', 'SMGW_ENCRYPT_HEALTH_PORT', '9104'),
    worker('signature-verify', 'SMGW_SIGNATURE_VERIFY_HEALTH_PORT', '9107'),
    worker('deliver', 'SMGW_DELIVER_HEALTH_PORT', '9102'),
    worker('mailbox', 'SMGW_MAILBOX_HEALTH_PORT', '9105'),
    worker('lifecycle-reaper', 'SMGW_LIFECYCLE_REAPER_HEALTH_PORT', '9106'),
    { name: 'admin', kind: 'gateway', entry: 'services/admin/src/main.ts', readyPort: adminPort, env: {} },
  ];
}

/** What a running `./smgw up` started, for `./smgw status` (whose shell may have other settings). */
const RUNNING_FILE = 'services.json';

export function writeRunningServices(runDir: string, services: LocalService[]): void {
  const entries = services.map(({ name, readyPort }) => ({ name, readyPort }));
  writeFileSync(join(runDir, RUNNING_FILE), `${JSON.stringify(entries)}\n`);
}

/** Undefined when no `./smgw up` runs (a supervisor killed hard leaves its run folder behind). */
export function readRunningServices(runDir: string): { name: string; readyPort: number }[] | undefined {
  try {
    process.kill(Number(readFileSync(join(runDir, 'supervisor.pid'), 'utf8')), 0);
    return JSON.parse(readFileSync(join(runDir, RUNNING_FILE), 'utf8'));
  } catch {
    return undefined;
  }
}

export async function isReady(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}
