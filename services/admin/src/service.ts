import type { AddressInfo } from 'node:net';
import type { ConfigOf } from '@smgw/config';
import { createPool } from '@smgw/db';
import { connectMq } from '@smgw/mq';
import { createRegistry, type Logger } from '@smgw/observability';
import { buildAdminApi } from './api.ts';
import type { adminSettings } from './config.ts';

export interface RunningAdmin {
  port: number;
  stop(): Promise<void>;
}

export async function startAdmin(config: ConfigOf<typeof adminSettings>, log: Logger): Promise<RunningAdmin> {
  const pool = createPool({ url: config.databaseUrl, schema: config.databaseSchema, applicationName: 'smgw-admin' });
  const mq = await connectMq({ url: config.amqpUrl, logger: log, connectionName: 'smgw-admin' });
  try {
    // No retry ladders: admin only publishes (releases) and needs the work queues to exist.
    await mq.declareTopology({});
    const registry = createRegistry('admin');
    const app = buildAdminApi({ pool, token: config.adminToken, logger: log, registry, mq });
    await app.listen({ port: config.adminPort, host: config.adminBind });
    const port = (app.server.address() as AddressInfo).port;
    return {
      port,
      async stop() {
        await app.close();
        await mq.close();
        await pool.end();
      },
    };
  } catch (err) {
    await mq.close().catch(() => {});
    await pool.end().catch(() => {});
    throw err;
  }
}
