// A quarantine row as an operator sees it: its facts and the verdict, never the message content. Shared by listing
// and releasing, which return the same shape.

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

// Only the envelope's sender and recipients are selected: the rest of it (client, blob ref) stays in the database.
export const ENTRY_COLUMNS = `id, message_id, direction, verdict, finding, detail, quarantined_at, expires_at,
  released_at, released_by, release_reason, envelope->>'mailFrom' as mail_from, envelope->'recipients' as recipients`;

export interface EntryRow {
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

export function toEntry(row: EntryRow): QuarantineEntry {
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
