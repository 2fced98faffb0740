// A portal message's Sent copy has its bytes reserved in its mailbox's usage when the message is recorded (the
// portal's submit.ts, step 3: `message.submitted` of stage `portal`, its data naming mailboxId and size), and the copy
// is stored on them once the publish is confirmed (step 5: `message.sent-copy-stored`, written in the transaction
// that stores the copy). The trace, not mailbox_messages, tells whether the reservation was used: a user who deleted
// the copy got its bytes back then, and its row is gone while the event stays. A reservation still open when its
// draft can no longer be sent again is given back by the reaper, which closes it with `message.sent-copy-abandoned`
// in the same transaction: after either closing event nothing touches the reservation again.
import type { Pool, PoolClient } from '@smgw/db';
import { lockMessageRow, recordEvent } from './index.ts';

type Queryable = Pool | PoolClient;

/** The portal's stage name and the events that open and close a Sent copy's reservation. */
const PORTAL_STAGE = 'portal';
const RESERVED = 'message.submitted';
const STORED = 'message.sent-copy-stored';
const ABANDONED = 'message.sent-copy-abandoned';

/**
 * The condition, on the message id `messageId` (an SQL expression), of a message whose Sent-copy reservation is open:
 * recorded by the portal, and neither stored nor abandoned. The trace retention keeps such a message (retention.ts):
 * its reservation is found through these events, and its draft resumes from its record.
 */
export function openSentCopyReservation(messageId: string): string {
  return `exists (select 1 from message_events s
                   where s.message_id = ${messageId} and s.stage = '${PORTAL_STAGE}' and s.event = '${RESERVED}')
     and not exists (select 1 from message_events c
                      where c.message_id = ${messageId} and c.event in ('${STORED}', '${ABANDONED}'))`;
}

/** A portal message whose reserved Sent-copy bytes no one used: recorded before the cut-off, open still. */
export interface AbandonedSentCopy {
  messageId: string;
  /** The mailbox that reserved the bytes; undefined when the event names none. */
  mailboxId: string | undefined;
  /** The bytes reserved: the size the portal recorded (the message row's when the event has none). */
  bytes: number;
  submittedAt: Date;
}

/**
 * Oldest first. A size or mailbox id that is not what the portal writes reads as none (the message row's size, no
 * mailbox), so one odd event cannot stop the sweep for ever.
 */
const ABANDONED_SENT_COPIES = `
  select s.message_id, s.at,
         case when jsonb_typeof(s.data -> 'mailboxId') = 'string' then s.data ->> 'mailboxId' end as mailbox_id,
         case when jsonb_typeof(s.data -> 'size') = 'number' and (s.data ->> 'size')::numeric >= 0
              then round((s.data ->> 'size')::numeric)::bigint else m.size end as bytes
    from message_events s join messages m on m.id = s.message_id
   where s.stage = '${PORTAL_STAGE}' and s.event = '${RESERVED}' and s.at < $1
     and ($3::text is null or s.message_id = $3)
     and not exists (select 1 from message_events c
                      where c.message_id = s.message_id and c.event in ('${STORED}', '${ABANDONED}'))
   order by s.at, s.message_id
   limit $2`;

async function selectAbandonedSentCopies(
  db: Queryable,
  before: Date,
  limit: number,
  messageId: string | null,
): Promise<AbandonedSentCopy[]> {
  const { rows } = await db.query(ABANDONED_SENT_COPIES, [before, limit, messageId]);
  return rows.map((row) => ({
    messageId: row.message_id,
    mailboxId: row.mailbox_id ?? undefined,
    bytes: Number(row.bytes),
    submittedAt: new Date(row.at),
  }));
}

/**
 * Portal messages recorded before `before` whose Sent-copy reservation is still open, oldest first, at most `limit`.
 * A plain read: claimAbandonedSentCopy decides, under a lock, whether one is still open.
 */
export async function listAbandonedSentCopies(
  db: Queryable,
  before: Date,
  limit: number,
): Promise<AbandonedSentCopy[]> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
  return selectAbandonedSentCopies(db, before, limit, null);
}

/**
 * In the caller's transaction: locks the message's row, then reads again whether its reservation is still open. Two
 * claims of one message wait for each other on that lock, and the read after it is a statement of its own, so it sees
 * the closing event the other one committed: only one of them gets the reservation. The caller locks the mailbox row
 * first (as the portal does before it stores a copy), so a copy stored meanwhile is seen here too. Undefined: closed
 * meanwhile, or the message is gone.
 */
export async function claimAbandonedSentCopy(
  db: PoolClient,
  messageId: string,
  before: Date,
): Promise<AbandonedSentCopy | undefined> {
  if (!(await lockMessageRow(db, messageId))) return undefined;
  const [copy] = await selectAbandonedSentCopies(db, before, 1, messageId);
  return copy;
}

/**
 * Closes a claimed reservation in the caller's transaction (the one that gave its bytes back): after this the message
 * is never listed again, and the trace retention may take it once it is finished.
 */
export async function recordSentCopyAbandoned(
  db: PoolClient,
  copy: AbandonedSentCopy,
  event: { stage: string; reason: string; data: Record<string, unknown>; at: Date },
): Promise<void> {
  await recordEvent(db, copy.messageId, {
    stage: event.stage,
    event: ABANDONED,
    outcome: 'done',
    reason: event.reason,
    data: event.data,
    at: event.at,
  });
}

/**
 * Where a portal message's Sent-copy reservation stands: `open` (the bytes are reserved and no copy was stored on
 * them), `stored` (a copy was stored on them: the user may have deleted it since, and got its bytes back then),
 * `abandoned` (the reaper gave them back: recordSentCopyAbandoned). Read by the portal under the mailbox row's lock
 * before it stores a copy: only an open reservation may take one; a resend after `stored` must not store another
 * uncounted copy (its bytes came off the usage with the deleted one, and would come off again with this one).
 */
export async function sentCopyReservationState(
  db: Queryable,
  messageId: string,
): Promise<'open' | 'stored' | 'abandoned'> {
  const { rows } = await db.query<{ event: string }>(
    'select event from message_events where message_id = $1 and event = any($2::text[])',
    [messageId, [STORED, ABANDONED]],
  );
  if (rows.some((r) => r.event === STORED)) return 'stored';
  return rows.length > 0 ? 'abandoned' : 'open';
}
