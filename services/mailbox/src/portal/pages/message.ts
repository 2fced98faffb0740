// /nachricht/:id and what hangs off it: the message page (header fields as text, attachments as downloads, the
// plain text in a <pre> or the sanitised HTML in a sandboxed frame), the frame's own document, attachment and
// original downloads, and moving to the trash, restoring, deleting for good. The message is looked up only within
// the session's mailbox: another mailbox's id is a 404 exactly like one that does not exist.
import { withTransaction } from '@smgw/db';
import {
  deleteTrashedMessages,
  findMailboxMessage,
  type MailboxMessageSummary,
  markMailboxMessageRead,
  readMailboxMessage,
  restoreMailboxMessage,
  trashMailboxMessage,
} from '@smgw/mailbox-store';
import { recordEvents, recordedMessage } from '@smgw/trace';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { formatMailboxes } from '../../message-headers.ts';
import { MimeStructureError } from '../../mime-structure.ts';
import { attachmentDisposition, downloadContentType } from '../attachment-names.ts';
import type { PortalContext, PortalPage } from '../context.ts';
import { formatDateTime, formatSize } from '../format.ts';
import { subjectFilePart } from '../mailbox-archive.ts';
import { frameDocument, type MessageView } from '../message-view.ts';
import { MessageViewWorkerError, type ViewOutcome } from '../message-view-workers.ts';
import { FOLDER_PATHS, FOLDER_TITLES } from './folders.ts';

const ROW_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ATTACHMENT_INDEX = /^[0-9]{1,4}$/;
/** Message views, frames and attachment downloads per client and minute, unless SMGW_PORTAL_MESSAGE_VIEWS_PER_MINUTE. */
export const PARSES_PER_MINUTE = 120;

/** The page that shows the frame may frame our own origin; everything else as on every page. */
export const MESSAGE_PAGE_CSP =
  "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; " +
  "base-uri 'none'; frame-src 'self'";

/**
 * The frame's document: no script, no fetch, inline style only, images only as data: (inline cid images), a unique
 * origin (sandbox). Popups are allowed so a link (target=_blank, noopener) opens in a new tab of its own; nothing
 * else the sandbox forbids is allowed. Only our own message page may frame it.
 */
export const MESSAGE_FRAME_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'; " +
  "frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox";
export const MESSAGE_FRAME_SANDBOX = 'allow-popups allow-popups-to-escape-sandbox';

/** Downloads are files, never documents of this origin. */
export const DOWNLOAD_CSP = "default-src 'none'; sandbox";

interface OwnMessage {
  row: MailboxMessageSummary;
  raw: Buffer;
}

/** The message row `:id` of the session's mailbox, or undefined (no such id here: a 404). */
async function ownRow(ctx: PortalContext, req: FastifyRequest, key: Buffer) {
  const id = (req.params as { id?: string }).id ?? '';
  if (!ROW_ID.test(id)) return undefined;
  return findMailboxMessage(ctx.deps.pool, ctx.login(req).mailbox.id, id, key);
}

/** The message `:id` of the session's mailbox with its bytes, or undefined (no such id here: a 404). */
async function ownMessage(ctx: PortalContext, req: FastifyRequest): Promise<OwnMessage | undefined> {
  const { mailbox } = ctx.login(req);
  const key = await ctx.openMailboxKey(mailbox);
  try {
    const row = await ownRow(ctx, req, key);
    if (!row) return undefined;
    const raw = await readMailboxMessage(ctx.deps.pool, mailbox.id, key, row.id);
    return raw ? { row, raw } : undefined;
  } finally {
    key.fill(0);
  }
}

/**
 * What the page shows of a message: its view, or why there is none: unreadable (beyond the parser's limits, or
 * broken), not parsed within the time limit, or no worker free in time. `html` is left out when it was not sanitised
 * in time (htmlTimedOut: the page shows the text).
 */
type ShownView = { view: MessageView } | { view?: undefined; missing: 'unreadable' | 'timedOut' | 'busy' };

interface OwnView {
  row: MailboxMessageSummary;
  shown: ShownView;
}

/**
 * The message `:id` of the session's mailbox and its view: from the view cache when it was made in the last minute
 * (looked up only after the row was found in this mailbox), else parsed and sanitised in a worker. Undefined: no such
 * message here (404); 'failed': the worker died (500, logged here with the message's ids).
 */
