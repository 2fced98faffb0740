// Retention of the trace itself (issue 11): the rows of finished messages go after SMGW_TRACE_RETENTION, and the
// report of parked envelopes. A message's rows are its `messages` row and, by the schema's cascade, its recipients,
// events and deliver's `deliveries` rows: deleting the message row here removes all of them in one statement.
import type { Pool, PoolClient } from '@smgw/db';
import type { ParkedEnvelopeData } from './index.ts';
import { openSentCopyReservation } from './sent-copy-reservations.ts';

type Queryable = Pool | PoolClient;

/**
 * A message whose trace may go: every recipient done (delivered, bounced, in_mailbox, quarantined), no quarantine
 * entry left (the cascade would take it along: it goes by its own retention first), no delivery sending or
 * deferred, no blob left (the contents go first, by SMGW_MESSAGE_RETENTION), and no copy in a portal mailbox (the
 * portal records reads in the trace, and the reaper tells the senders of unread messages when a mailbox is
 * deleted). A parked envelope leaves its recipients pending: its trace stays while it is parked. Nor a portal message
 * whose Sent copy's reserved bytes are still open (sent-copy-reservations.ts): whatever SMGW_TRACE_RETENTION is, its
 * trace stays until the reaper gave them back, or the draft resumed from its record and stored the copy.
 */
const TRACE_FINISHED = `
  not exists (select 1 from message_recipients r
               where r.message_id = m.id and r.state not in ('delivered', 'bounced', 'in_mailbox', 'quarantined'))
  and not exists (select 1 from quarantine q where q.message_id = m.id)
  and not exists (select 1 from deliveries d where d.message_id = m.id and d.state in ('sending', 'deferred'))
  and not exists (select 1 from blobs b where b.message_id = m.id)
  and not exists (select 1 from mailbox_messages mm where mm.message_id = m.id)
  and not (${openSentCopyReservation('m.id')})`;

/**
 * Deletes the trace of finished messages received before `before`, `batch` messages per statement (each its own
 * transaction, rows others hold are skipped): a sweep killed midway has kept what it did. Returns how many messages.
 */
