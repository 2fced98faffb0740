// A mailbox's messages at rest: AES-256-GCM under the mailbox's own data key, bound to the mailbox and the row
// (aad), so a ciphertext copied to another row or mailbox does not open. Layout: iv(12) | tag(16) | ciphertext.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { MailboxStoreError } from './errors.ts';

const IV_BYTES = 12;
const TAG_BYTES = 16;

const contentAad = (mailboxId: string, rowId: string) => Buffer.from(`smgw-mailbox-message\0${mailboxId}\0${rowId}`);

export function encryptMessage(dataKey: Uint8Array, mailboxId: string, rowId: string, plaintext: Uint8Array): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
  cipher.setAAD(contentAad(mailboxId, rowId));
  const ciphertext = cipher.update(plaintext);
  const rest = cipher.final(); // empty for GCM; the tag is known after it
  return Buffer.concat([iv, cipher.getAuthTag(), ciphertext, rest]); // one copy of the message, not two
}

/** Throws MailboxStoreError MAILBOX_CONTENT_TAMPERED when the bytes do not authenticate. */
export function decryptMessage(dataKey: Uint8Array, mailboxId: string, rowId: string, stored: Uint8Array): Buffer {
  const bytes = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
  try {
    const decipher = createDecipheriv('aes-256-gcm', dataKey, bytes.subarray(0, IV_BYTES), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(contentAad(mailboxId, rowId));
    decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    const plain = decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES));
    const rest = decipher.final(); // empty for GCM; checks the tag
    return rest.length === 0 ? plain : Buffer.concat([plain, rest]);
  } catch (cause) {
    throw new MailboxStoreError('MAILBOX_CONTENT_TAMPERED', 'a mailbox message does not authenticate', { cause });
  }
}

/** What a folder list shows of a message; sealed beside the content so a list does not open whole messages. */
export interface MessageSummary {
  from: string;
  to: string;
  subject: string;
  /** The Date header as sent (ISO), or null when missing or unreadable. */
  date: string | null;
  attachments: number;
}

const summaryAad = (mailboxId: string, rowId: string) => `summary\0${mailboxId}\0${rowId}`;

export function sealSummary(dataKey: Uint8Array, mailboxId: string, rowId: string, summary: MessageSummary): Buffer {
  return encryptMessage(dataKey, summaryAad(mailboxId, rowId), '', Buffer.from(JSON.stringify(summary), 'utf8'));
}

export function openSummary(dataKey: Uint8Array, mailboxId: string, rowId: string, sealed: Uint8Array): MessageSummary {
  return JSON.parse(decryptMessage(dataKey, summaryAad(mailboxId, rowId), '', sealed).toString('utf8'));
}
