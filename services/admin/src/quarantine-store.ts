// Reading and releasing quarantine entries (packages/db/migrations/005_quarantine.sql). The scan service writes
// them; operators see and release them through the admin API. The message content is never read here.
import type { Pool } from '@smgw/db';
import { advance, type Envelope, parseEnvelope, withVerdict } from '@smgw/envelope';
import { recordEvent, setRecipientState } from '@smgw/trace';

export const QUARANTINE_STATES = ['open', 'released', 'all'] as const;
export type QuarantineState = (typeof QUARANTINE_STATES)[number];

/** What an operator sees of a quarantined message: its facts and the verdict, never its content. */
export interface QuarantineEntry {
  id: string;
  messageId: string;
  direction: string;
  verdict: string;
  finding: string;
  detail: string | null;
  quarantinedAt: string;
  expiresAt: string;
  releasedAt: string | null;
  releasedBy: string | null;
  releaseReason: string | null;
  mailFrom: string;
  recipients: string[];
}

export interface QuarantineFilter {
  state: QuarantineState;
  direction?: string | undefined;
  /** Newest first; at most this many. */
  limit: number;
  /** Only entries with an id (ULID: time-ordered) below this one: the cursor of the next page. */
  before?: string | undefined;
}

// Only the envelope's sender and recipients are selected: the rest of it (client, blob ref) stays in the database.
const ENTRY_COLUMNS = `id, message_id, direction, verdict, finding, detail, quarantined_at, expires_at,
  released_at, released_by, release_reason, envelope->>'mailFrom' as mail_from, envelope->'recipients' as recipients`;

interface EntryRow {
  id: string;
  message_id: string;
  direction: string;
  verdict: string;
  finding: string;
  detail: string | null;
  quarantined_at: Date;
  expires_at: Date;
  released_at: Date | null;
  released_by: string | null;
  release_reason: string | null;
  mail_from: string | null;
  recipients: unknown;
}

function toEntry(row: EntryRow): QuarantineEntry {
  return {
    id: row.id,
    messageId: row.message_id,
    direction: row.direction,
    verdict: row.verdict,
    finding: row.finding,
    detail: row.detail,
    quarantinedAt: row.quarantined_at.toISOString(),
    expiresAt: row.expires_at.toISOString(),
    releasedAt: row.released_at ? row.released_at.toISOString() : null,
    releasedBy: row.released_by,
    releaseReason: row.release_reason,
    mailFrom: row.mail_from ?? '',
    recipients: Array.isArray(row.recipients) ? row.recipients.map(String) : [],
  };
}

/** Quarantine entries, newest first, filtered by state (default: open ones) and direction, one page at a time. */
export async function listQuarantine(pool: Pool, filter: QuarantineFilter): Promise<QuarantineEntry[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.state === 'open') where.push('released_at is null');
  if (filter.state === 'released') where.push('released_at is not null');
  if (filter.direction) {
    params.push(filter.direction);
    where.push(`direction = $${params.length}`);
  }
  if (filter.before) {
    params.push(filter.before);
    where.push(`id < $${params.length}`);
  }
  params.push(filter.limit);
  const result = await pool.query<EntryRow>(
    `select ${ENTRY_COLUMNS} from quarantine ${where.length ? `where ${where.join(' and ')}` : ''}
     order by id desc limit $${params.length}`,
    params,
  );
  return result.rows.map(toEntry);
}

export async function getQuarantineEntry(pool: Pool, id: string): Promise<QuarantineEntry | undefined> {
  const result = await pool.query<EntryRow>(`select ${ENTRY_COLUMNS} from quarantine where id = $1`, [id]);
  const row = result.rows[0];
  return row ? toEntry(row) : undefined;
}

export interface ReleaseRequest {
  id: string;
  /** Who releases it (the X-SMGW-Operator header, or the token's name). */
  operator: string;
  reason?: string | undefined;
  now: Date;
  publishTimeoutMs?: number;
}

export type ReleaseResult =
  | { kind: 'released'; entry: QuarantineEntry; envelope: Envelope }
  | { kind: 'not-found' }
  | { kind: 'already-released'; entry: QuarantineEntry }
  /** The stored envelope cannot continue (does not validate, not at scan, nothing after scan). */
  | { kind: 'envelope-unusable'; messageId: string; reason: string }
  /** The broker did not take the envelope (or did not confirm it in time); nothing was changed. */
  | { kind: 'queue-unavailable'; envelope: Envelope; error: Error };

