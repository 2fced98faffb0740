// A mailbox's messages: one row per (mailbox, gateway message, recipient), its bytes encrypted under the mailbox's
// data key (message-cipher.ts). Usage is kept on the mailbox row, in the same transaction as the insert.
import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from '@smgw/db';
import { decryptMessage, encryptMessage, type MessageSummary, openSummary, sealSummary } from './message-cipher.ts';

type Queryable = Pool | PoolClient;

export const MAILBOX_FOLDERS = ['inbox', 'sent', 'trash'] as const;
export type MailboxFolder = (typeof MAILBOX_FOLDERS)[number];

export interface NewMailboxMessage {
  mailboxId: string;
  /** The mailbox's data key (openMailboxKey). */
  dataKey: Uint8Array;
  folder: MailboxFolder;
  messageId: string;
  recipient: string;
  raw: Buffer;
  receivedAt: Date;
  /** What the folder list shows; sealed under the same key. */
  summary?: MessageSummary;
}

/**
 * A message encrypted for its mailbox, ready to insert: made before the transaction that stores it (recordArrival),
 * so neither the key store's file nor the encryption of the whole message happens while the mailbox row is locked.
 */
export interface SealedMailboxMessage {
  id: string;
  mailboxId: string;
  folder: MailboxFolder;
  messageId: string;
  recipient: string;
  size: number;
  receivedAt: Date;
  content: Buffer;
  summary: Buffer | null;
}

/** Encrypts the message (and its summary) under the mailbox's data key, for the row id it will have. */
export function sealMailboxMessage(message: NewMailboxMessage): SealedMailboxMessage {
  const id = randomUUID();
  return {
    id,
    mailboxId: message.mailboxId,
    folder: message.folder,
    messageId: message.messageId,
    recipient: message.recipient,
    size: message.raw.length,
    receivedAt: message.receivedAt,
    content: encryptMessage(message.dataKey, message.mailboxId, id, message.raw),
    summary: message.summary ? sealSummary(message.dataKey, message.mailboxId, id, message.summary) : null,
  };
}

/**
 * Adds `bytes` to the usage of an active mailbox only if they still fit under `quotaBytes`; false (nothing added) when
 * they do not or the mailbox is not active. As in commitArrival, the conditional update is the check itself:
 * concurrent callers each see the usage the one before left, so the quota is never exceeded. For bytes stored later
 * (a portal message's Sent copy, kept only after its publish): insertMailboxMessage with `usageReserved` then.
 */
export async function reserveMailboxUsage(
  db: PoolClient,
  reservation: { mailboxId: string; bytes: number; quotaBytes: number },
): Promise<boolean> {
  const reserved = await db.query(
    `update mailboxes set usage_bytes = usage_bytes + $2
      where id = $1 and state = 'active' and usage_bytes + $2 <= $3`,
    [reservation.mailboxId, reservation.bytes, reservation.quotaBytes],
  );
  return (reserved.rowCount ?? 0) > 0;
}

/**
 * How long a portal draft can be sent (its draft token is valid; the portal's draft-token.ts): a portal message's
 * reserved Sent-copy bytes (reserveMailboxUsage) wait this long for the form to be sent again, after which nobody can,
 * and the reaper gives them back (releaseMailboxUsage). Here so that both the portal and the reaper read one value.
 */
export const DRAFT_MAX_AGE_MS = 2 * 24 * 60 * 60 * 1000;

/**
 * Gives `bytes` reserved by reserveMailboxUsage back to the mailbox's usage, never below 0 (a usage that drifted
 * lower gives back what it has), under the mailbox row's lock. Undefined when there is no such mailbox (deleted
 * meanwhile: nothing to give back); else the bytes given back and the usage after.
 */
export async function releaseMailboxUsage(
  db: PoolClient,
  mailboxId: string,
  bytes: number,
): Promise<{ releasedBytes: number; usageBytes: number } | undefined> {
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new RangeError(`bytes must be a whole number >= 0, got ${bytes}`);
  }
  const found = await db.query<{ usage_bytes: string }>('select usage_bytes from mailboxes where id = $1 for update', [
    mailboxId,
  ]);
  const row = found.rows[0];
  if (!row) return undefined;
  const before = Number(row.usage_bytes);
  const releasedBytes = Math.min(before, bytes);
  if (releasedBytes > 0) {
    await db.query('update mailboxes set usage_bytes = usage_bytes - $2 where id = $1', [mailboxId, releasedBytes]);
  }
  return { releasedBytes, usageBytes: before - releasedBytes };
}

