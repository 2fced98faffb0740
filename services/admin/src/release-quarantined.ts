// Releasing a quarantined message (POST /quarantine/{id}/release): the entry (@smgw/quarantine), the recipients'
// state and the trace change in one transaction that commits only after the broker confirmed the envelope.
import type { Pool } from '@smgw/db';
import { advance, type Envelope, parseEnvelope, withVerdict } from '@smgw/envelope';
import { getQuarantineEntry, markQuarantineReleased, type QuarantineEntry } from '@smgw/quarantine';
import { recordEvent, setRecipientState } from '@smgw/trace';

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
    const released = await markQuarantineReleased(client, {
      id: request.id,
      operator: request.operator,
      reason: request.reason,
      at: request.now,
    });
    if (!released) {
      await client.query('rollback');
      open = false;
      const existing = await getQuarantineEntry(pool, request.id);
      return existing ? { kind: 'already-released', entry: existing } : { kind: 'not-found' };
    }
    const { entry } = released;
    const prepared = releasedEnvelope(released.storedEnvelope, entry, request);
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
