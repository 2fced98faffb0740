// What the mailbox stage did with each recipient of each message (stored, or refused over quota) and the mails it
// made about it. Written in the arrival's transaction; a redelivered envelope finds it and republishes the same
// mails instead of storing, counting or notifying twice.
import type { Pool, PoolClient } from '@smgw/db';
import { type Envelope, parseEnvelope } from '@smgw/envelope';

type Queryable = Pool | PoolClient;

export type ArrivalOutcome = 'stored' | 'over_quota';

export interface Arrival {
  messageId: string;
  recipient: string;
  outcome: ArrivalOutcome;
  mailboxId: string | null;
  notices: Envelope[];
}

export async function findArrival(db: Queryable, messageId: string, recipient: string): Promise<Arrival | undefined> {
  const found = await db.query('select * from mailbox_arrivals where message_id = $1 and recipient = $2', [
    messageId,
    recipient,
  ]);
  const row = found.rows[0];
  if (!row) return undefined;
  const notices = (row.notices as unknown[]).flatMap((n) => {
    const parsed = parseEnvelope(n);
    return parsed.ok ? [parsed.envelope] : [];
  });
  return { messageId, recipient, outcome: row.outcome, mailboxId: row.mailbox_id, notices };
}

/** Records the arrival; false when it was recorded already (a concurrent delivery of the same envelope won). */
export async function insertArrival(db: PoolClient, arrival: Arrival, at: Date): Promise<boolean> {
  const inserted = await db.query(
    `insert into mailbox_arrivals (message_id, recipient, outcome, mailbox_id, notices, arrived_at)
     values ($1, $2, $3, $4, $5, $6) on conflict do nothing`,
    [arrival.messageId, arrival.recipient, arrival.outcome, arrival.mailboxId, JSON.stringify(arrival.notices), at],
  );
  return (inserted.rowCount ?? 0) > 0;
}
