// Inactivity of portal mailboxes (issue 11): a period starts at the last login (else the activation, else the
// creation); in it a mailbox gets a first warning, a second, and is then deleted. A login starts a new period, so
// the warnings of the old one no longer count (deletion is cancelled). mailbox_inactivity_warnings has one row per
// (mailbox, kind, period): never two warnings of the same kind in one period.
//
// Each warning names the deletion date, and that date is kept: a warning sent late (the reaper was stopped) moves
// the deletion back so the mailbox owner always has the full time between warning and deletion. An operator's lock
// holds a mailbox: a locked one is neither warned nor deleted.
import type { Pool, PoolClient } from '@smgw/db';
import { type Mailbox, mailboxFromRow } from './mailboxes.ts';

type Queryable = Pool | PoolClient;

export const INACTIVITY_WARNING_KINDS = ['first', 'second'] as const;
export type InactivityWarningKind = (typeof INACTIVITY_WARNING_KINDS)[number];

/** SMGW_INACTIVITY_*: times from the start of the period (ms); first < second < deletion. */
export interface InactivitySchedule {
  firstWarningMs: number;
  secondWarningMs: number;
  deletionMs: number;
  /** A mailbox is deleted only when its newest message is older than this too. */
  minMessageAgeMs: number;
}

/** The start of the mailbox's inactivity period, in SQL (on the row `m`). */
const PERIOD_START = 'coalesce(m.last_login_at, m.activated_at, m.created_at)';

export interface DueWarning {
  mailboxId: string;
  address: string;
  periodStart: Date;
  /** When the mailbox will be deleted if nobody logs in: what the warning says. */
  deletionDueAt: Date;
}

/**
 * Mailboxes due for a warning of `kind` at `now`, oldest period first: the first after `firstWarningMs`; the second
 * after `secondWarningMs` and at least as long after the first as the schedule puts between them.
 */
export async function listDueInactivityWarnings(
  db: Queryable,
  kind: InactivityWarningKind,
  schedule: InactivitySchedule,
  now: Date,
  limit: number,
): Promise<DueWarning[]> {
  const ms = (n: number) => `($${n} * interval '1 millisecond')`;
  // The notice a warning gives: from it to the deletion, as long as the schedule has from its kind to the deletion.
  const query =
    kind === 'first'
      ? `select m.id, m.address, ${PERIOD_START} as period_start,
                greatest(${PERIOD_START} + ${ms(3)}, $1::timestamptz + ${ms(4)}) as deletion_due_at
           from mailboxes m
          where m.state <> 'locked' and ${PERIOD_START} <= $1::timestamptz - ${ms(2)}
            and not exists (select 1 from mailbox_inactivity_warnings w
                             where w.mailbox_id = m.id and w.kind = 'first' and w.period_start = ${PERIOD_START})
          order by period_start, m.id limit $5`
      : `select m.id, m.address, ${PERIOD_START} as period_start,
                greatest(f.deletion_due_at, $1::timestamptz + ${ms(4)}) as deletion_due_at
           from mailboxes m
           join mailbox_inactivity_warnings f
             on f.mailbox_id = m.id and f.kind = 'first' and f.period_start = ${PERIOD_START}
          where m.state <> 'locked' and ${PERIOD_START} <= $1::timestamptz - ${ms(2)}
            and f.sent_at <= $1::timestamptz - ${ms(3)}
            and not exists (select 1 from mailbox_inactivity_warnings w
                             where w.mailbox_id = m.id and w.kind = 'second' and w.period_start = ${PERIOD_START})
          order by period_start, m.id limit $5`;
  const values =
    kind === 'first'
      ? [now, schedule.firstWarningMs, schedule.deletionMs, schedule.deletionMs - schedule.firstWarningMs, limit]
      : [
          now,
          schedule.secondWarningMs,
          schedule.secondWarningMs - schedule.firstWarningMs,
          schedule.deletionMs - schedule.secondWarningMs,
          limit,
        ];
  const found = await db.query(query, values);
  return found.rows.map((row) => ({
    mailboxId: row.id,
    address: row.address,
    periodStart: row.period_start,
    deletionDueAt: row.deletion_due_at,
  }));
}

/**
 * Records the warning in the caller's transaction, if the mailbox is still in the same period, not locked, and has
 * no warning of this kind in it. Locks the mailbox row (a login waits, or was first and wins). False: not to send.
 */
