import type { AddressInfo } from 'node:net';
import type { ConfigOf } from '@smgw/config';
import { createRevocationFetcher } from '@smgw/crypto';
import { createPool } from '@smgw/db';
import { connectMq } from '@smgw/mq';
import { createRegistry, type Logger } from '@smgw/observability';
import { buildAdminApi } from './api.ts';
import type { adminSettings } from './config.ts';

export interface RunningAdmin {
  port: number;
  stop(): Promise<void>;
}

/** The admin settings; the key-directory ones may be left out (no master key; revocation `require`). */
export type AdminConfig = Omit<ConfigOf<typeof adminSettings>, 'masterKey' | 'masterKeyPrevious' | 'revocationMode'> &
  Partial<Pick<ConfigOf<typeof adminSettings>, 'masterKey' | 'masterKeyPrevious' | 'revocationMode'>>;

export async function startAdmin(
  config: AdminConfig,
  log: Logger,
  options: { now?: () => Date } = {},
): Promise<RunningAdmin> {
  const now = options.now ?? (() => new Date());
  const pool = createPool({ url: config.databaseUrl, schema: config.databaseSchema, applicationName: 'smgw-admin' });
  const mq = await connectMq({ url: config.amqpUrl, logger: log, connectionName: 'smgw-admin' });
  try {
    // No retry ladders: admin only publishes (releases) and needs the work queues to exist.
    await mq.declareTopology({});
    const registry = createRegistry('admin');
    const app = buildAdminApi({
      pool,
      token: config.adminToken,
      logger: log,
      registry,
      mq,
      keyDirectory: {
        revocationMode: config.revocationMode ?? 'require',
        revocationFetcher: createRevocationFetcher({ now, allow: config.revocationAllow }),
        masterKey: config.masterKey,
        now,
      },
      mailboxes: {
        masterKeys: [config.masterKey, config.masterKeyPrevious].filter((key): key is Buffer => key !== undefined),
        quotaBytes: config.mailboxQuotaBytes,
        linkLifetimeMs: config.activationLinkLifetime,
        pinDelayMs: config.pinDelay,
      },
    });
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