async function ownView(ctx: PortalContext, req: FastifyRequest): Promise<OwnView | 'failed' | undefined> {
  const { mailbox } = ctx.login(req);
  const ids = (row: MailboxMessageSummary) => ({ mailboxId: mailbox.id, messageId: row.messageId, rowId: row.id });
  // Before the row is read: a logout or deletion from here on (while the row is read, or the worker runs) means the
  // view made is not kept (message-view-cache.ts).
  const stamp = ctx.viewCache.stamp();
  const key = await ctx.openMailboxKey(mailbox);
  let row: MailboxMessageSummary | undefined;
  let raw: Buffer | undefined;
  try {
    row = await ownRow(ctx, req, key);
    if (!row) return undefined;
    const cached = ctx.viewCache.get('view', mailbox.id, row.id);
    if (cached) {
      req.log.debug({ code: 'PORTAL_MESSAGE_VIEW_CACHED', ...ids(row) }, 'message view from the cache');
      return { row, shown: shownOf(cached) };
    }
    raw = await readMailboxMessage(ctx.deps.pool, mailbox.id, key, row.id);
    if (!raw) return undefined;
  } finally {
    key.fill(0);
  }
  const started = performance.now();
  let outcome: Awaited<ReturnType<typeof ctx.messageViews.view>>;
  try {
    outcome = await ctx.messageViews.view(raw);
  } catch (err) {
    if (err instanceof MessageViewWorkerError) {
      req.log.error({ err, code: err.code, ...ids(row) }, 'the message view worker failed');
      return 'failed';
    }
    req.log.warn(
      { code: err instanceof MimeStructureError ? err.code : 'PORTAL_MESSAGE_UNREADABLE', ...ids(row) },
      'a message could not be parsed for display',
    );
    return { row, shown: { missing: 'unreadable' } };
  }
  const ms = Math.round(performance.now() - started);
  if ('timedOut' in outcome) {
    req.log.warn(
      { code: 'PORTAL_VIEW_TIME_LIMIT', stage: outcome.timedOut, ms, ...ids(row) },
      'a message view ran out of its time: the page shows the text or offers the original',
    );
  } else {
    req.log.debug({ code: 'PORTAL_MESSAGE_VIEW', ms, ...ids(row) }, 'message view made');
  }
  // A wait for a free worker says nothing about the message: not kept.
  if (!('timedOut' in outcome && outcome.timedOut === 'waiting'))
    ctx.viewCache.set('view', mailbox.id, row.id, outcome, stamp);
  return { row, shown: shownOf(outcome) };
}

function shownOf(outcome: ViewOutcome): ShownView {
  if ('done' in outcome) return { view: outcome.done };
  if (outcome.timedOut === 'sanitising') return { view: outcome.view };
  return { missing: outcome.timedOut === 'parsing' ? 'timedOut' : 'busy' };
}

const MISSING_NOTICES = {
  unreadable: 'message.unreadable',
  timedOut: 'message.viewTimedOut',
  busy: 'message.viewBusy',
} as const;

/**
 * Marks the message read the first time it is opened and, for a message that arrived (not one the user sent),
 * records `message.read` in the gateway message's trace, in the same transaction: once.
 */
async function markRead(ctx: PortalContext, req: FastifyRequest, row: MailboxMessageSummary): Promise<void> {
  if (row.readAt) return;
  const { mailbox } = ctx.login(req);
  const at = ctx.now();
  const arrived = (row.folder === 'trash' ? row.trashedFrom : row.folder) !== 'sent';
  await withTransaction(ctx.deps.pool, async (db) => {
    if (!(await markMailboxMessageRead(db, mailbox.id, row.id, at))) return;
    if (!arrived || !(await recordedMessage(db, row.messageId))) return;
    await recordEvents(db, row.messageId, [
      {
        stage: 'mailbox',
        event: 'message.read',
        outcome: 'done',
        recipient: row.recipient,
        data: { mailboxId: mailbox.id },
        at,
      },
    ]);
  });
  req.log.info({ code: 'PORTAL_MESSAGE_READ', mailboxId: mailbox.id, messageId: row.messageId }, 'message read');
}

function notFound(ctx: PortalContext, req: FastifyRequest, reply: FastifyReply) {
  return ctx.renderError(req, reply, 404);
}

