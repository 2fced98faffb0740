// The deliveries table: what deliver has done per (message, recipient), so redelivery never sends twice what is
// recorded (ARCHITECTURE.md rule 3), plus the trace rows that go with each result.
import { committedBlobColumn, committedBlobParameter, type FoundBlob, foundBlob } from '@smgw/blob-store';
import { groupCommits, type Pool, type PoolClient, preparedStatement, withTransaction } from '@smgw/db';
import { type Envelope, generatedEnvelope } from '@smgw/envelope';
import {
  recipientGivenUpSql,
  recipientStateParameter,
  recipientStatesAfterChange,
  recordEvent,
  recordedMessage,
  recordMessage,
  traceEventParameter,
} from '@smgw/trace';

export interface ClaimResult {
  /** Ours to send now (state `sending`, attempts counted). */
  claimed: string[];
  /**
   * Delivered or bounced before, or given up in the trace (the reaper bounced a parked message's recipients and told
   * the sender): never sent again.
   */
  done: string[];
  /** Being sent by another consumer right now (the same envelope twice in the queue): try again later. */
  busy: string[];
  /** DSNs made earlier for recipients of this envelope: published again, since a crash may have lost the publish. */
  dsnMessageIds: string[];
  /** The message's blob row, read with the claim (for blobStore.open); none when nothing was claimed. */
  blob?: FoundBlob | undefined;
}

/** Who claims: a deliver instance (owner-heartbeat.ts) and which of its own claims it may take again. */
export interface ClaimOwner {
  id: string;
  /** Others take a claim of this instance over once its heartbeat is older than this. */
  deadAfterMs: number;
  /**
   * Recipients of this message this instance is not sending right now: a claim of its own on them was left by an
   * attempt that ended on a database error (a restart), and is taken again at once instead of waiting for the lease.
   */
  idle: string[];
}

/**
 * Claims the recipients that still need sending (never one the trace has bounced: a parked message the reaper gave
 * up, whose sender was told, stays given up when its envelope is moved back to a queue by hand): new ones, deferred
 * ones, and `sending` ones whose owner is gone: its instance's heartbeat is older than its `deadAfterMs` (the process
 * died, or lost the database long enough to have stopped its sends), or the claim is this instance's own and idle;
 * for claims of an older deliver (a session as owner, 004) the session no longer exists; and for any claim, it is
 * older than `leaseMs`. A claim by a live consumer is left alone, so a duplicate envelope (one redelivered while its
 * first consumer still works, say after a broker restart) waits instead of sending twice.
 *
 * The claim commits without waiting for its WAL to reach the disk (synchronous_commit off for this transaction): it
 * promises nothing to anyone, and it was the one flush per message no group commit shared. The outcome that follows
 * commits with the flush, and WAL is flushed in order, so an outcome on disk has its claim on disk too. A database
 * crash between the two can lose the claim's row: the outcome then writes the row itself (RECORD_OUTCOMES), and a
 * duplicate envelope handled in that window could be sent twice (README: known windows for duplicates).
 */
const CLAIM = preparedStatement(
  'deliver-claim',
  `with claimed as (
   insert into deliveries (message_id, recipient, state, attempts, updated_at, owner_instance)
     select $1, r, 'sending', 1, now(), $4 from unnest($2::text[]) as r
      where not ${recipientGivenUpSql('$1', 'r')}
     on conflict (message_id, recipient) do update
       set state = 'sending', attempts = deliveries.attempts + 1, updated_at = now(),
           owner_instance = excluded.owner_instance, owner_pid = null, owner_started = null
       where deliveries.state = 'deferred'
          or (deliveries.state = 'sending' and (
                (deliveries.owner_instance is not null and (
                   (deliveries.owner_instance = $4 and deliveries.recipient = any($6::text[]))
                   or not exists (
                     select 1 from deliver_instances i where i.id = deliveries.owner_instance
                        and i.heartbeat_at > now() - make_interval(secs => $5::double precision / 1000))))
             or (deliveries.owner_pid is not null and not exists (
                   select 1 from pg_stat_activity a
                   where a.pid = deliveries.owner_pid and a.backend_start = deliveries.owner_started))
             or deliveries.updated_at < now() - make_interval(secs => $3::double precision / 1000)))
     returning recipient)
   select coalesce(array_agg(recipient), '{}') as recipients,
          case when count(*) > 0 then ${committedBlobColumn(7)} end as blob,
          (select set_config('synchronous_commit', 'off', true)) as commit_unflushed
     from claimed`,
);

/**
 * `message.blobRef` undefined: the caller reads the blob another way (deliver's read-once copy of small outbound
 * mail), so the claim does not bring its row and chunk along, and the result has no `blob`.
 */