/** How long a release waits for the broker's confirm while it holds the entry's row lock. */
export const RELEASE_PUBLISH_TIMEOUT_MS = 15_000;

/**
 * Releases one quarantined message: in one transaction, marks the entry released (only if it still is open, so of
 * concurrent releases exactly one gets the row), sets the recipients back to pending, records `message.released`,
 * publishes the envelope advanced past scan (confirmed), and only then commits. A failed publish rolls everything
 * back. If the commit itself fails after a confirmed publish, the entry stays open and a later release publishes
 * again: at least once, which the stages after scan tolerate (ARCHITECTURE.md, idempotent under redelivery).
 */
export async function releaseQuarantined(
  pool: Pool,
  publish: (envelope: Envelope) => Promise<void>,
  request: ReleaseRequest,
): Promise<ReleaseResult> {
  const client = await pool.connect();
  let open = false;
  try {
    await client.query('begin');
    open = true;
    const updated = await client.query<EntryRow & { envelope: unknown }>(
      `update quarantine set released_at = $2, released_by = $3, release_reason = $4
       where id = $1 and released_at is null
       returning ${ENTRY_COLUMNS}, envelope`,
      [request.id, request.now, request.operator, request.reason ?? null],
    );
    const row = updated.rows[0];
    if (!row) {
      await client.query('rollback');
      open = false;
      const existing = await getQuarantineEntry(pool, request.id);
      return existing ? { kind: 'already-released', entry: existing } : { kind: 'not-found' };
    }
    const entry = toEntry(row);
    const prepared = releasedEnvelope(row.envelope, entry, request);
    if (!prepared.ok) {
      await client.query('rollback');
      open = false;
      return { kind: 'envelope-unusable', messageId: entry.messageId, reason: prepared.reason };
    }
    const envelope = prepared.envelope;
    await setRecipientState(client, entry.messageId, envelope.recipients, 'pending', `released by ${request.operator}`);
    await recordEvent(client, entry.messageId, {
      stage: 'admin',
      event: 'message.released',
      outcome: 'next',
      reason: request.reason,
      data: { quarantineId: entry.id, operator: request.operator, finding: entry.finding, to: envelope.itinerary[0] },
      at: request.now,
    });
    try {
      await withDeadline(publish(envelope), request.publishTimeoutMs ?? RELEASE_PUBLISH_TIMEOUT_MS);
    } catch (err) {
      await client.query('rollback');
      open = false;
      return { kind: 'queue-unavailable', envelope, error: err as Error };
    }
    await client.query('commit');
    open = false;
    return { kind: 'released', entry, envelope };
  } finally {
    if (open) await client.query('rollback').catch(() => {});
    client.release();
  }
}

/** The stored envelope (as it reached scan), marked as released by the operator and moved past scan. */
function releasedEnvelope(
  stored: unknown,
  entry: QuarantineEntry,
  request: ReleaseRequest,
): { ok: true; envelope: Envelope } | { ok: false; reason: string } {
  const parsed = parseEnvelope(stored);
  if (!parsed.ok) return { ok: false, reason: `the stored envelope does not validate: ${parsed.error}` };
  if (parsed.envelope.itinerary[0] !== 'scan') {
    return { ok: false, reason: `the stored envelope is at ${parsed.envelope.itinerary[0] ?? 'the end'}, not at scan` };
  }
  const envelope = withVerdict(advance(parsed.envelope, 'scan'), 'scan', {
    status: 'released',
    at: request.now.toISOString(),
    detail: entry.finding,
    by: request.operator,
  });
  if (envelope.itinerary.length === 0) return { ok: false, reason: 'the stored envelope has no stage after scan' };
  return { ok: true, envelope };
}

/**
 * Fails after `ms` if the broker has not confirmed by then. If the confirm comes later, the message was published but
 * the release rolled back: a later release publishes it again (at least once, see releaseQuarantined).
 */
async function withDeadline(publishing: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the broker did not confirm within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([publishing, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
