// What `./smgw up` runs locally, and where each process answers /readyz.
export interface LocalService {
  name: string;
  entry: string;
  /** Port of /readyz (the health server, or the admin API). */
  readyPort: number;
  env: Record<string, string>;
}

export function localServices(env: NodeJS.ProcessEnv = process.env): LocalService[] {
  const adminPort = Number(env.SMGW_ADMIN_PORT ?? 8081);
  return [
    {
      name: 'sink',
      entry: 'scripts/src/mail-sink.ts',
      readyPort: Number(env.SMGW_SINK_HEALTH_PORT ?? 9109),
      env: {},
    },
    {
      name: 'ingest',
      entry: 'services/ingest/src/main.ts',
      readyPort: Number(env.SMGW_INGEST_HEALTH_PORT ?? 9101),
      env: { SMGW_HEALTH_PORT: env.SMGW_INGEST_HEALTH_PORT ?? '9101' },
    },
    {
      name: 'scan',
      entry: 'services/scan/src/main.ts',
      readyPort: Number(env.SMGW_SCAN_HEALTH_PORT ?? 9103),
      env: { SMGW_HEALTH_PORT: env.SMGW_SCAN_HEALTH_PORT ?? '9103' },
    },
    {
      name: 'encrypt',
      entry: 'services/encrypt/src/main.ts',
      readyPort: Number(env.SMGW_ENCRYPT_HEALTH_PORT ?? 9104),
      env: { SMGW_HEALTH_PORT: env.SMGW_ENCRYPT_HEALTH_PORT ?? '9104' },
    },
    {
      name: 'deliver',
      entry: 'services/deliver/src/main.ts',
      readyPort: Number(env.SMGW_DELIVER_HEALTH_PORT ?? 9102),
      env: { SMGW_HEALTH_PORT: env.SMGW_DELIVER_HEALTH_PORT ?? '9102' },
    },
    { name: 'admin', entry: 'services/admin/src/main.ts', readyPort: adminPort, env: {} },
  ];
}

export async function isReady(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}