export async function claimRecipients(
  pool: Pool,
  message: { id: string; blobRef: string | undefined },
  recipients: string[],
  leaseMs: number,
  owner?: ClaimOwner | undefined,
): Promise<ClaimResult> {
  const messageId = message.id;
  const unique = [...new Set(recipients)];
  // One row: the blob's row (with a small blob's chunk) once, not once per claimed recipient.
  const claimed = await pool.query<{ recipients: string[]; blob: unknown }>(
    CLAIM([
      messageId,
      unique,
      leaseMs,
      owner?.id ?? null,
      owner?.deadAfterMs ?? leaseMs,
      owner?.idle ?? [],
      message.blobRef === undefined ? null : committedBlobParameter(message.blobRef),
    ]),
  );
  const row = claimed.rows[0];
  const mine = new Set(row?.recipients ?? []);
  const result: ClaimResult = {
    claimed: unique.filter((r) => mine.has(r)),
    done: [],
    busy: [],
    dsnMessageIds: [],
    ...(mine.size > 0 && message.blobRef !== undefined ? { blob: foundBlob(message.blobRef, row?.blob) } : {}),
  };
  const notMine = unique.filter((r) => !mine.has(r));
  if (notMine.length === 0) return result; // the usual case: one statement
  const others = await pool.query<{
    recipient: string;
    state: string | null;
    dsn_message_id: string | null;
    given_up: boolean;
  }>(
    `select r as recipient, d.state, d.dsn_message_id, ${recipientGivenUpSql('$1', 'r')} as given_up
       from unnest($2::text[]) as r
       left join deliveries d on d.message_id = $1 and d.recipient = r`,
    [messageId, notMine],
  );
  for (const row of others.rows) {
    if (row.state === 'delivered' || row.state === 'bounced' || row.given_up) result.done.push(row.recipient);
    else result.busy.push(row.recipient);
    if (row.dsn_message_id && !result.dsnMessageIds.includes(row.dsn_message_id)) {
      result.dsnMessageIds.push(row.dsn_message_id);
    }
  }
  return result;
}

export type DeliveryState = 'delivered' | 'deferred' | 'bounced';

export interface RecipientOutcome {
  recipient: string;
  state: DeliveryState;
  /** Stable code for the trace: DELIVERY_DEFERRED, DELIVERY_BOUNCED, DELIVERY_EXPIRED (none when delivered). */
  code?: string | undefined;
  /** The remote reply, or what went wrong when there was none. */
  reason: string;
  data: Record<string, unknown>;
}

const EVENT_OF: Record<DeliveryState, { event: string; outcome: string }> = {
  delivered: { event: 'recipient.delivered', outcome: 'done' },
  deferred: { event: 'recipient.deferred', outcome: 'retry' },
  bounced: { event: 'recipient.bounced', outcome: 'reject' },
};

// Never step back from a final state (another consumer may have finished this recipient meanwhile), and never defer
// a claim another instance holds now: one that took it over from us while our heartbeat was overdue is sending it,
// and a `deferred` row would let a third consumer claim and send it at the same time. The recipient's trace state
// follows the deliveries row (recipientStatesAfterChange: only the rows changed here); every attempt is in the trace.
// The rows of $1 are of one message or of several (group commit); each carries its destination and owner.
// The row is written whether or not the claim's row is there: the claim commits without waiting for its flush
// (CLAIM), so a database crash between claim and outcome can take the claim's row away, and the attempt's result
// must still be recorded (an update of no row would let deliver ack an envelope with no record of its delivery).
const RECORD_OUTCOMES = preparedStatement(
  'deliver-record-outcomes',
  recipientStatesAfterChange(
    `insert into deliveries as d (message_id, recipient, state, attempts, destination, last_response, updated_at,
                                  owner_instance)
     select o.message_id, o.recipient, o.state, 1, o.destination, o.detail, now(), o.owner
       from jsonb_to_recordset($1::jsonb) as o (message_id text, recipient text, state text, detail text,
              destination text, owner text)
     on conflict (message_id, recipient) do update
       set state = excluded.state, destination = excluded.destination, last_response = excluded.last_response,
           updated_at = now()
      where d.state not in ('delivered', 'bounced')
        and (excluded.state <> 'deferred' or d.state <> 'sending'
             or d.owner_instance is not distinct from excluded.owner_instance)
     returning d.message_id, d.recipient`,
  ),
);

/** One destination's results of one envelope, as deliver records them. */
export interface OutcomesInput {
  envelope: Envelope;
  destination: string;
  outcomes: RecipientOutcome[];
  dsn?: { envelope: Envelope; recipients: string[] } | undefined;
  /** The deliver instance that made the attempt (its claims carry it); none without an owner. */
  owner?: string | undefined;
}

