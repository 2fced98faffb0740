// What an operator sees of a mailbox (the admin API's GET /mailboxes/{address}): message counts per folder, the
// live activation token without its secrets (its inactivity warnings: listInactivityWarnings in inactivity.ts).
// Nothing of the messages themselves.
import type { Pool, PoolClient } from '@smgw/db';
import type { ActivationToken } from './activation-tokens.ts';
import { MAILBOX_FOLDERS, type MailboxFolder } from './mailbox-messages.ts';

type Queryable = Pool | PoolClient;

export interface FolderCount {
  messages: number;
  /** Raw message bytes (what the quota counts). */
  bytes: number;
  unread: number;
}

/** Messages, bytes and unread messages of each folder (every folder listed, empty ones with zeros). */
export async function countMailboxMessages(
  db: Queryable,
  mailboxId: string,
): Promise<Record<MailboxFolder, FolderCount>> {
  const found = await db.query<{ folder: MailboxFolder; messages: string; bytes: string; unread: string }>(
    `select folder, count(*) as messages, coalesce(sum(size), 0) as bytes, count(*) filter (where read_at is null) as unread
       from mailbox_messages where mailbox_id = $1 group by folder`,
    [mailboxId],
  );
  const counts = Object.fromEntries(
    MAILBOX_FOLDERS.map((folder) => [folder, { messages: 0, bytes: 0, unread: 0 }]),
  ) as Record<MailboxFolder, FolderCount>;
  for (const row of found.rows) {
    counts[row.folder] = { messages: Number(row.messages), bytes: Number(row.bytes), unread: Number(row.unread) };
  }
  return counts;
}

/** The mailbox's live token (unused, unrevoked; possibly expired), if any. Its secrets are not read. */
export async function findLiveActivationToken(
  db: Queryable,
  mailboxId: string,
): Promise<
  | Pick<ActivationToken, 'id' | 'createdAt' | 'expiresAt' | 'pinMailDueAt' | 'pinMailSentAt' | 'purpose' | 'attempts'>
  | undefined
> {
  const found = await db.query(
    `select id, created_at, expires_at, pin_mail_due_at, pin_mail_sent_at, purpose, attempts from mailbox_tokens
      where mailbox_id = $1 and used_at is null and revoked_at is null`,
    [mailboxId],
  );
  const row = found.rows[0];
  if (!row) return undefined;
  return {
    id: row.id,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    pinMailDueAt: row.pin_mail_due_at,
    pinMailSentAt: row.pin_mail_sent_at ?? null,
    purpose: row.purpose,
    attempts: Number(row.attempts),
  };
}