export async function purgeFinishedTraces(pool: Pool, before: Date, batch = 200): Promise<number> {
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be a positive integer, got ${batch}`);
  let deleted = 0;
  for (;;) {
    const { rowCount } = await pool.query(
      `delete from messages where id in (
         select m.id from messages m
          where m.received_at < $1 and ${TRACE_FINISHED}
          order by m.received_at
          limit $2
          for update of m skip locked)`,
      [before, batch],
    );
    deleted += rowCount ?? 0;
    if ((rowCount ?? 0) < batch) return deleted;
  }
}

export interface ParkedEnvelope {
  messageId: string;
  stage: string;
  code: string | null;
  parkedAt: Date;
}

/**
 * An `envelope.parked` event `e` whose envelope has not moved on since: no later event names one of its recipients,
 * none at its stage is about the whole message (a replay, the envelope moved back to its stage's queue, makes that
 * stage record one), it was not parked again, and the message was not given up (`envelope.expired` ends every park of
 * it). Events of the message's other envelopes (a message split by direction at ingest has one id) name their own
 * recipients and do not count: the parked half stays parked, reported, and given up in time. A parked event without
 * `data` (written before it named the recipients) counts as moved on at any later event, as before.
 */
const STILL_PARKED = `not exists (
    select 1 from message_events later
     where later.message_id = e.message_id and later.id > e.id
       and (e.data is null
            or later.event = 'envelope.expired'
            or later.recipient in (select jsonb_array_elements_text(e.data -> 'recipients'))
            or (later.event = 'envelope.parked'
                and coalesce(later.data -> 'recipients' ?| array(select jsonb_array_elements_text(e.data -> 'recipients')), true))
            or (later.event <> 'envelope.parked' and later.recipient is null and later.stage = e.stage)))`;

/**
 * How long deliver's heartbeat may be silent before its claims count as dead: deliver takes them over after this
 * (its OWNER_TIMING.deadAfterMs is this), and the reaper counts them live until then.
 */
export const DELIVER_OWNER_ALIVE_MS = 20_000;

/** PostgreSQL's lock_not_available: a `nowait` lock that someone else holds. */
const LOCK_NOT_AVAILABLE = '55P03';

/**
 * A recipient of message $1 (of $2, or any when null) that a live deliver has claimed and is sending: `sending`, its
 * owner's heartbeat younger than DELIVER_OWNER_ALIVE_MS, claimed within the hour (no attempt lasts that long, so a
 * claim left behind by a live process before the message was parked holds its expiry up for an hour at most).
 */
const LIVE_DELIVER_CLAIM = `select 1 from deliveries d join deliver_instances i on i.id = d.owner_instance
  where d.message_id = $1 and ($2::text[] is null or d.recipient = any($2::text[])) and d.state = 'sending'
    and i.heartbeat_at > now() - make_interval(secs => ${DELIVER_OWNER_ALIVE_MS / 1000})
    and d.updated_at > now() - interval '1 hour'
  limit 1`;

/**
 * Messages with an `envelope.parked` event (written by each stage's onParked before it parks) whose envelope has not
 * moved on since (STILL_PARKED). Oldest first, at most `limit`, with the total and the oldest time over all of them.
 * An envelope the broker dead-lettered on its own (delivery limit) or that could not be parsed has no such event.
 */
export async function listParkedEnvelopes(
  db: Queryable,
  limit: number,
): Promise<{ total: number; oldest: Date | null; envelopes: ParkedEnvelope[] }> {
  const found = await db.query(
    `with parked as (
       select e.message_id, e.stage, e.code, e.at from message_events e
        where e.event = 'envelope.parked' and ${STILL_PARKED})
     select count(*) over () as total, min(at) over () as oldest, * from parked order by at, message_id limit $1`,
    [limit],
  );
  const first = found.rows[0];
  return {
    total: first ? Number(first.total) : 0,
    oldest: first ? first.oldest : null,
    envelopes: found.rows.map((row) => ({
      messageId: row.message_id,
      stage: row.stage,
      code: row.code,
      parkedAt: row.at,
    })),
  };
}

/** A parked message being given up, as the trace knows it: what a DSN to its sender may be made from. */
export interface ExpiringMessage {
  messageId: string;
  traceId: string;
  /** The message row's direction (its first envelope's); the parked envelope's own is in `parked.data`. */
  direction: string;
  /** Envelope sender; '' is the null sender. */
  mailFrom: string;
  receivedAt: Date;
  /** The recipients this expiry bounced (those still pending or deferred), sorted. */
  bounced: string[];
  parked: ParkedEnvelope & { data: ParkedEnvelopeData | undefined };
  /**
   * The message's blob when it is the one ingest received (its `message.received` event names it): what the sender
   * sent, never anything the gateway made of it (decrypted). Undefined when that cannot be told.
   */
  receivedBlob: string | undefined;
}

/**
 * Called in the transaction that gives a message up, after its recipients are bounced and before `envelope.expired`
 * is written; what it returns goes into that event's `data`. Throwing rolls the expiry of that message back.
 */
export type OnExpiring = (db: PoolClient, message: ExpiringMessage) => Promise<Record<string, unknown> | undefined>;

/**
 * SMGW_PARKED_ACTION=remove: a message parked before `before` is given up. Its recipients still pending become
 * bounced (`PARKED_EXPIRED`) and an `envelope.expired` event ends its trace, in one transaction per message, with
 * whatever `onExpiring` records there (the reaper: a DSN to the sender into its outbox). It is finished then; its
 * contents are kept for SMGW_MESSAGE_RETENTION after the expiry (@smgw/blob-store's purgeFinishedMessageBlobs counts
 * from the `envelope.expired` event), so an operator can still replay the parked envelope. A message whose parked
 * recipient a live deliver is sending (moved back meanwhile) waits for a later sweep. Returns the message ids.
 */
export async function expireParkedMessages(
  pool: Pool,
  before: Date,
  stage: string,
  at: Date,
  limit: number,
  onExpiring?: OnExpiring,
): Promise<string[]> {
  const { envelopes } = await listParkedEnvelopes(pool, limit);
  const expired: string[] = [];
  for (const parked of envelopes.filter((e) => e.parkedAt < before)) {
    const client = await pool.connect();
    try {
      await client.query('begin');
      // Locks the message's recipients; a replay that moved it on meanwhile leaves a later event: then not. A deliver
      // or mailbox that takes the envelope while these are held waits for them (recipientGivenUpSql) and then finds
      // its recipients bounced. The reaper itself never waits: a row someone holds (a claim or an arrival of several
      // recipients locks them one by one, and waiting for them in another order could deadlock) leaves the message
      // to a later sweep.
      try {
        await client.query('select 1 from message_recipients where message_id = $1 for update nowait', [
          parked.messageId,
        ]);
      } catch (err) {
        if ((err as { code?: unknown }).code !== LOCK_NOT_AVAILABLE) throw err;
        await client.query('rollback');
        continue;
      }
      const still = await client.query(
        `select e.data from message_events e where e.message_id = $1 and e.event = 'envelope.parked'
            and ${STILL_PARKED} order by e.id desc`,
        [parked.messageId],
      );
      if (still.rowCount === 0) {
        await client.query('rollback');
        continue;
      }
      // Only the parked envelopes' recipients (every envelope of the message parked now is given up together; the
      // others are on their own ways); all of the message's for a parked event written before it named them.
      const parkedData = still.rows.map((row) => row.data as ParkedEnvelopeData | null);
      const parkedRecipients = parkedData.every((data) => data?.recipients)
        ? parkedData.flatMap((data) => data?.recipients ?? [])
        : null;
      // Moved back and being sent right now: a deliver claimed a parked recipient (recipientGivenUpSql let it, since
      // it came before these locks) and has not recorded how it went. Not given up now; the next sweep finds the
      // outcome it records (an event naming the recipient: moved on) or, if that deliver died, no live claim.
      const inFlight = await client.query(LIVE_DELIVER_CLAIM, [parked.messageId, parkedRecipients]);
      if ((inFlight.rowCount ?? 0) > 0) {
        await client.query('rollback');
        continue;
      }
      const bounced = await client.query<{ recipient: string }>(
        `update message_recipients set state = 'bounced', detail = 'PARKED_EXPIRED', updated_at = $2
          where message_id = $1 and state in ('pending', 'deferred')
            and ($3::text[] is null or recipient = any($3::text[]))
          returning recipient`,
        [parked.messageId, at, parkedRecipients],
      );
      let data: Record<string, unknown> | undefined;
      if (onExpiring) {
        const message = await expiringMessage(client, parked, still.rows[0]?.data ?? undefined, bounced.rows);
        if (message) data = await onExpiring(client, message);
      }
      await client.query(
        `insert into message_events (message_id, stage, event, outcome, code, reason, data, at)
         values ($1, $2, 'envelope.expired', 'reject', 'PARKED_EXPIRED', $3, $4, $5)`,
        [
          parked.messageId,
          stage,
          `parked at ${parked.stage} since ${parked.parkedAt.toISOString()}`,
          data ? JSON.stringify(data) : null,
          at,
        ],
      );
      await client.query('commit');
      expired.push(parked.messageId);
    } catch (err) {
      await client.query('rollback').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }
  return expired;
}

async function expiringMessage(
  db: PoolClient,
  parked: ParkedEnvelope,
  data: ParkedEnvelopeData | undefined,
  bounced: readonly { recipient: string }[],
): Promise<ExpiringMessage | undefined> {
  const found = await db.query(
    `select m.id, m.trace_id, m.direction, m.mail_from, m.received_at,
            case when exists (select 1 from message_events r
                               where r.message_id = m.id and r.stage = 'ingest' and r.event = 'message.received'
                                 and r.data ->> 'blob' = m.blob_ref)
                 then m.blob_ref end as received_blob
       from messages m where m.id = $1`,
    [parked.messageId],
  );
  const row = found.rows[0];
  if (!row) return undefined;
  return {
    messageId: row.id,
    traceId: row.trace_id,
    direction: row.direction,
    mailFrom: row.mail_from,
    receivedAt: new Date(row.received_at),
    bounced: bounced.map((b) => b.recipient).sort(),
    parked: { ...parked, data },
    receivedBlob: row.received_blob ?? undefined,
  };
}

/**
 * A message abandoned at ingest: ingest answered 451 because the broker refused (or never confirmed) every one of
 * its envelopes (`message.refused` with nothing published), so the client sends it again under a new id, and this
 * one stays with its recipients pending for ever. Only a refusal ingest is sure of counts (`enqueued: 'none'`: every
 * envelope nacked, returned or never sent); after a lost confirm (`unknown`) an envelope may sit in a queue longer
 * than any grace (a stage down for a day, scan waiting for clamd records nothing), so those are kept. Even then it
 * is abandoned only when no stage recorded anything of it (every event is ingest's), every recipient is still
 * pending, nothing else refers to it (deliveries, quarantine, portal mailboxes), and the refusal is older than the
 * grace: a queued envelope is taken by a stage, which records an event, long before that.
 */
const ABANDONED_AT_INGEST = `
  not exists (select 1 from message_events e where e.message_id = m.id and e.stage <> 'ingest')`;

/**
 * A portal user's message abandoned at its publish: the broker refused it (`message.refused` of stage `portal`), the
 * user was told "not sent" and never got it out, and no draft can send it any more: its Sent-copy reservation was
 * closed as abandoned (sent-copy-reservations.ts; the reaper does that only after the draft's life). Every publish
 * of it was surely refused: as many `enqueued: 'none'` refusals as attempts (`message.submitted`, then
 * `message.resubmitted` before each resend) and no other refusal, so a resend whose publish went (or is on its way)
 * keeps it. The portal's and that closing event are all its trace holds: no stage recorded anything of it.
 */
const ABANDONED_AT_PORTAL = `
  m.direction = 'portal'
  and exists (select 1 from message_events a where a.message_id = m.id and a.event = 'message.sent-copy-abandoned')
  and not exists (select 1 from message_events e
                   where e.message_id = m.id
                     and not (e.event = 'message.sent-copy-abandoned'
                              or (e.stage = 'portal'
                                  and e.event in ('message.submitted', 'message.resubmitted', 'message.refused'))))
  and not exists (select 1 from message_events e
                   where e.message_id = m.id and e.stage = 'portal' and e.event = 'message.refused'
                     and e.data ->> 'enqueued' is distinct from 'none')
  and (select count(*) from message_events e
        where e.message_id = m.id and e.stage = 'portal' and e.event in ('message.submitted', 'message.resubmitted'))
      = (select count(*) from message_events e
          where e.message_id = m.id and e.stage = 'portal' and e.event = 'message.refused')`;

/**
 * Abandoned at ingest or at the portal's publish, and nothing refers to it. Found from the refusals (index
 * message_events_refused_idx), not by a scan of the messages.
 */
const ABANDONED = `
  m.id in (select e.message_id from message_events e
            where e.event = 'message.refused' and e.at < $1 and e.data ->> 'enqueued' = 'none'
              and ((e.stage = 'ingest' and coalesce(e.data -> 'publishedDirections', '[]'::jsonb) = '[]'::jsonb)
                   or e.stage = 'portal'))
  and ((${ABANDONED_AT_INGEST}) or (${ABANDONED_AT_PORTAL}))
  and not exists (select 1 from message_recipients r where r.message_id = m.id and r.state <> 'pending')
  and not exists (select 1 from deliveries d where d.message_id = m.id)
  and not exists (select 1 from quarantine q where q.message_id = m.id)
  and not exists (select 1 from mailbox_messages mm where mm.message_id = m.id)`;

/**
 * The messages abandoned at ingest or at the portal's publish (refused before `before`), oldest first, at most
 * `limit`: what a dry run shows.
 */
export async function listAbandonedMessages(db: Queryable, before: Date, limit: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `select m.id from messages m where ${ABANDONED} order by m.received_at limit $2`,
    [before, limit],
  );
  return rows.map((r) => r.id);
}

/**
 * Deletes the trace (message row, and by cascade its recipients and events) of messages abandoned at ingest or at the
 * portal's publish (ABANDONED) whose refusal is older than `before`, `batch` per statement; the condition is checked in the delete itself, so a stage
 * that recorded something meanwhile keeps the message. Returns the ids deleted: their blobs go next (blob-store's
 * purgeBlobsOfMessages), after the rows, so an envelope that shows up late still finds its contents.
 */
export async function deleteAbandonedMessages(pool: Pool, before: Date, batch = 200): Promise<string[]> {
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be a positive integer, got ${batch}`);
  const deleted: string[] = [];
  for (;;) {
    const { rows } = await pool.query<{ id: string }>(
      `delete from messages where id in (
         select m.id from messages m where ${ABANDONED}
          order by m.received_at limit $2 for update of m skip locked)
       returning id`,
      [before, batch],
    );
    deleted.push(...rows.map((r) => r.id));
    if (rows.length < batch) return deleted;
  }
}