/** RECORD_OUTCOMES for the results of several envelopes (each without a DSN) in one statement. */
function outcomesStatement(inputs: readonly OutcomesInput[]) {
  const states = inputs.flatMap((input) =>
    input.outcomes.map((o) => ({
      messageId: input.envelope.id,
      recipient: o.recipient,
      state: o.state,
      detail: o.reason,
      extra: { destination: input.destination, owner: input.owner ?? null },
    })),
  );
  const events = inputs.flatMap((input) =>
    input.outcomes.map((o) => ({
      messageId: input.envelope.id,
      stage: 'deliver',
      ...EVENT_OF[o.state],
      code: o.code,
      reason: o.reason,
      recipient: o.recipient,
      data: { destination: input.destination, ...o.data },
    })),
  );
  return RECORD_OUTCOMES([recipientStateParameter(states), traceEventParameter(events)]);
}

/**
 * Records one destination's results: deliveries rows, recipient states and trace events in one statement (one round
 * trip, one commit); when a DSN was made, in one transaction with the DSN message and its link to the bounced
 * recipients. Committed before deliver reports back. Returns whether the DSN was recorded: not when no recipient it
 * names is bounced without a DSN (another deliver finished them meanwhile and told the sender, or delivered them):
 * then it must not be sent.
 */
export async function recordOutcomes(pool: Pool, input: OutcomesInput): Promise<{ dsnRecorded: boolean }> {
  const messageId = input.envelope.id;
  const statement = outcomesStatement([input]);
  const { dsn } = input;
  if (!dsn) {
    await pool.query(statement);
    return { dsnRecorded: false };
  }
  return withTransaction(pool, async (tx) => {
    await tx.query(statement);
    // A deliver that took our claim over while we stalled (our heartbeat overdue) may have bounced these recipients
    // and told the sender under a DSN of its own: a second one, under another id, would reach the sender too. Under
    // the rows' locks, only the recipients bounced and not yet told are named.
    const untold = await tx.query<{ recipient: string }>(
      `select recipient from deliveries where message_id = $1 and recipient = any($2::text[])
          and state = 'bounced' and dsn_message_id is null
        for update`,
      [messageId, dsn.recipients],
    );
    const recipients = untold.rows.map((row) => row.recipient);
    if (recipients.length === 0) return { dsnRecorded: false };
    await recordDsn(tx, input.envelope, dsn.envelope, recipients);
    return { dsnRecorded: true };
  });
}

/**
 * recordOutcomes with group commit: results without a DSN of all envelopes that reach their record while one
 * statement runs share the next (groupCommits); a result with a DSN keeps its own transaction. Each caller hears only
 * after the commit that holds its own rows.
 */
export function createOutcomeRecorder(pool: Pool, options: { maxBatch: number }) {
  const grouped = groupCommits<OutcomesInput>(
    async (inputs) => {
      await pool.query(outcomesStatement(inputs));
    },
    { maxBatch: options.maxBatch },
  );
  return async (input: OutcomesInput): Promise<{ dsnRecorded: boolean }> => {
    if (input.dsn) return recordOutcomes(pool, input);
    await grouped(input);
    return { dsnRecorded: false };
  };
}

async function recordDsn(tx: PoolClient, original: Envelope, dsn: Envelope, recipients: string[]): Promise<void> {
  await recordMessage(tx, dsn);
  await tx.query(`update deliveries set dsn_message_id = $3 where message_id = $1 and recipient = any($2::text[])`, [
    original.id,
    recipients,
    dsn.id,
  ]);
  await recordEvent(tx, original.id, {
    stage: 'deliver',
    event: 'dsn.generated',
    outcome: 'next',
    data: { dsnMessageId: dsn.id, recipients },
  });
  await recordEvent(tx, dsn.id, {
    stage: 'deliver',
    event: 'message.generated',
    outcome: 'next',
    reason: `delivery status notification for ${original.id}`,
    data: { relatesTo: original.id, kind: 'dsn', recipients },
  });
}

/** A generated message (a DSN) as an envelope for the deliver queue, rebuilt from its recorded rows. */
export async function loadGeneratedEnvelope(pool: Pool, messageId: string): Promise<Envelope | undefined> {
  const recorded = await recordedMessage(pool, messageId);
  if (!recorded) return undefined;
  return generatedEnvelope({
    id: recorded.id,
    traceId: recorded.traceId,
    relatesTo: recorded.relatesTo,
    mailFrom: recorded.mailFrom,
    recipients: recorded.recipients,
    blob: recorded.blob,
    hostname: recorded.clientHelo,
    createdAt: recorded.receivedAt,
  });
}
