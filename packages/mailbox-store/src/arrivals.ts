// What the mailbox stage did with each recipient of each message (stored, or refused over quota) and the mails it
// made about it. Written in the arrival's transaction; a redelivered envelope finds it and republishes the same
// mails instead of storing, counting or notifying twice.
import { type Pool, type PoolClient, preparedStatement } from '@smgw/db';
import { type Envelope, parseEnvelope } from '@smgw/envelope';
import type { SealedMailboxMessage } from './mailbox-messages.ts';
import type { MailboxState } from './mailboxes.ts';

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

export interface ArrivalRecord {
  messageId: string;
  recipient: string;
  mailboxId: string;
  /** The mails made for the mailbox as it was read before the transaction. */
  notices: Envelope[];
  /** The mailbox's state the mails were written for. */
  state: MailboxState;
  /** The message's size, decided against quotaBytes before the transaction. */
  size: number;
  quotaBytes: number;
  /** Stored: the message sealed for the mailbox (sealMailboxMessage); absent: refused over quota. */
  message?: SealedMailboxMessage | undefined;
}

export type ArrivalRecorded =
  /** Written; `usageBytes`: the mailbox's usage before this message. */
  | { kind: 'recorded'; usageBytes: number }
  /** A concurrent delivery of the same envelope recorded it first: nothing was written. */
  | { kind: 'redelivered' }
  /**
   * The mailbox is no longer the one the mails were written for (deleted, other state, the message no longer fits
   * or now fits): the caller rolls its transaction back and tries again. The arrival row may have been written.
   */
  | { kind: 'changed' };

const FOREIGN_KEY_VIOLATION = '23503';

// One statement, so the mailbox row is locked only from here to the commit: everything else of the arrival (the
// sealing, the trace, the notices) is done before. The usage is added by a conditional update that is the quota
// check itself: under concurrent arrivals each sees the usage the one before it left, so the quota is never
// exceeded. The message row is inserted only with the arrival row (a redelivery stores nothing) and counted only
// when inserted; the foreign keys make an arrival for a mailbox deleted meanwhile fail (23503), or make the deletion
// wait for this commit and then take the message with it.
const RECORD_STORED_ARRIVAL = preparedStatement(
  'mailbox-record-stored-arrival',
  `with arrival as (
     insert into mailbox_arrivals (message_id, recipient, outcome, mailbox_id, notices, arrived_at)
     values ($1, $2, 'stored', $3, $4, $5) on conflict do nothing returning mailbox_id),
   stored as (
     insert into mailbox_messages (id, mailbox_id, folder, message_id, recipient, size, received_at, content, summary)
     select $6, a.mailbox_id, $7, $1, $2, $8, $9, $10, $11 from arrival a
     on conflict (mailbox_id, message_id, recipient) do nothing returning size),
   mailbox as (
     update mailboxes set usage_bytes = usage_bytes + coalesce((select sum(size) from stored), 0)
      where id = $3 and state = $12 and usage_bytes + $8 <= $13 and exists (select from arrival)
      returning usage_bytes - coalesce((select sum(size) from stored), 0) as usage_before)
   select exists (select from arrival) as recorded, (select usage_before from mailbox) as usage_before`,
);

// Over quota nothing is added: the check reads the row without locking it (the arrival row's foreign key keeps a
// deletion waiting until the commit).
const RECORD_REFUSED_ARRIVAL = preparedStatement(
  'mailbox-record-refused-arrival',
  `with arrival as (
     insert into mailbox_arrivals (message_id, recipient, outcome, mailbox_id, notices, arrived_at)
     values ($1, $2, 'over_quota', $3, $4, $5) on conflict do nothing returning mailbox_id)
   select exists (select from arrival) as recorded,
          (select usage_bytes from mailboxes where id = $3 and state = $6 and usage_bytes + $7 > $8) as usage_before`,
);

/**
 * Records an arrival in the caller's transaction, as its last statement before the commit: the arrival row and,
 * stored, the message with its size added to the mailbox's usage; only if the mailbox is still the one (same id,
 * same state) and the message still fits (stored) or still does not (over quota).
 */
export async function recordArrival(db: PoolClient, arrival: ArrivalRecord, at: Date): Promise<ArrivalRecorded> {
  const common = [arrival.messageId, arrival.recipient, arrival.mailboxId, JSON.stringify(arrival.notices), at];
  const { message } = arrival;
  if (message && (message.mailboxId !== arrival.mailboxId || message.size !== arrival.size)) {
    throw new RangeError(`the sealed message is not the one of the arrival ${arrival.messageId}`);
  }
  let row: { recorded: boolean; usage_before: string | null } | undefined;
  try {
    const result = await db.query(
      message
        ? RECORD_STORED_ARRIVAL([
            ...common,
            message.id,
            message.folder,
            message.size,
            message.receivedAt,
            message.content,
            message.summary,
            arrival.state,
            arrival.quotaBytes,
          ])
        : RECORD_REFUSED_ARRIVAL([...common, arrival.state, arrival.size, arrival.quotaBytes]),
    );
    row = result.rows[0];
  } catch (err) {
    if ((err as { code?: string }).code === FOREIGN_KEY_VIOLATION) return { kind: 'changed' };
    throw err;
  }
  if (!row?.recorded) return { kind: 'redelivered' };
  if (row.usage_before === null) return { kind: 'changed' };
  return { kind: 'recorded', usageBytes: Number(row.usage_before) };
}
