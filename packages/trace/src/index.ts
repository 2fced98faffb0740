// The system of record for what happened to a message: the message row, per-recipient state and the audit
// trail (message_events). Every stage writes here before it acks; the admin API reads it.
import { type Pool, type PoolClient, preparedStatement, type QueryConfig } from '@smgw/db';
import type { Envelope } from '@smgw/envelope';

type Queryable = Pool | PoolClient;

export const RECIPIENT_STATES = ['pending', 'delivered', 'in_mailbox', 'deferred', 'bounced', 'quarantined'] as const;
export type RecipientState = (typeof RECIPIENT_STATES)[number];

export interface TraceEvent {
  stage: string;
  /** entity.action in the past tense: message.received, recipient.delivered, recipient.deferred, envelope.parked… */
  event: string;
  outcome: string;
  code?: string | undefined;
  reason?: string | undefined;
  recipient?: string | undefined;
  data?: Record<string, unknown> | undefined;
  at?: Date | undefined;
}

/**
 * Where `stage` split a message at its optional `verify` (splitAtOptionalStage): which group of recipients goes
 * through signature verification and which past it. Nothing when no group goes through it (verification is on for
 * nobody), so the trace only speaks of verification where it matters.
 */
export function verificationRoutingEvents(stage: string, groups: readonly Envelope[], at: Date): TraceEvent[] {
  if (!groups.some((g) => g.itinerary[0] === 'verify')) return [];
  return groups.map((group) => ({
    stage,
    event: group.itinerary[0] === 'verify' ? 'message.verification-routed' : 'message.verification-skipped',
    outcome: 'next',
    data: { recipients: group.recipients, to: group.itinerary[0] ?? null, split: groups.length > 1 },
    at,
  }));
}

/**
 * Another data-modifying statement that commits with a trace statement, as a CTE of it (a blob's rows: @smgw/blob-store's
 * StagedBlob.rows), numbering its parameters from `first`: one round trip and one commit for both.
 */
export type AlongsideStatement = (first: number) => { text: string; values: unknown[] };

/** Prepared statements with statements alongside, by their whole text (names must always go with one text). */
const preparedAlongside = new Map<string, ReturnType<typeof preparedStatement>>();

/**
 * `text` (a statement of its own or one starting with `with`) with `alongside` as CTEs before it, their parameters
 * after `values`. Foreign keys are checked at the end of the statement, when all rows are in.
 */
function withAlongside(
  name: string,
  text: string,
  values: readonly unknown[],
  alongside: readonly AlongsideStatement[],
): QueryConfig {
  if (alongside.length === 0) return preparedStatement(name, text)([...values]);
  const whole = composedWithAlongside(text, values, alongside);
  let prepared = preparedAlongside.get(whole.text);
  if (!prepared) {
    prepared = preparedStatement(`${name}-alongside-${preparedAlongside.size + 1}`, whole.text);
    preparedAlongside.set(whole.text, prepared);
  }
  return prepared(whole.values);
}

/** `text` with `alongside` as CTEs before it, their parameters numbered after `values`. */
function composedWithAlongside(
  text: string,
  values: readonly unknown[],
  alongside: readonly AlongsideStatement[],
): { text: string; values: unknown[] } {
  const all = [...values];
  if (alongside.length === 0) return { text, values: all };
  const ctes = alongside.map((statement, i) => {
    const part = statement(all.length + 1);
    all.push(...part.values);
    return `alongside_${i + 1} as (${part.text})`;
  });
  const whole = text.startsWith('with ')
    ? `with ${ctes.join(',\n   ')},\n   ${text.slice('with '.length)}`
    : `with ${ctes.join(',\n   ')}\n   ${text}`;
  return { text: whole, values: all };
}

/**
 * Takes the message's row for the rest of the caller's transaction, so that work on one message that must not run
 * twice at once (a notice, a reservation given back) runs in turn. `for no key update`: stages that record events of
 * the message meanwhile (their key share lock) are not held up. False when there is no such message.
 */
export async function lockMessageRow(db: PoolClient, messageId: string): Promise<boolean> {
  const locked = await db.query('select 1 from messages where id = $1 for no key update', [messageId]);
  return (locked.rowCount ?? 0) > 0;
}

/**
 * Records an accepted message and its recipients (state pending), and `events` of it, in one statement: all or
 * nothing, one round trip and one commit (issue 12: a statement per row was most of a message's database time).
 * Idempotent on the message id and on each recipient; the events are written every time. `alongside` commits with it.
 */
