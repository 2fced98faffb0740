// /postfach/eingang, /gesendet, /papierkorb: a folder as a table (newest first) from the sealed summaries, nothing
// of the messages themselves is opened; and emptying the trash. Every query is scoped by the session's mailbox.

import { withTransaction } from '@smgw/db';
import { deleteTrashedMessages, listMailboxMessages, type MailboxFolder } from '@smgw/mailbox-store';
import type { FastifyRequest } from 'fastify';
import type { PortalContext, PortalPage } from '../context.ts';
import { formatDateTime, formatSize } from '../format.ts';
import type { MessageKey } from '../i18n/index.ts';

export const FOLDER_PATHS: Record<MailboxFolder, string> = {
  inbox: '/postfach/eingang',
  sent: '/postfach/gesendet',
  trash: '/postfach/papierkorb',
};

export const FOLDER_TITLES: Record<MailboxFolder, MessageKey> = {
  inbox: 'folders.inbox.title',
  sent: 'folders.sent.title',
  trash: 'folders.trash.title',
};

/** The confirmations a redirect after an action shows (?erledigt=…). */
const DONE: Record<string, MessageKey> = {
  papierkorb: 'folders.done.trashed',
  wiederhergestellt: 'folders.done.restored',
  geloescht: 'folders.done.deleted',
  geleert: 'folders.done.emptied',
};

export interface FolderRow {
  id: string;
  href: string;
  /** The sender (inbox, trash) or the recipients (sent) as text. */
  correspondent: string;
  subject: string;
  unread: boolean;
  /** ISO for <time datetime>, and as the reader's language writes it. */
  dateIso: string;
  dateText: string;
  sizeText: string;
  attachments: number;
}

async function folderRows(ctx: PortalContext, req: FastifyRequest, folder: MailboxFolder): Promise<FolderRow[]> {
  const { mailbox } = ctx.login(req);
  const t = ctx.t(req);
  const key = await ctx.openMailboxKey(mailbox);
  try {
    const messages = await listMailboxMessages(ctx.deps.pool, mailbox.id, folder, key);
    return messages.map((message) => {
      const summary = message.summary;
      // The date the sender wrote can be anything; the list shows when it arrived here when there is none.
      const date = summary?.date ? new Date(summary.date) : message.receivedAt;
      const correspondent = (folder === 'sent' ? summary?.to : summary?.from) ?? '';
      return {
        id: message.id,
        href: `/nachricht/${message.id}`,
        correspondent: correspondent || t('folders.unknown'),
        subject: summary?.subject || t('folders.noSubject'),
        unread: message.readAt === null && folder !== 'sent',
        dateIso: date.toISOString(),
        dateText: formatDateTime(date, req.lang),
        sizeText: formatSize(message.size, req.lang),
        attachments: summary?.attachments ?? 0,
      };
    });
  } finally {
    key.fill(0);
  }
}

export const folderPages: PortalPage = async (app, ctx) => {
  for (const folder of ['inbox', 'sent', 'trash'] as const) {
    app.get(FOLDER_PATHS[folder], { config: { requireLogin: true } }, async (req, reply) => {
      const t = ctx.t(req);
      const rows = await folderRows(ctx, req, folder);
      const done = DONE[String((req.query as Record<string, unknown>).erledigt ?? '')];
      return ctx.render(req, reply, 'folders/folder', {
        title: t(FOLDER_TITLES[folder]),
        folder,
        rows,
        unread: rows.filter((row) => row.unread).length,
        notice: done ? t(done) : undefined,
      });
    });
  }

  // Deleting for good gives the bytes back to the quota in the same statement (mailbox-store).
  app.post('/postfach/papierkorb/leeren', { config: { requireLogin: true } }, async (req, reply) => {
    const { mailbox } = ctx.login(req);
    const freed = await withTransaction(ctx.deps.pool, (db) => deleteTrashedMessages(db, mailbox.id));
    // The trash's rows are not returned: the mailbox's other views are made again when opened.
    ctx.viewCache.forgetMailbox(mailbox.id);
    req.log.info(
      { code: 'PORTAL_TRASH_EMPTIED', mailboxId: mailbox.id, messages: freed.messages, bytes: freed.bytes },
      'trash emptied',
    );
    return reply.redirect(`${FOLDER_PATHS.trash}?erledigt=geleert`, 303);
  });
};