/**
 * Stores the message and adds its size to the mailbox's usage (not when `usageReserved`: reserveMailboxUsage added it
 * already); returns the row id, or undefined when this mailbox holds the message for this recipient already (a
 * redelivery: nothing is stored or counted twice).
 */
export async function insertMailboxMessage(
  db: PoolClient,
  message: NewMailboxMessage,
  options: { usageReserved?: boolean } = {},
): Promise<string | undefined> {
  const sealed = sealMailboxMessage(message);
  const inserted = await db.query(
    `insert into mailbox_messages (id, mailbox_id, folder, message_id, recipient, size, received_at, content, summary)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     on conflict (mailbox_id, message_id, recipient) do nothing`,
    [
      sealed.id,
      sealed.mailboxId,
      sealed.folder,
      sealed.messageId,
      sealed.recipient,
      sealed.size,
      sealed.receivedAt,
      sealed.content,
      sealed.summary,
    ],
  );
  if ((inserted.rowCount ?? 0) === 0) return undefined;
  if (options.usageReserved) return sealed.id;
  await db.query('update mailboxes set usage_bytes = usage_bytes + $2 where id = $1', [
    message.mailboxId,
    message.raw.length,
  ]);
  return sealed.id;
}

export interface MailboxMessageSummary {
  id: string;
  folder: MailboxFolder;
  messageId: string;
  recipient: string;
  size: number;
  receivedAt: Date;
  readAt: Date | null;
  /** Where a message in the trash came from (restoring puts it back there). */
  trashedFrom: MailboxFolder | null;
  /** Opened when a data key was given and the row has one (rows stored before migration 013 have none). */
  summary: MessageSummary | null;
}

function toSummary(row: Record<string, unknown>, dataKey: Uint8Array | undefined): MailboxMessageSummary {
  const sealed = row.summary as Buffer | null;
  return {
    id: row.id as string,
    folder: row.folder as MailboxFolder,
    messageId: row.message_id as string,
    recipient: row.recipient as string,
    size: Number(row.size),
    receivedAt: row.received_at as Date,
    readAt: (row.read_at as Date | null) ?? null,
    trashedFrom: (row.trashed_from as MailboxFolder | null) ?? null,
    summary: dataKey && sealed ? openSummary(dataKey, row.mailbox_id as string, row.id as string, sealed) : null,
  };
}

const SUMMARY_COLUMNS =
  'id, mailbox_id, folder, message_id, recipient, size, received_at, read_at, trashed_from, summary';

/** The messages of one folder, newest first (without their content; with their summaries when `dataKey` is given). */
export async function listMailboxMessages(
  db: Queryable,
  mailboxId: string,
  folder: MailboxFolder,
  dataKey?: Uint8Array,
): Promise<MailboxMessageSummary[]> {
  const found = await db.query(
    `select ${SUMMARY_COLUMNS} from mailbox_messages
      where mailbox_id = $1 and folder = $2 order by received_at desc, id`,
    [mailboxId, folder],
  );
  return found.rows.map((row) => toSummary(row, dataKey));
}

/** One message's listing row, only if it belongs to `mailboxId` (a portal user never reaches another's rows). */
export async function findMailboxMessage(
  db: Queryable,
  mailboxId: string,
  rowId: string,
  dataKey?: Uint8Array,
): Promise<MailboxMessageSummary | undefined> {
  const found = await db.query(`select ${SUMMARY_COLUMNS} from mailbox_messages where mailbox_id = $1 and id = $2`, [
    mailboxId,
    rowId,
  ]);
  return found.rows[0] ? toSummary(found.rows[0], dataKey) : undefined;
}

