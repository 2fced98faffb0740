// A mailbox's messages: one row per (mailbox, gateway message, recipient), its bytes encrypted under the mailbox's
// data key (message-cipher.ts). Usage is kept on the mailbox row, in the same transaction as the insert.
import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from '@smgw/db';
import { decryptMessage, encryptMessage } from './message-cipher.ts';

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
}

/**
 * Stores the message and adds its size to the mailbox's usage; returns the row id, or undefined when this mailbox
 * holds the message for this recipient already (a redelivery: nothing is stored or counted twice).
 */
export async function insertMailboxMessage(db: PoolClient, message: NewMailboxMessage): Promise<string | undefined> {
  const id = randomUUID();
  const content = encryptMessage(message.dataKey, message.mailboxId, id, message.raw);
  const inserted = await db.query(
    `insert into mailbox_messages (id, mailbox_id, folder, message_id, recipient, size, received_at, content)
     values ($1, $2, $3, $4, $5, $6, $7, $8)
     on conflict (mailbox_id, message_id, recipient) do nothing`,
    [
      id,
      message.mailboxId,
      message.folder,
      message.messageId,
      message.recipient,
      message.raw.length,
      message.receivedAt,
      content,
    ],
  );
  if ((inserted.rowCount ?? 0) === 0) return undefined;
  await db.query('update mailboxes set usage_bytes = usage_bytes + $2 where id = $1', [
    message.mailboxId,
    message.raw.length,
  ]);
  return id;
}

export interface MailboxMessageSummary {
  id: string;
  folder: MailboxFolder;
  messageId: string;
  recipient: string;
  size: number;
  receivedAt: Date;
  readAt: Date | null;
}

/** The messages of one folder, newest first (without their content). */
export async function listMailboxMessages(
  db: Queryable,
  mailboxId: string,
  folder: MailboxFolder,
): Promise<MailboxMessageSummary[]> {
  const found = await db.query(
    `select id, folder, message_id, recipient, size, received_at, read_at from mailbox_messages
      where mailbox_id = $1 and folder = $2 order by received_at desc, id`,
    [mailboxId, folder],
  );
  return found.rows.map((row) => ({
    id: row.id,
    folder: row.folder,
    messageId: row.message_id,
    recipient: row.recipient,
    size: Number(row.size),
    receivedAt: row.received_at,
    readAt: row.read_at,
  }));
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
