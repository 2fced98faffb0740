// What the mailbox stage did with each recipient of each message (stored, or refused over quota) and the mails it
// made about it. Written in the arrival's transaction; a redelivered envelope finds it and republishes the same
// mails instead of storing, counting or notifying twice.
import { type Pool, type PoolClient, preparedStatement } from '@smgw/db';
import { type Envelope, parseEnvelope } from '@smgw/envelope';
import type { SealedMailboxMessage } from './mailbox-messages.ts';
import { MAILBOX_STATES, type MailboxState } from './mailboxes.ts';

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
  /**
   * Written. Stored: `addedBytes` is what commitArrival must add to the usage (0 when the mailbox held the message
   * already); over quota: the refusal was checked (the message still does not fit), a plain commit ends it.
   */
  | { kind: 'recorded'; addedBytes: number }
  /** A concurrent delivery of the same envelope recorded it first: nothing was written. */
  | { kind: 'redelivered' }
  /**
   * The mailbox is no longer the one the mails were written for (deleted, another state, the message now fits): the
   * caller rolls its transaction back and tries again.
   */
  | { kind: 'changed' };

const FOREIGN_KEY_VIOLATION = '23503';
/** Raised by commitArrival's check when the mailbox changed (a code of the gateway's own, class "SM"). */
const MAILBOX_CHANGED_STATE = 'SMMB1';

// The arrival row and the message row in one statement, without locking the mailbox row: their foreign keys only
// take its key-share lock (an arrival for a mailbox deleted meanwhile fails with 23503; a deletion waits for this
// commit and then takes the message with it). The message row is inserted only with the arrival row, so a
// redelivery stores nothing; the usage is added by commitArrival.
const RECORD_STORED_ARRIVAL = preparedStatement(
  'mailbox-record-stored-arrival',
  `with arrival as (
     insert into mailbox_arrivals (message_id, recipient, outcome, mailbox_id, notices, arrived_at)
     values ($1, $2, 'stored', $3, $4, $5) on conflict do nothing returning mailbox_id),
   stored as (
     insert into mailbox_messages (id, mailbox_id, folder, message_id, recipient, size, received_at, content, summary)
     select $6, a.mailbox_id, $7, $1, $2, $8, $9, $10, $11 from arrival a
     on conflict (mailbox_id, message_id, recipient) do nothing returning size)
   select exists (select from arrival) as recorded, coalesce((select sum(size) from stored), 0) as added_bytes`,
);

// Over quota nothing is added, so nothing needs the row lock: the check reads the row as it is.
const RECORD_REFUSED_ARRIVAL = preparedStatement(
  'mailbox-record-refused-arrival',
  `with arrival as (
     insert into mailbox_arrivals (message_id, recipient, outcome, mailbox_id, notices, arrived_at)
     values ($1, $2, 'over_quota', $3, $4, $5) on conflict do nothing returning mailbox_id)
   select exists (select from arrival) as recorded,
          exists (select from mailboxes where id = $3 and state = $6 and usage_bytes + $7 > $8) as still_refused`,
);

/**
 * Records an arrival in the caller's transaction: the arrival row and, stored, the sealed message (whose bytes
 * commitArrival then adds to the usage); over quota, only if the mailbox is still in the state the mails were
 * written for and the message still does not fit. Does not lock the mailbox row.
 */
export async function recordArrival(db: PoolClient, arrival: ArrivalRecord, at: Date): Promise<ArrivalRecorded> {
  const common = [arrival.messageId, arrival.recipient, arrival.mailboxId, JSON.stringify(arrival.notices), at];
  const { message } = arrival;
  if (message && (message.mailboxId !== arrival.mailboxId || message.size !== arrival.size)) {
    throw new RangeError(`the sealed message is not the one of the arrival ${arrival.messageId}`);
  }
  try {
    if (message) {
      const { rows } = await db.query<{ recorded: boolean; added_bytes: string }>(
        RECORD_STORED_ARRIVAL([
          ...common,
          message.id,
          message.folder,
          message.size,
          message.receivedAt,
          message.content,
          message.summary,
        ]),
      );
      if (!rows[0]?.recorded) return { kind: 'redelivered' };
      return { kind: 'recorded', addedBytes: Number(rows[0].added_bytes) };
    }
    const { rows } = await db.query<{ recorded: boolean; still_refused: boolean }>(
      RECORD_REFUSED_ARRIVAL([...common, arrival.state, arrival.size, arrival.quotaBytes]),
    );
    if (!rows[0]?.recorded) return { kind: 'redelivered' };
    return rows[0].still_refused ? { kind: 'recorded', addedBytes: 0 } : { kind: 'changed' };
  } catch (err) {
    if ((err as { code?: string }).code === FOREIGN_KEY_VIOLATION) return { kind: 'changed' };
    throw err;
  }
}

const MAILBOX_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function safeInteger(name: string, value: number): string {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} is not a byte count: ${value}`);
  return String(value);
}

/**
 * Ends the arrival's transaction (after recordArrival stored a message): adds `addedBytes` to the mailbox's usage
 * if it is still in `state` and `size` still fits under `quotaBytes`, and commits, in ONE round trip. The conditional
 * update is the quota check itself (concurrent arrivals each see the usage the one before left: the quota is never
 * exceeded), and its row lock lasts only for the server's own commit: no client round trip while a busy mailbox's
 * other arrivals wait. Returns 'changed' when the mailbox is no longer the one (the transaction is then aborted and
 * the caller rolls it back); a failed commit throws as usual.
 *
 * One round trip means one simple-protocol query of two statements, so its values are literals: each is checked
 * here (a mailbox id, a state of MAILBOX_STATES, byte counts) and none comes from a message.
 */
export async function commitArrival(
  db: PoolClient,
  reservation: { mailboxId: string; state: MailboxState; size: number; addedBytes: number; quotaBytes: number },
): Promise<'committed' | 'changed'> {
  if (!MAILBOX_ID.test(reservation.mailboxId)) throw new RangeError(`not a mailbox id: ${reservation.mailboxId}`);
  if (!MAILBOX_STATES.includes(reservation.state)) throw new RangeError(`not a mailbox state: ${reservation.state}`);
  const added = safeInteger('addedBytes', reservation.addedBytes);
  const size = safeInteger('size', reservation.size);
  const quota = safeInteger('quotaBytes', reservation.quotaBytes);
  try {
    await db.query(
      `do $reserve$ begin
         update mailboxes set usage_bytes = usage_bytes + ${added}
          where id = '${reservation.mailboxId}' and state = '${reservation.state}' and usage_bytes + ${size} <= ${quota};
         if not found then
           raise exception 'mailbox % changed', '${reservation.mailboxId}' using errcode = '${MAILBOX_CHANGED_STATE}';
         end if;
       end $reserve$; commit`,
    );
  } catch (err) {
    if ((err as { code?: string }).code === MAILBOX_CHANGED_STATE) return 'changed';
    throw err;
  }
  return 'committed';
}
