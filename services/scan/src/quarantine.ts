// Quarantining a message together with its trace: one transaction, idempotent on the envelope's entry (unique on
// message, blob and direction: @smgw/quarantine), so a redelivered envelope finds its entry and the notice made the
// first time. A message split into an internal and an outbound envelope gets one entry per envelope (each released on
// its own) and one set of notices (the sender is told once, also when both halves are scanned at the same time: their
// transactions take the message row in turn, and the second one publishes no notice of its own).
import { type Pool, withTransaction } from '@smgw/db';
import type { Envelope } from '@smgw/envelope';
import { findQuarantineEntry, insertQuarantineEntry, type QuarantineVerdict, siblingHasNotice } from '@smgw/quarantine';
import { hasEvent, lockMessageRow, recordEvent, recordMessage, setRecipientState } from '@smgw/trace';

export interface QuarantineRecord {
  envelope: Envelope;
  verdict: QuarantineVerdict;
  finding: string;
  category: string;
  detail?: string | undefined;
  now: Date;
  expiresAt: Date;
  /**
   * Made only when there is no entry yet; their envelopes are stored with the entry (none: nobody is told), and the
   * addresses not told (the notices per hour used up) go into the trace.
   */
  makeNotices: () => Promise<MadeNotices>;
}

export interface MadeNotices {
  notices: Envelope[];
  /** Addresses that would have been told, but got their notices of the hour about this sender's network already. */
  withheld: string[];
}

export interface QuarantineResult {
  quarantineId: string;
  /** False when the entry was already there (a redelivery). */
  created: boolean;
  /** The notices to publish (the stored ones on a redelivery); none when nobody is told or a sibling told them. */
  notices: Envelope[];
  /** The addresses not told (see MadeNotices), when this delivery made the entry. */
  withheld: string[];
}

/**
 * Records the entry, the recipients' state `quarantined`, a `message.quarantined` event and the notice messages.
 * If this envelope's entry exists already (a redelivery), returns the stored notices and records nothing twice.
 */
export async function quarantineMessage(pool: Pool, record: QuarantineRecord): Promise<QuarantineResult> {
  const { envelope } = record;
  const before = await findQuarantineEntry(pool, envelope);
  const made: MadeNotices = before
    ? { notices: before.notices, withheld: [] }
    : (await siblingHasNotice(pool, envelope))
      ? { notices: [], withheld: [] }
      : await record.makeNotices();
  const notices = made.notices;
  return withTransaction(pool, async (db) => {
    await recordMessage(db, envelope);
    // The halves of one message (split by direction at ingest) are scanned at once as often as not: one at a time
    // from here, and the second sees the first's notice, so the sender is told once.
    await lockMessageRow(db, envelope.id);
    const told = notices.length > 0 && !before && (await siblingHasNotice(db, envelope));
    let quarantineId = await insertQuarantineEntry(db, {
      envelope,
      verdict: record.verdict,
      finding: record.finding,
      detail: record.detail,
      quarantinedAt: record.now,
      expiresAt: record.expiresAt,
      notices: told ? [] : notices,
    });
    let created = quarantineId !== undefined;
    let published = told ? [] : notices;
    if (!quarantineId) {
      // A concurrent or earlier delivery won: use its entry and its notices.
      const existing = await findQuarantineEntry(db, envelope);
      quarantineId = existing?.quarantineId ?? '';
      published = existing?.notices ?? [];
      created = false;
    }
    // Recorded once per entry, not per direction: encrypt may pass one inbound message on as several envelopes of
    // one direction (a group decrypted, a group not), each with its own blob and entry, and each group's recipients
    // are quarantined by its own (else they stayed pending for ever, and the message was never finished).
    const already = await hasEvent(db, envelope.id, {
      stage: 'scan',
      event: 'message.quarantined',
      dataContains: { quarantineId },
    });
    if (!already) {
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
          noticeMessageIds: published.map((notice) => notice.id),
          ...(made.withheld.length > 0 ? { noticesWithheld: made.withheld } : {}),
        },
        at: record.now,
      });
      for (const notice of created ? published : []) {
        await recordMessage(db, notice);
        await recordEvent(db, notice.id, {
          stage: 'scan',
          event: 'notice.generated',
          outcome: 'next',
          reason: `quarantine notice for ${envelope.id}`,
          data: { relatesTo: envelope.id, quarantineId },
          at: record.now,
        });
      }
    }
    return { quarantineId, created, notices: published, withheld: created ? made.withheld : [] };
  });
}
