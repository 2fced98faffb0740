// The gateway's own mails (notices) as an outbox in the trace: the notice's message row and a `notice.generated`
// event are written in the transaction that decided to send it (with whatever else that decision changed), the
// envelope is published after the commit, and a `notice.published` event is recorded once the broker confirmed it.
// A crash between commit and publish leaves a notice without `notice.published`: the next run publishes the same
// envelope again (same message id), and deliver, which records each (message, recipient) before sending, never
// delivers it twice. So a decided notice is never lost and never becomes two different mails.
import type { Pool, PoolClient } from '@smgw/db';
import type { Envelope } from '@smgw/envelope';
import { type AlongsideStatement, type RecordedMessage, recordEvent, recordedMessage, recordMessage } from './index.ts';

type Queryable = Pool | PoolClient;

/** The notice's message row and its `notice.generated` event (kind and the message it is about in `data`). */
export async function recordGeneratedMail(
  db: Queryable,
  envelope: Envelope,
  notice: { stage: string; kind: string; relatesTo?: string | undefined; at: Date; data?: Record<string, unknown> },
  /** Rows that commit with it, e.g. the mail's own blob rows (@smgw/blob-store's StagedBlob.rows). */
  alongside: readonly AlongsideStatement[] = [],
): Promise<void> {
  // One statement (the message row, its recipients, the event and what goes alongside): one round trip in the
  // deciding transaction.
  await recordMessage(
    db,
    envelope,
    [
      {
        stage: notice.stage,
        event: 'notice.generated',
        outcome: 'next',
        reason: notice.relatesTo ? `${notice.kind} about ${notice.relatesTo}` : notice.kind,
        data: { ...notice.data, relatesTo: notice.relatesTo ?? null, kind: notice.kind },
        at: notice.at,
      },
    ],
    alongside,
  );
}

/** The broker confirmed the notice: it is no longer in the outbox. */
export async function markNoticePublished(db: Queryable, messageId: string, stage: string, at: Date): Promise<void> {
  await recordEvent(db, messageId, { stage, event: 'notice.published', outcome: 'next', at });
}

/**
 * Notices `stage` generated since `since` and never saw confirmed, oldest first: to be published again. (Found
 * through the messages' arrival index; a notice stuck longer than the look-back is left to an operator.)
 */
export async function unpublishedNotices(
  db: Queryable,
  stage: string,
  since: Date,
  limit: number,
): Promise<RecordedMessage[]> {
  const found = await db.query<{ message_id: string }>(
    `select m.id as message_id from messages m
      where m.received_at >= $2 and m.direction = 'generated'
        and exists (select 1 from message_events g
                     where g.message_id = m.id and g.stage = $1 and g.event = 'notice.generated')
        and not exists (select 1 from message_events p
                         where p.message_id = m.id and p.stage = $1 and p.event = 'notice.published')
      order by m.received_at, m.id limit $3`,
    [stage, since, limit],
  );
  const notices: RecordedMessage[] = [];
  for (const { message_id } of found.rows) {
    const recorded = await recordedMessage(db, message_id);
    if (recorded) notices.push(recorded);
  }
  return notices;
}

/** Who sent these messages (envelope sender, '' for the null sender) and when they arrived; unknown ids are left out. */
export async function sendersOf(
  db: Queryable,
  messageIds: readonly string[],
): Promise<{ messageId: string; mailFrom: string; receivedAt: Date }[]> {
  const found = await db.query(
    'select id, mail_from, received_at from messages where id = any($1::text[]) order by received_at, id',
    [messageIds],
  );
  return found.rows.map((row) => ({ messageId: row.id, mailFrom: row.mail_from, receivedAt: row.received_at }));
}