export const messagePages: PortalPage = async (app, ctx) => {
  const requireLogin = { config: { requireLogin: true } };
  // Each of these decrypts (and most parse) the whole message, up to the quota's 30 MB: fewer per client than the
  // portal's default.
  const max = ctx.settings.messageViewsPerClientPerMinute ?? PARSES_PER_MINUTE;
  const parsing = { config: { requireLogin: true, rateLimit: { max, timeWindow: 60_000 } } };

  app.get('/nachricht/:id', parsing, async (req, reply) => {
    const found = await ownView(ctx, req);
    if (found === 'failed') return ctx.renderError(req, reply, 500);
    if (!found) return notFound(ctx, req, reply);
    const { row, shown } = found;
    const { view } = shown;
    const t = ctx.t(req);
    await markRead(ctx, req, row);
    const folder = row.folder;
    const subject = view?.subject || row.summary?.subject || t('message.noSubject');
    reply.header('content-security-policy', MESSAGE_PAGE_CSP);
    return ctx.render(req, reply, 'message/message', {
      title: subject,
      subject,
      id: row.id,
      folder,
      folderPath: FOLDER_PATHS[folder],
      folderTitle: t(FOLDER_TITLES[folder]),
      headers: view
        ? {
            from: formatMailboxes(view.from),
            to: formatMailboxes(view.to),
            cc: formatMailboxes(view.cc),
          }
        : { from: row.summary?.from ?? '', to: row.summary?.to ?? '', cc: '' },
      date: view?.date ? { iso: view.date, text: formatDateTime(new Date(view.date), req.lang) } : undefined,
      received: { iso: row.receivedAt.toISOString(), text: formatDateTime(row.receivedAt, req.lang) },
      missingNotice: shown.view ? undefined : t(MISSING_NOTICES[shown.missing]),
      text: view?.text,
      textTruncated: view?.textTruncated ?? false,
      html: view?.html ? { remoteContentBlocked: view.html.remoteContentBlocked } : undefined,
      htmlTooLong: view?.htmlTooLong ?? false,
      htmlTimedOut: view?.htmlTimedOut ?? false,
      frameSandbox: MESSAGE_FRAME_SANDBOX,
      attachments: (view?.attachments ?? []).map((attachment) => ({
        href: `/nachricht/${row.id}/anhang/${attachment.index}`,
        filename: attachment.filename,
        detail: t('message.attachmentSize', {
          type: attachment.contentType,
          size: formatSize(attachment.size, req.lang),
        }),
      })),
      canReply: folder === 'inbox',
    });
  });

  app.get('/nachricht/:id/inhalt', parsing, async (req, reply) => {
    const found = await ownView(ctx, req);
    if (found === 'failed') return ctx.renderError(req, reply, 500);
    const html = found?.shown.view?.html;
    if (!html) return notFound(ctx, req, reply);
    return reply
      .header('content-security-policy', MESSAGE_FRAME_CSP)
      .header('x-frame-options', 'SAMEORIGIN')
      .header('x-content-type-options', 'nosniff')
      .type('text/html; charset=utf-8')
      .send(frameDocument(html, req.lang));
  });

  // Parsed in a worker under the view's time limit, as the page is; the attachment's bytes come back transferred.
  app.get('/nachricht/:id/anhang/:n', parsing, async (req, reply) => {
    const index = (req.params as { n?: string }).n ?? '';
    if (!ATTACHMENT_INDEX.test(index)) return notFound(ctx, req, reply);
    const message = await ownMessage(ctx, req);
    if (!message) return notFound(ctx, req, reply);
    const { mailbox } = ctx.login(req);
    const ids = { mailboxId: mailbox.id, messageId: message.row.messageId, rowId: message.row.id };
    // The page's parse ran out of its time in the last minute: this one, the same parse, would too.
    const known = ctx.viewCache.get('view', mailbox.id, message.row.id);
    const started = performance.now();
    let outcome: Awaited<ReturnType<typeof ctx.messageViews.attachment>>;
    try {
      outcome =
        known && 'timedOut' in known && known.timedOut === 'parsing'
          ? { timedOut: 'parsing' }
          : await ctx.messageViews.attachment(message.raw, Number(index));
    } catch (err) {
      if (err instanceof MessageViewWorkerError) {
        req.log.error({ err, code: err.code, ...ids }, 'the message view worker failed');
        return ctx.renderError(req, reply, 500);
      }
      req.log.warn(
        { code: err instanceof MimeStructureError ? err.code : 'PORTAL_MESSAGE_UNREADABLE', ...ids },
        'a message could not be parsed for an attachment',
      );
      return notFound(ctx, req, reply);
    }
    if ('timedOut' in outcome) {
      const ms = Math.round(performance.now() - started);
      req.log.warn(
        { code: 'PORTAL_VIEW_TIME_LIMIT', stage: outcome.timedOut, job: 'attachment', ms, ...ids },
        'an attachment ran out of its time: the page offers the original',
      );
      return downloadUnavailable(ctx, req, reply, message.row.id, outcome.timedOut);
    }
    const attachment = outcome.done;
    if (!attachment) return notFound(ctx, req, reply);
    return sendDownload(reply, attachment.content, attachment.filename, downloadContentType(attachment.contentType));
  });

  app.get('/nachricht/:id/original', parsing, async (req, reply) => {
    const message = await ownMessage(ctx, req);
    if (!message) return notFound(ctx, req, reply);
    const name = `${subjectFilePart(message.row.summary?.subject ?? '')}.eml`;
    return sendDownload(reply, message.raw, name, 'application/octet-stream');
  });

  app.post('/nachricht/:id/papierkorb', requireLogin, async (req, reply) => {
    const { mailbox } = ctx.login(req);
    const id = (req.params as { id: string }).id;
    const row = ROW_ID.test(id) ? await findMailboxMessage(ctx.deps.pool, mailbox.id, id) : undefined;
    if (!row || !(await trashMailboxMessage(ctx.deps.pool, mailbox.id, id))) return notFound(ctx, req, reply);
    req.log.info({ code: 'PORTAL_MESSAGE_TRASHED', mailboxId: mailbox.id, messageId: row.messageId }, 'trashed');
    return reply.redirect(`${FOLDER_PATHS[row.folder]}?erledigt=papierkorb`, 303);
  });

  app.post('/nachricht/:id/wiederherstellen', requireLogin, async (req, reply) => {
    const { mailbox } = ctx.login(req);
    const id = (req.params as { id: string }).id;
    if (!ROW_ID.test(id) || !(await restoreMailboxMessage(ctx.deps.pool, mailbox.id, id))) {
      return notFound(ctx, req, reply);
    }
    req.log.info({ code: 'PORTAL_MESSAGE_RESTORED', mailboxId: mailbox.id, rowId: id }, 'restored');
    return reply.redirect(`${FOLDER_PATHS.trash}?erledigt=wiederhergestellt`, 303);
  });

  // Only from the trash (mailbox-store refuses anything else); the bytes go back to the quota.
  app.post('/nachricht/:id/loeschen', requireLogin, async (req, reply) => {
    const { mailbox } = ctx.login(req);
    const id = (req.params as { id: string }).id;
    const deleted = ROW_ID.test(id)
      ? await withTransaction(ctx.deps.pool, (db) => deleteTrashedMessages(db, mailbox.id, [id]))
      : { messages: 0, bytes: 0 };
    if (deleted.messages === 0) return notFound(ctx, req, reply);
    ctx.viewCache.forgetMessages(mailbox.id, [id]);
    req.log.info(
      { code: 'PORTAL_MESSAGE_DELETED', mailboxId: mailbox.id, rowId: id, bytes: deleted.bytes },
      'deleted for good',
    );
    return reply.redirect(`${FOLDER_PATHS.trash}?erledigt=geloescht`, 303);
  });
};

/**
 * The page for an attachment not prepared in time (503: no file came of it; a client saving the answer must not keep
 * this page as the attachment): why, and the original message to download instead.
 */
function downloadUnavailable(
  ctx: PortalContext,
  req: FastifyRequest,
  reply: FastifyReply,
  rowId: string,
  why: 'parsing' | 'waiting',
) {
  const t = ctx.t(req);
  if (why === 'waiting') reply.header('retry-after', 60);
  return ctx.render(
    req,
    reply,
    'message/download-unavailable',
    {
      title: t('message.downloadUnavailable.title'),
      text: t(why === 'parsing' ? 'message.downloadTimedOut' : 'message.viewBusy'),
      id: rowId,
    },
    503,
  );
}

/** A file to save: attachment disposition with a safe name, a type that renders nothing, sniffing off, sandboxed. */
function sendDownload(reply: FastifyReply, content: Buffer, filename: string, contentType: string) {
  return reply
    .header('content-disposition', attachmentDisposition(filename))
    .header('content-security-policy', DOWNLOAD_CSP)
    .header('x-content-type-options', 'nosniff')
    .type(contentType)
    .send(content);
}