export async function claimInactivityWarning(
  db: PoolClient,
  warning: { mailboxId: string; kind: InactivityWarningKind; periodStart: Date; sentAt: Date; deletionDueAt: Date },
): Promise<boolean> {
  // The period start is taken from the row (microseconds), matched to the caller's (a JS Date: milliseconds).
  const inserted = await db.query(
    `with current_period as (
       select m.id, ${PERIOD_START} as period_start from mailboxes m
        where m.id = $1 and m.state <> 'locked'
          and date_trunc('milliseconds', ${PERIOD_START}) = date_trunc('milliseconds', $3::timestamptz)
        for update of m)
     insert into mailbox_inactivity_warnings (mailbox_id, kind, period_start, sent_at, deletion_due_at)
     select id, $2, period_start, $4, $5 from current_period
     on conflict do nothing`,
    [warning.mailboxId, warning.kind, warning.periodStart, warning.sentAt, warning.deletionDueAt],
  );
  return (inserted.rowCount ?? 0) > 0;
}

/** The warnings of a mailbox, oldest first (tests; the admin API). */
export async function listInactivityWarnings(
  db: Queryable,
  mailboxId: string,
): Promise<{ kind: InactivityWarningKind; periodStart: Date; sentAt: Date; deletionDueAt: Date }[]> {
  const found = await db.query(
    'select * from mailbox_inactivity_warnings where mailbox_id = $1 order by sent_at, kind',
    [mailboxId],
  );
  return found.rows.map((row) => ({
    kind: row.kind,
    periodStart: row.period_start,
    sentAt: row.sent_at,
    deletionDueAt: row.deletion_due_at,
  }));
}

const DELETION_DUE = `m.state <> 'locked'
  and exists (select 1 from mailbox_inactivity_warnings s
               where s.mailbox_id = m.id and s.kind = 'second' and s.period_start = ${PERIOD_START}
                 and s.deletion_due_at <= $1)
  and not exists (select 1 from mailbox_messages mm
                   where mm.mailbox_id = m.id and mm.received_at > $1::timestamptz - ($2 * interval '1 millisecond'))`;

/** Mailboxes due for deletion at `now`: the second warning's date passed, no login since, no recent message. */
export async function listMailboxesDueForDeletion(
  db: Queryable,
  schedule: Pick<InactivitySchedule, 'minMessageAgeMs'>,
  now: Date,
  limit: number,
): Promise<string[]> {
  const found = await db.query<{ id: string }>(
    `select m.id from mailboxes m where ${DELETION_DUE} order by m.created_at, m.id limit $3`,
    [now, schedule.minMessageAgeMs, limit],
  );
  return found.rows.map((row) => row.id);
}

/**
 * The mailbox locked for its deletion in the caller's transaction if it is (still) due; undefined if not, or if
 * another reaper holds it (skip locked). A login waits for the lock and then finds no mailbox.
 */
export async function lockMailboxDueForDeletion(
  db: PoolClient,
  mailboxId: string,
  schedule: Pick<InactivitySchedule, 'minMessageAgeMs'>,
  now: Date,
): Promise<Mailbox | undefined> {
  const found = await db.query(
    `select m.* from mailboxes m where m.id = $3 and ${DELETION_DUE} for update skip locked`,
    [now, schedule.minMessageAgeMs, mailboxId],
  );
  return found.rows[0] ? mailboxFromRow(found.rows[0]) : undefined;
}

/** The gateway message ids of the mailbox's inbox messages never read (their senders are told of a deletion). */
export async function listUnreadInboxMessageIds(db: Queryable, mailboxId: string): Promise<string[]> {
  const found = await db.query<{ message_id: string }>(
    `select distinct message_id from mailbox_messages
      where mailbox_id = $1 and folder = 'inbox' and read_at is null order by message_id`,
    [mailboxId],
  );
  return found.rows.map((row) => row.message_id);
}

/** Arrival records (redelivery guards) older than `before` whose message has no trace any more. */
export async function purgeStaleArrivals(db: Pool, before: Date, batch = 500): Promise<number> {
  let deleted = 0;
  for (;;) {
    const { rowCount } = await db.query(
      `delete from mailbox_arrivals where (message_id, recipient) in (
         select a.message_id, a.recipient from mailbox_arrivals a
          where a.arrived_at < $1 and not exists (select 1 from messages m where m.id = a.message_id)
          limit $2 for update skip locked)`,
      [before, batch],
    );
    deleted += rowCount ?? 0;
    if ((rowCount ?? 0) < batch) return deleted;
  }
}
