// Writing a quarantine entry (migrations 005–007) together with its trace: one transaction, idempotent on
// (message_id, blob_sha256, direction), so a redelivered envelope finds its entry and the notice made the first time.
// A message split into an internal and an outbound envelope gets one entry per envelope (each released on its own)
// and one notice (the sender is told once).
import { type Pool, withTransaction } from '@smgw/db';
import { type Envelope, newMessageId, parseEnvelope } from '@smgw/envelope';
import { recordEvent, recordMessage, setRecipientState } from '@smgw/trace';

export interface QuarantineRecord {
  envelope: Envelope;
  verdict: 'infected' | 'suspicious';
  finding: string;
  category: string;
  detail?: string | undefined;
  now: Date;
  expiresAt: Date;
  /** Made only when there is no entry yet; its envelope is stored with the entry. */
  makeNotice: () => Promise<Envelope | undefined>;
}

export interface QuarantineResult {
  quarantineId: string;
  /** False when the entry was already there (a redelivery). */
  created: boolean;
  notice: Envelope | undefined;
}

interface ExistingRow {
  id: string;
  notice_envelope: unknown;
}

export async function findQuarantineEntry(
  pool: Pool,
  envelope: Envelope,
): Promise<{ quarantineId: string; notice: Envelope | undefined } | undefined> {
  const found = await pool.query<ExistingRow>(
    'select id, notice_envelope from quarantine where message_id = $1 and blob_sha256 = $2 and direction = $3',
    [envelope.id, envelope.blob.sha256, envelope.direction],
  );
  const row = found.rows[0];
  return row ? { quarantineId: row.id, notice: storedNotice(row.notice_envelope) } : undefined;
}

/** True when another envelope of the same message already made the notice (the sender is told once). */
async function siblingHasNotice(pool: Pool, envelope: Envelope): Promise<boolean> {
  const found = await pool.query(
    `select 1 from quarantine where message_id = $1 and blob_sha256 = $2 and direction <> $3
       and notice_envelope is not null limit 1`,
    [envelope.id, envelope.blob.sha256, envelope.direction],
  );
  return (found.rowCount ?? 0) > 0;
}

/**
 * Records the entry, the recipients' state `quarantined`, a `message.quarantined` event and the notice message.
 * If this envelope's entry exists already (a redelivery), returns the stored notice and records nothing twice.
 */
export async function quarantineMessage(pool: Pool, record: QuarantineRecord): Promise<QuarantineResult> {
  const { envelope } = record;
  const before = await findQuarantineEntry(pool, envelope);
  const notice = before
    ? before.notice
    : (await siblingHasNotice(pool, envelope))
      ? undefined
      : await record.makeNotice();
  return withTransaction(pool, async (db) => {
    await recordMessage(db, envelope);
    const inserted = await db.query<{ id: string }>(
      `insert into quarantine (id, message_id, blob_sha256, direction, verdict, finding, detail, envelope,
         quarantined_at, expires_at, notice_envelope)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       on conflict (message_id, blob_sha256, direction) do nothing
       returning id`,
      [
        newMessageId(record.now.getTime()),
        envelope.id,
        envelope.blob.sha256,
        envelope.direction,
        record.verdict,
        record.finding,
        record.detail ?? null,
        JSON.stringify(envelope),
        record.now,
        record.expiresAt,
        notice ? JSON.stringify(notice) : null,
      ],
    );
    let quarantineId = inserted.rows[0]?.id;
    let created = quarantineId !== undefined;
    let published = notice;
    if (!quarantineId) {
      // A concurrent or earlier delivery won: use its entry and its notice.
      const existing = await db.query<ExistingRow>(
        'select id, notice_envelope from quarantine where message_id = $1 and blob_sha256 = $2 and direction = $3',
        [envelope.id, envelope.blob.sha256, envelope.direction],
      );
      quarantineId = existing.rows[0]?.id ?? '';
      published = storedNotice(existing.rows[0]?.notice_envelope);
      created = false;
    }
    const already = await db.query(
      `select 1 from message_events where message_id = $1 and stage = 'scan' and event = 'message.quarantined'
         and data->>'direction' = $2`,
      [envelope.id, envelope.direction],
    );
    if (already.rowCount === 0) {
      await setRecipientState(
        db,
        envelope.id,
        envelope.recipients,
        'quarantined',
        `${record.verdict}: ${record.finding}`,
      );
      await recordEvent(db, envelope.id, {
        stage: 'scan',
        event: 'message.quarantined',
        outcome: 'next',
        code: record.verdict === 'infected' ? 'SCAN_INFECTED' : 'SCAN_SUSPICIOUS',
        reason: record.finding,
        data: {
          quarantineId,
          direction: envelope.direction,
          verdict: record.verdict,
          category: record.category,
          finding: record.finding,
          noticeMessageId: published?.id ?? null,
        },
        at: record.now,
      });
      if (published && created) {
        await recordMessage(db, published);
        await recordEvent(db, published.id, {
          stage: 'scan',
          event: 'notice.generated',
          outcome: 'next',
          reason: `quarantine notice for ${envelope.id}`,
          data: { relatesTo: envelope.id, quarantineId },
          at: record.now,
        });
      }
    }
    return { quarantineId, created, notice: published };
  });
}

function storedNotice(value: unknown): Envelope | undefined {
  if (value === null || value === undefined) return undefined;
  const parsed = parseEnvelope(value);
  return parsed.ok ? parsed.envelope : undefined;
}