export async function recordMessage(
  db: Queryable,
  envelope: Envelope,
  events: readonly TraceEvent[] = [],
  alongside: readonly AlongsideStatement[] = [],
): Promise<void> {
  await recordMessages(db, [{ envelope, events, alongside }]);
}

/** One accepted message for recordMessages: recordMessage's arguments. */
export interface MessageRecord {
  envelope: Envelope;
  events?: readonly TraceEvent[] | undefined;
  alongside?: readonly AlongsideStatement[] | undefined;
}

const RECORD_MESSAGES_TEXT = `with message as (
     insert into messages (id, trace_id, direction, mail_from, blob_ref, blob_sha256, size, client_ip, client_helo,
       client_user, client_tls, received_at, relates_to)
     select m.id, m.trace_id, m.direction, m.mail_from, m.blob_ref, m.blob_sha256, m.size, m.client_ip, m.client_helo,
            m.client_user, m.client_tls, m.received_at, m.relates_to
       from jsonb_to_recordset($1::jsonb) as m (id text, trace_id text, direction text, mail_from text, blob_ref text,
              blob_sha256 text, size bigint, client_ip text, client_helo text, client_user text, client_tls boolean,
              received_at timestamptz, relates_to text)
     on conflict (id) do nothing),
   recipients as (
     insert into message_recipients (message_id, recipient)
     select m.id, r.recipient
       from jsonb_to_recordset($1::jsonb) as m (id text, recipients jsonb),
            jsonb_array_elements_text(m.recipients) as r (recipient)
     on conflict do nothing)
   ${insertEvents('$2')}`;

/**
 * recordMessage for several messages in one statement: one round trip and one commit for all of them, or none (a
 * group commit: @smgw/db's groupCommits). One message is a prepared statement (one per shape of what goes
 * alongside); several are an unnamed one, since what goes alongside differs from batch to batch.
 */
export async function recordMessages(db: Queryable, records: readonly MessageRecord[]): Promise<void> {
  if (records.length === 0) return;
  const messages = records.map(({ envelope }) => ({
    id: envelope.id,
    trace_id: envelope.traceId,
    direction: envelope.direction,
    mail_from: envelope.mailFrom,
    blob_ref: envelope.blob.ref,
    blob_sha256: envelope.blob.sha256,
    size: envelope.blob.size,
    client_ip: envelope.client.ip,
    client_helo: envelope.client.helo,
    client_user: envelope.client.user ?? null,
    client_tls: envelope.client.tls,
    received_at: envelope.receivedAt,
    relates_to: envelope.relatesTo ?? null,
    recipients: envelope.recipients,
  }));
  const events = eventRows(
    records.flatMap(({ envelope, events }) => (events ?? []).map((e) => ({ ...e, messageId: envelope.id }))),
  );
  const values = [JSON.stringify(messages), events];
  const alongside = records.flatMap((r) => r.alongside ?? []);
  await db.query(
    records.length === 1
      ? withAlongside('trace-record-message', RECORD_MESSAGES_TEXT, values, alongside)
      : composedWithAlongside(RECORD_MESSAGES_TEXT, values, alongside),
  );
}

export async function recordEvent(db: Queryable, messageId: string, e: TraceEvent): Promise<void> {
  await recordEvents(db, messageId, [e]);
}

/**
 * Records several events of one message in one statement: all of them or none, in the order given (a stage's
 * outcome is written together, so the trace never shows half of it). `alongside` commits with them (encrypt: the
 * rows of the copies it made, with its outcome).
 */
export async function recordEvents(
  db: Queryable,
  messageId: string,
  events: readonly TraceEvent[],
  alongside: readonly AlongsideStatement[] = [],
): Promise<void> {
  if (events.length === 0 && alongside.length === 0) return;
  const rows = eventRows(events.map((e) => ({ ...e, messageId })));
  await db.query(withAlongside('trace-record-events', RECORD_EVENTS_TEXT, [rows], alongside));
}

export async function setRecipientState(
  db: Queryable,
  messageId: string,
  recipients: string[],
  state: RecipientState,
  detail?: string,
): Promise<void> {
  await db.query(
    `update message_recipients set state = $3, detail = $4, updated_at = now()
     where message_id = $1 and recipient = any($2::text[])`,
    [messageId, recipients, state, detail ?? null],
  );
}

/**
 * Recipients' new states (each with its detail) and the message's events, in one statement: a stage's results for
 * several recipients at once (deliver per destination).
 */