/** Marks a message read (first time only); returns true when this call did (the trace records "read" once). */
export async function markMailboxMessageRead(
  db: Queryable,
  mailboxId: string,
  rowId: string,
  at: Date,
): Promise<boolean> {
  const updated = await db.query(
    'update mailbox_messages set read_at = $3 where mailbox_id = $1 and id = $2 and read_at is null',
    [mailboxId, rowId, at],
  );
  return (updated.rowCount ?? 0) > 0;
}

/** Moves a message to the trash (remembering where from); false when the mailbox has no such message outside it. */
export async function trashMailboxMessage(db: Queryable, mailboxId: string, rowId: string): Promise<boolean> {
  const updated = await db.query(
    `update mailbox_messages set trashed_from = folder, folder = 'trash'
      where mailbox_id = $1 and id = $2 and folder <> 'trash'`,
    [mailboxId, rowId],
  );
  return (updated.rowCount ?? 0) > 0;
}

/** Puts a trashed message back where it came from. */
export async function restoreMailboxMessage(db: Queryable, mailboxId: string, rowId: string): Promise<boolean> {
  const updated = await db.query(
    `update mailbox_messages set folder = coalesce(trashed_from, 'inbox'), trashed_from = null
      where mailbox_id = $1 and id = $2 and folder = 'trash'`,
    [mailboxId, rowId],
  );
  return (updated.rowCount ?? 0) > 0;
}

/**
 * Deletes messages of the mailbox for good (`rowIds`, or the whole trash when omitted) and gives their bytes back
 * to the quota, in one statement each so usage never drifts. Only trashed messages can be deleted this way.
 */
export async function deleteTrashedMessages(
  db: PoolClient,
  mailboxId: string,
  rowIds?: readonly string[],
): Promise<{ messages: number; bytes: number }> {
  const deleted = await db.query<{ size: string }>(
    `delete from mailbox_messages where mailbox_id = $1 and folder = 'trash' and ($2::text[] is null or id = any($2))
     returning size`,
    [mailboxId, rowIds ?? null],
  );
  const bytes = deleted.rows.reduce((sum, row) => sum + Number(row.size), 0);
  if (bytes > 0) {
    await db.query('update mailboxes set usage_bytes = greatest(usage_bytes - $2, 0) where id = $1', [
      mailboxId,
      bytes,
    ]);
  }
  return { messages: deleted.rows.length, bytes };
}

/** Every message of the mailbox with its folder, oldest first (download everything as one archive). */
export async function* readAllMailboxMessages(
  db: Queryable,
  mailboxId: string,
  dataKey: Uint8Array,
): AsyncGenerator<{ row: MailboxMessageSummary; raw: Buffer }> {
  const ids = await db.query<{ id: string }>(
    'select id from mailbox_messages where mailbox_id = $1 order by received_at, id',
    [mailboxId],
  );
  for (const { id } of ids.rows) {
    const row = await findMailboxMessage(db, mailboxId, id, dataKey);
    const raw = await readMailboxMessage(db, mailboxId, dataKey, id);
    if (row && raw) yield { row, raw };
  }
}

/** The raw message of one row, decrypted; undefined when the mailbox has no such row. */
export async function readMailboxMessage(
  db: Queryable,
  mailboxId: string,
  dataKey: Uint8Array,
  rowId: string,
): Promise<Buffer | undefined> {
  const found = await db.query('select content from mailbox_messages where mailbox_id = $1 and id = $2', [
    mailboxId,
    rowId,
  ]);
  const row = found.rows[0];
  return row ? decryptMessage(dataKey, mailboxId, rowId, row.content) : undefined;
}

/**
 * The mailbox's row of one gateway message in `folder` (a portal user's own message in 'sent': it is stored once,
 * under the user's own address as recipient), with its summary when `dataKey` is given.
 */
export async function findMailboxMessageByMessageId(
  db: Queryable,
  input: { mailboxId: string; messageId: string; folders: readonly MailboxFolder[] },
  dataKey?: Uint8Array,
): Promise<MailboxMessageSummary | undefined> {
  const found = await db.query(
    `select ${SUMMARY_COLUMNS} from mailbox_messages
      where mailbox_id = $1 and message_id = $2 and folder = any($3::text[]) order by received_at limit 1`,
    [input.mailboxId, input.messageId, input.folders],
  );
  return found.rows[0] ? toSummary(found.rows[0], dataKey) : undefined;
}
