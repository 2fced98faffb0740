import type { AddressInfo } from 'node:net';
import type { ConfigOf } from '@smgw/config';
import { createRevocationFetcher } from '@smgw/crypto';
import { createPool } from '@smgw/db';
import { createFolderMailboxKeyStore } from '@smgw/mailbox-store';
import { connectMq } from '@smgw/mq';
import { createRegistry, type Logger } from '@smgw/observability';
import { buildAdminApi } from './api.ts';
import type { adminSettings } from './config.ts';

export interface RunningAdmin {
  port: number;
  stop(): Promise<void>;
}

/** The admin settings; the key ones may be left out (no master key or key store; revocation `require`). */
type OptionalSetting = 'masterKey' | 'masterKeyPrevious' | 'keyStoreDir' | 'revocationMode';
export type AdminConfig = Omit<ConfigOf<typeof adminSettings>, OptionalSetting> &
  Partial<Pick<ConfigOf<typeof adminSettings>, OptionalSetting>>;

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
        keys:
          config.masterKey && config.keyStoreDir
            ? createFolderMailboxKeyStore({
                keyStoreDir: config.keyStoreDir,
                masterKey: config.masterKey,
                masterKeyPrevious: config.masterKeyPrevious,
              })
            : undefined,
        quotaBytes: config.mailboxQuotaBytes,
        linkLifetimeMs: config.activationLinkLifetime,
        reactivationLinkLifetimeMs: config.reactivationLinkLifetime,
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