export async function recordRecipientStates(
  db: Queryable,
  messageId: string,
  states: readonly RecipientStateChange[],
  events: readonly TraceEvent[],
): Promise<void> {
  await db.query(
    RECORD_RECIPIENT_STATES([
      messageId,
      recipientStateParameter(states.map((state) => ({ ...state, messageId }))),
      traceEventParameter(events.map((event) => ({ ...event, messageId }))),
    ]),
  );
}

/** A recipient's new state and its detail, for recordRecipientStates and recipientStatesAfterChange. */
export interface RecipientStateChange {
  recipient: string;
  state: RecipientState;
  detail?: string | undefined;
}

/**
 * The statement text that runs `change`, a data-modifying query of a stage's own table returning `message_id` and
 * `recipient` columns, then sets the state of the recipients it returned and records every event: a stage's own
 * results and the trace in one statement, so one round trip and one commit, for one message or for several (deliver's
 * outcomes, group-committed). Parameters: $1 recipientStateParameter, $2 traceEventParameter; `change` may read them
 * ($1's rows carry whatever else it needs) and use its own from $3.
 */
export function recipientStatesAfterChange(change: string): string {
  return `with changed as (${change}),
   states as (
     update message_recipients r set state = s.state, detail = s.detail, updated_at = now()
       from jsonb_to_recordset($1::jsonb) as s (message_id text, recipient text, state text, detail text)
      where r.message_id = s.message_id and r.recipient = s.recipient
        and (s.message_id, s.recipient) in (select c.message_id, c.recipient from changed c))
   ${insertEvents('$2')}`;
}

/**
 * $1 of recipientStatesAfterChange: a jsonb array of {message_id, recipient, state, detail}, each with `extra`'s
 * fields for the stage's own change.
 */
export function recipientStateParameter(
  states: readonly (RecipientStateChange & { messageId: string; extra?: Record<string, unknown> | undefined })[],
): string {
  return JSON.stringify(
    states.map((s) => ({
      ...s.extra,
      message_id: s.messageId,
      recipient: s.recipient,
      state: s.state,
      detail: s.detail ?? null,
    })),
  );
}

/** $2 of recipientStatesAfterChange: events, each of its message. */
export function traceEventParameter(events: readonly (TraceEvent & { messageId: string })[]): string {
  return eventRows(events);
}

/**
 * SQL condition: the trace has bounced `recipient` (an SQL expression) of message `messageId` (one too), so its sender
 * was or will be told it failed, and nothing may send or store the message for it after that: a parked message the
 * reaper gave up (PARKED_EXPIRED) whose envelope an operator moves back to a queue, say.
 *
 * It takes the recipient's row (key share) whatever its state, so it cannot pass a reaper that is giving the message
 * up at that moment: the reaper holds the rows (expireParkedMessages) and this waits, then reads the row as the reaper
 * left it. (A plain `exists (… and state = 'bounced')` read the row as it was before, and the message went out after
 * its failure DSN.) The state is compared outside the locking subquery, which PostgreSQL would otherwise filter before
 * it locks. A caller that stores or claims in the same statement or transaction holds the row until it commits, so a
 * reaper coming later finds what it did (expireParkedMessages: a live claim, or an event naming the recipient).
 */
export function recipientGivenUpSql(messageId: string, recipient: string): string {
  return `(select given_up.state from message_recipients given_up
            where given_up.message_id = ${messageId} and given_up.recipient = ${recipient}
            for key share) is not distinct from 'bounced'`;
}

const GIVEN_UP_RECIPIENTS = preparedStatement(
  'trace-given-up-recipients',
  `select r as recipient from unnest($2::text[]) as r where ${recipientGivenUpSql('$1', 'r')}`,
);

/** Those of `recipients` the trace has bounced (recipientGivenUpSql): never to be sent or stored for again. */
export async function givenUpRecipients(db: Queryable, messageId: string, recipients: readonly string[]) {
  const found = await db.query<{ recipient: string }>(GIVEN_UP_RECIPIENTS([messageId, [...recipients]]));
  return found.rows.map((row) => row.recipient);
}

const RECORD_RECIPIENT_STATES = preparedStatement(
  'trace-record-recipient-states',
  `with states as (
     update message_recipients r set state = s.state, detail = s.detail, updated_at = now()
       from jsonb_to_recordset($2::jsonb) as s (recipient text, state text, detail text)
      where r.message_id = $1 and r.recipient = s.recipient)
   ${insertEvents('$3')}`,
);

