// Messages put into a portal test world's mailboxes as arrival.ts stores them (encrypted, with their sealed
// summary), and the gateway message each belongs to recorded in the trace.
import { withTransaction } from '@smgw/db';
import { insertMailboxMessage, type Mailbox, type MailboxFolder, openMailboxKey } from '@smgw/mailbox-store';
import { envelopeFixture } from '@smgw/testing';
import { recordMessage } from '@smgw/trace';
import { summarizeMessage } from '../src/message-summary.ts';
import type { PortalWorld } from './portal-world.ts';

export interface StoredMessage {
  rowId: string;
  messageId: string;
  raw: Buffer;
}

/** Stores `raw` in `folder` of `mailbox`, received now (or `receivedAt`); the gateway message is traced. */
export async function storeMessage(
  world: PortalWorld,
  mailbox: Mailbox,
  raw: Buffer,
  options: { folder?: MailboxFolder; receivedAt?: Date } = {},
): Promise<StoredMessage> {
  const envelope = envelopeFixture({ direction: 'outbound', recipients: [mailbox.address] });
  await recordMessage(world.db.pool, envelope);
  const summary = await summarizeMessage(raw);
  const dataKey = await openMailboxKey(world.mailboxKeys, mailbox);
  try {
    const rowId = await withTransaction(world.db.pool, (db) =>
      insertMailboxMessage(db, {
        mailboxId: mailbox.id,
        dataKey,
        folder: options.folder ?? 'inbox',
        messageId: envelope.id,
        recipient: mailbox.address,
        raw,
        receivedAt: options.receivedAt ?? world.clock.now(),
        summary,
      }),
    );
    if (!rowId) throw new Error('not stored');
    return { rowId, messageId: envelope.id, raw };
  } finally {
    dataKey.fill(0);
  }
}
