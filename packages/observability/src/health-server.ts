import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** A named readiness check: resolves true when the dependency is usable. Must not throw (false instead). */
export type ReadinessCheck = () => Promise<boolean> | boolean;

export interface HealthServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/**
 * Serves GET /healthz (the process is alive), GET /readyz (every check passes; 503 with the failing names
 * otherwise) and GET /metrics (Prometheus text). Port 0 picks a free port (tests).
 */
export async function startHealthServer(options: {
  port: number;
  host?: string;
  registry: Registry;
  checks: Record<string, ReadinessCheck>;
}): Promise<HealthServer> {
  const server = createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"alive"}');
      return;
    }
    if (path === '/readyz') {
      const results = await runChecks(options.checks);
      const ready = Object.values(results).every(Boolean);
      res
        .writeHead(ready ? 200 : 503, { 'content-type': 'application/json' })
        .end(JSON.stringify({ status: ready ? 'ready' : 'not ready', checks: results }));
      return;
    }
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': options.registry.contentType }).end(await options.registry.metrics());
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export async function runChecks(checks: Record<string, ReadinessCheck>): Promise<Record<string, boolean>> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      try {
        return [name, await check()] as const;
      } catch {
        return [name, false] as const;
      }
    }),
  );
  return Object.fromEntries(entries);
}