/**
 * Records events of many messages in one statement, in the order given: a sweep's batch (the quarantine purge
 * records one event on each message it touched).
 */
export async function recordEventBatch(
  db: Queryable,
  events: readonly (TraceEvent & { messageId: string })[],
): Promise<void> {
  if (events.length === 0) return;
  await db.query(RECORD_EVENTS([eventRows(events)]));
}

const RECORD_EVENTS_TEXT = insertEvents('$1');
const RECORD_EVENTS = preparedStatement('trace-record-events', RECORD_EVENTS_TEXT);

/**
 * Inserts the events in the parameter `param` (eventRows), in their order: a statement of its own, or the last part
 * of one that writes more.
 */
function insertEvents(param: string): string {
  return `insert into message_events (message_id, recipient, stage, event, outcome, code, reason, data, at)
     select e.message_id, e.recipient, e.stage, e.event, e.outcome, e.code, e.reason, e.data, coalesce(e.at, now())
       from rows from (jsonb_to_recordset(${param}::jsonb) as (message_id text, recipient text, stage text, event text,
              outcome text, code text, reason text, data jsonb, at timestamptz)) with ordinality as e
      order by e.ordinality`;
}

function eventRows(events: readonly (TraceEvent & { messageId: string })[]): string {
  return JSON.stringify(
    events.map((e) => ({
      message_id: e.messageId,
      recipient: e.recipient ?? null,
      stage: e.stage,
      event: e.event,
      outcome: e.outcome,
      code: e.code ?? null,
      reason: e.reason ?? null,
      data: e.data ?? null,
      at: e.at?.toISOString() ?? null,
    })),
  );
}

/** Whether the message's trace has `event` from `stage`, with `data` containing `dataContains` when given. */
export async function hasEvent(
  db: Queryable,
  messageId: string,
  match: { stage: string; event: string; dataContains?: Record<string, unknown> | undefined },
): Promise<boolean> {
  const found = await db.query(
    `select 1 from message_events where message_id = $1 and stage = $2 and event = $3
       and ($4::jsonb is null or data @> $4::jsonb) limit 1`,
    [messageId, match.stage, match.event, match.dataContains ? JSON.stringify(match.dataContains) : null],
  );
  return (found.rowCount ?? 0) > 0;
}

/**
 * The recipients of a message a stage recorded one of `events` for, with the latest such event each: what the stage
 * decided on an earlier handling (a redelivery must not decide anew where that could send a recipient two ways).
 */
export async function recipientEventsOf(
  db: Queryable,
  messageId: string,
  match: { stage: string; events: readonly string[] },
): Promise<Map<string, string>> {
  const { rows } = await db.query<{ recipient: string; event: string }>(
    `select distinct on (recipient) recipient, event from message_events
      where message_id = $1 and stage = $2 and event = any($3::text[]) and recipient is not null
      order by recipient, id desc`,
    [messageId, match.stage, [...match.events]],
  );
  return new Map(rows.map((r) => [r.recipient, r.event]));
}

/** One event of a message as recorded (stageEventsOf). */
export interface RecordedEvent {
  event: string;
  recipient: string | null;
  code: string | null;
  reason: string | null;
  data: Record<string, unknown> | null;
  at: Date;
}

/**
 * The message's events of `stage` named in `events`, in the order they were recorded: what an earlier handling of a
 * redelivered envelope did, in detail (encrypt rebuilds the children of an inbound envelope from them).
 */
export async function stageEventsOf(
  db: Queryable,
  messageId: string,
  match: { stage: string; events: readonly string[] },
): Promise<RecordedEvent[]> {
  const { rows } = await db.query<RecordedEvent>(
    `select event, recipient, code, reason, data, at from message_events
      where message_id = $1 and stage = $2 and event = any($3::text[])
      order by id`,
    [messageId, match.stage, [...match.events]],
  );
  return rows;
}

/** What was recorded of a message when it entered (recordMessage), for rebuilding its envelope. */
export interface RecordedMessage {
  id: string;
  traceId: string;
  direction: string;
  mailFrom: string;
  relatesTo: string | undefined;
  recipients: string[];
  blob: { ref: string; sha256: string; size: number };
  clientHelo: string;
  receivedAt: Date;
}

