// Arrivals on the bench's portal path: a message has arrived when its row is in the recipient's portal mailbox
// (mailbox_messages, inbox). Counted by polling PostgreSQL on a connection of its own, whose backend process the bench
// leaves out of the gateway's CPU, and only while a round or check waits for them.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool } from '@smgw/db';
import { countMailboxMessages, findMailbox } from '@smgw/mailbox-store';
import { CounterClock } from './smtp-tools.ts';

export interface MailboxArrivals {
  /** When each message was first seen in the inbox (performance.now()), in order. */
  arrivals: number[];
  count(): number;
  /** The PostgreSQL backend that answers the polls: the bench's work, not the gateway's. */
  backendPid: number;
  /** Polls every `intervalMs` (default 20) until `total` messages are in the inbox. */
  awaitCount(total: number, options: { timeoutMs: number; intervalMs?: number }): Promise<void>;
  /** Stops polling and gives the connection back (before the gateway's database goes). */
  close(): Promise<void>;
}

export async function watchMailbox(pool: Pool, address: string): Promise<MailboxArrivals> {
  const client = await pool.connect();
  const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
  const clock = new CounterClock('sink');
  let mailboxId: string | undefined;
  let closed = false;
  // One poll at a time on the one connection, however many waits there are; a failed poll fails its wait only.
  let polling: Promise<void> = Promise.resolve();
  const poll = () => {
    polling = polling
      .catch(() => {})
      .then(async () => {
        if (closed) return;
        mailboxId ??= (await findMailbox(client, address))?.id;
        if (mailboxId) clock.advanceTo((await countMailboxMessages(client, mailboxId)).inbox.messages);
      });
    return polling;
  };
  return {
    arrivals: clock.times,
    count: () => clock.times.length,
    backendPid: rows[0]?.pid ?? 0,
    async awaitCount(total, { timeoutMs, intervalMs = 20 }) {
      const deadline = performance.now() + timeoutMs;
      while (clock.times.length < total) {
        if (closed) throw new Error(`stopped watching the mailbox of ${address}`);
        if (performance.now() > deadline) {
          throw new Error(
            `timed out waiting for ${total} messages in the mailbox of ${address} (${clock.times.length})`,
          );
        }
        await poll();
        await sleep(intervalMs);
      }
    },
    async close() {
      closed = true;
      await polling.catch(() => {});
      client.release();
    },
  };
}
