// The liveness of a deliver process as the database sees it: one dedicated PostgreSQL session held open for the
// process's life. Its (pid, backend_start) marks the `sending` claims this process makes; a claim whose session no
// longer exists belongs to a dead process and may be taken over at once (see claimRecipients).

import { type Client, createClient } from '@smgw/db';
import type { Logger } from '@smgw/observability';

export interface OwnerIdentity {
  pid: number;
  /** backend_start as PostgreSQL prints it: text keeps the microseconds a JS Date would drop. */
  started: string;
}

export interface OwnerSession {
  /** The current identity; undefined while the session is being re-established (claims then fall back to the lease). */
  identity(): OwnerIdentity | undefined;
  close(): Promise<void>;
}

export async function openOwnerSession(url: string, log: Logger): Promise<OwnerSession> {
  let current: OwnerIdentity | undefined;
  let client: Client | undefined;
  let closed = false;

  async function connect(): Promise<void> {
    const c = createClient({ url, applicationName: 'smgw-deliver-owner' });
    c.on('error', (err) => {
      current = undefined;
      log.warn({ err, code: 'DELIVER_OWNER_SESSION_LOST' }, 'owner session lost; reconnecting');
      void c.end().catch(() => {});
      if (!closed) setTimeout(() => void connect().catch(() => {}), 1000).unref();
    });
    await c.connect();
    const { rows } = await c.query<{ pid: number; started: string }>(
      'select pid, backend_start::text as started from pg_stat_activity where pid = pg_backend_pid()',
    );
    const row = rows[0];
    if (!row) throw new Error('cannot read this session from pg_stat_activity');
    client = c;
    current = { pid: row.pid, started: row.started };
  }

  await connect();
  return {
    identity: () => current,
    async close() {
      closed = true;
      current = undefined;
      await client?.end().catch(() => {});
    },
  };
}