export async function recordedMessage(db: Queryable, messageId: string): Promise<RecordedMessage | undefined> {
  const found = await db.query(
    `select m.id, m.trace_id, m.direction, m.mail_from, m.relates_to, m.blob_ref, m.blob_sha256, m.size,
            m.client_helo, m.received_at,
            coalesce(array(select r.recipient from message_recipients r where r.message_id = m.id
                           order by r.recipient), '{}') as recipients
       from messages m where m.id = $1`,
    [messageId],
  );
  const row = found.rows[0];
  if (!row) return undefined;
  return {
    id: row.id,
    traceId: row.trace_id,
    direction: row.direction,
    mailFrom: row.mail_from,
    relatesTo: row.relates_to ?? undefined,
    recipients: row.recipients,
    blob: { ref: row.blob_ref, sha256: row.blob_sha256, size: Number(row.size) },
    clientHelo: row.client_helo ?? '',
    receivedAt: new Date(row.received_at),
  };
}

/** How many of these messages have `event` from `stage` in their trace (a benchmark's or a test's progress). */
export async function countMessagesWithEvent(
  db: Queryable,
  messageIds: readonly string[],
  match: { stage: string; event: string },
): Promise<number> {
  const found = await db.query<{ n: number }>(
    `select count(distinct message_id)::int as n from message_events
      where message_id = any($1::text[]) and stage = $2 and event = $3`,
    [messageIds, match.stage, match.event],
  );
  return found.rows[0]?.n ?? 0;
}

export interface MessageTrace {
  id: string;
  traceId: string;
  direction: string;
  mailFrom: string;
  size: number;
  receivedAt: string;
  client: { ip: string | null; helo: string | null; user: string | null; tls: boolean };
  relatesTo: string | null;
  recipients: { address: string; state: RecipientState; detail: string | null; updatedAt: string }[];
  events: {
    at: string;
    stage: string;
    event: string;
    outcome: string;
    code: string | null;
    reason: string | null;
    recipient: string | null;
    data: unknown;
  }[];
}

/** Everything known about a message, or undefined if the id is unknown. */
export async function getTrace(db: Queryable, messageId: string): Promise<MessageTrace | undefined> {
  const m = await db.query('select * from messages where id = $1', [messageId]);
  const row = m.rows[0];
  if (!row) return undefined;
  const [recipients, events] = await Promise.all([
    db.query('select * from message_recipients where message_id = $1 order by recipient', [messageId]),
    db.query('select * from message_events where message_id = $1 order by id', [messageId]),
  ]);
  return {
    id: row.id,
    traceId: row.trace_id,
    direction: row.direction,
    mailFrom: row.mail_from,
    size: Number(row.size),
    receivedAt: new Date(row.received_at).toISOString(),
    client: { ip: row.client_ip, helo: row.client_helo, user: row.client_user, tls: row.client_tls },
    relatesTo: row.relates_to,
    recipients: recipients.rows.map((r) => ({
      address: r.recipient,
      state: r.state,
      detail: r.detail,
      updatedAt: new Date(r.updated_at).toISOString(),
    })),
    events: events.rows.map((e) => ({
      at: new Date(e.at).toISOString(),
      stage: e.stage,
      event: e.event,
      outcome: e.outcome,
      code: e.code,
      reason: e.reason,
      recipient: e.recipient,
      data: e.data,
    })),
  };
}

/**
 * The `onParked` hook of a stage's consumer: the trace says why the message stopped at `stage` (the message row is
 * written too, in case ingest never recorded it). An envelope that could not even be parsed has no trace to write.
 * The event keeps what a DSN about the parked envelope needs if it is given up later (the reaper's parked sweep,
 * SMGW_PARKED_ACTION=remove): its direction, recipients and DSN request (RFC 3461 NOTIFY, ORCPT, ENVID, RET).
 */
export function recordParkedAt(db: Queryable, stage: string) {
  return async (envelope: Envelope | undefined, code: string, reason: string): Promise<void> => {
    if (!envelope) return;
    await recordMessage(db, envelope);
    const data: ParkedEnvelopeData = {
      direction: envelope.direction,
      recipients: envelope.recipients,
      dsn: envelope.dsn ?? null,
    };
    await recordEvent(db, envelope.id, {
      stage,
      event: 'envelope.parked',
      outcome: 'reject',
      code,
      reason,
      data: { ...data },
    });
  };
}

/** `data` of an `envelope.parked` event (absent in events written before it was recorded). */
export interface ParkedEnvelopeData {
  direction: Envelope['direction'];
  recipients: string[];
  /** The envelope's DSN request; null: none was made (NOTIFY defaults to FAILURE). */
  dsn: NonNullable<Envelope['dsn']> | null;
}

export * from './notice-outbox.ts';
export * from './retention.ts';
export * from './sent-copy-reservations.ts';
