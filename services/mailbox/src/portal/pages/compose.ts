// /schreiben (a new message to an agency address marked reachable from the portal) and /nachricht/:id/antworten
// (a reply to the sender of a message in the inbox, if that is an agency). Both forms are multipart (attachments)
// and end in submitPortalMessage; "Gesendet" is shown only after it confirmed the publish (submit.ts).
//
// Multipart and CSRF: @fastify/multipart parses the whole body (attachFieldsToBody) before the global CSRF check
// reads `_csrf` from it in preHandler. So that no stranger's upload is read at all, a multipart body is parsed only
// for a logged-in user (preParsing, below): a cross-site POST carries no session (SameSite=Strict), so it is turned
// away before a byte of it is read; a same-site one is parsed under the limits and then checked like any form.
// Uploads count against one budget per request (SMGW_PORTAL_MAX_UPLOAD_BYTES over text and every file).
import fastifyMultipart, { type MultipartFile } from '@fastify/multipart';
import { inDomains } from '@smgw/config';
import { listPortalReachableAddresses } from '@smgw/key-directory';
import { findMailboxMessage, type Mailbox, readMailboxMessage } from '@smgw/mailbox-store';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { megabytes } from '../../notices.ts';
import { MAX_ATTACHMENTS, MAX_SUBJECT_CHARS, MAX_TEXT_CHARS, type PortalAttachment } from '../compose.ts';
import type { PortalPage } from '../context.ts';
import { draftTokenKey, newDraftToken, openDraftToken } from '../draft-token.ts';
import { PortalWriteError, type PortalWriteErrorCode } from '../errors.ts';
import type { MessageKey } from '../i18n/index.ts';
import { takeSlots } from '../limits.ts';
import type { CachedQuoteOutcome } from '../message-view-cache.ts';
import { MessageViewWorkerError } from '../message-view-workers.ts';
import { decidePortalRecipients } from '../recipients.ts';
import { formatQuote, type ReplyContext, readReplyContext, replySubject } from '../reply-context.ts';
import { type PortalSubmission, type SubmitDeps, submitPortalMessage } from '../submit.ts';
import { multipartField } from './form-fields.ts';
import { PARSES_PER_MINUTE } from './message.ts';

export const DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024;

/** Which form field an error belongs to (the rest is shown in the summary only). */
const ERROR_FIELDS: Partial<Record<PortalWriteErrorCode, 'to' | 'subject' | 'text' | 'attachments'>> = {
  SUBJECT_MISSING: 'subject',
  SUBJECT_LINE_BREAK: 'subject',
  SUBJECT_TOO_LONG: 'subject',
  TEXT_TOO_LONG: 'text',
  MESSAGE_EMPTY: 'text',
  TOO_MANY_ATTACHMENTS: 'attachments',
  UPLOAD_TOO_LARGE: 'attachments',
  QUOTA_EXCEEDED: 'attachments',
  NO_RECIPIENT: 'to',
  TOO_MANY_RECIPIENTS: 'to',
  RECIPIENT_NOT_REACHABLE: 'to',
};

interface Uploads {
  files: PortalAttachment[];
  bytes: number;
  tooLarge: boolean;
}

type Target =
  | { kind: 'new' }
  /** `original`: the whole message, for the quote on the form; not kept while a reply is sent. */
  | {
      kind: 'reply';
      rowId: string;
      /** The gateway message id of the original, for the log. */
      messageId: string;
      to: string;
      original: Buffer | undefined;
      context: ReplyContext;
    };

export const composePages: PortalPage = async (app, ctx) => {
  const maxUploadBytes = ctx.settings.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  const internalDomains = ctx.settings.internalDomains ?? [];
  const draftKey = draftTokenKey(ctx.deps.masterKey);
  const uploads = new WeakMap<FastifyRequest, Uploads>();
  // The reply form decrypts and parses the whole original (quoteOriginal): limited as the message page is.
  const parsing = {
    config: {
      requireLogin: true,
      rateLimit: { max: ctx.settings.messageViewsPerClientPerMinute ?? PARSES_PER_MINUTE, timeWindow: 60_000 },
    },
  };
  const submitDeps: SubmitDeps = {
    pool: ctx.deps.pool,
    blobStore: ctx.deps.blobStore,
    mq: { publish: (envelope) => ctx.deps.publish(envelope) },
    log: ctx.deps.logger,
    mailboxKeys: ctx.deps.mailboxKeys,
    hostname: ctx.settings.hostname,
    internalDomains,
    quotaBytes: ctx.settings.quotaBytes,
    maxUploadBytes,
    now: () => ctx.now(),
  };

  await app.register(fastifyMultipart, {
    attachFieldsToBody: true,
    // Too large is answered with the form and a message, not an error page: the budget below notices it.
    throwFileSizeLimit: false,
    limits: {
      fieldNameSize: 50,
      fieldSize: Math.min(maxUploadBytes, 4 * MAX_TEXT_CHARS),
      fields: 10,
      fileSize: maxUploadBytes,
      files: MAX_ATTACHMENTS,
      parts: MAX_ATTACHMENTS + 10,
      headerPairs: 50,
    },
    async onFile(this: FastifyRequest, part: MultipartFile) {
      const budget = uploads.get(this) ?? { files: [], bytes: 0, tooLarge: false };
      uploads.set(this, budget);
      const chunks: Buffer[] = [];
      // Read to the end in any case (busboy waits for it); keep nothing once the budget is spent.
      for await (const chunk of part.file) {
        budget.bytes += chunk.length;
        if (budget.bytes > maxUploadBytes) budget.tooLarge = true;
        if (!budget.tooLarge) chunks.push(chunk as Buffer);
      }
      if (part.file.truncated) budget.tooLarge = true;
      // An empty file input still sends a part (no name, no bytes): not an attachment.
      if (part.fieldname !== 'attachments' || (part.filename === '' && budget.bytes === 0)) return;
      if (!budget.tooLarge) budget.files.push({ filename: part.filename, content: Buffer.concat(chunks) });
    },
  });

  app.addHook('preParsing', async (req, reply) => {
    // (req.isMultipart() is only known once the parser ran: the header is what there is before.)
    const multipart = /^multipart\//i.test(req.headers['content-type'] ?? '');
    if (req.method === 'POST' && multipart && !req.portalLogin) {
      return reply.redirect('/anmelden', 303);
    }
  });

  async function reachable() {
    return (await listPortalReachableAddresses(ctx.deps.pool)).filter((r) => inDomains(r.address, internalDomains));
  }

  async function renderForm(
    req: FastifyRequest,
    reply: FastifyReply,
    target: Target,
    data: {
      draft: string;
      values?: Record<string, string>;
      errors?: Record<string, string>;
      failure?: string;
      reattach?: boolean;
      /** A notice above the form (the quote could not be read in time). */
      notice?: string;
    },
    status = 200,
  ) {
    const t = ctx.t(req);
    const title = t(target.kind === 'new' ? 'compose.title' : 'compose.reply.title');
    return ctx.render(
      req,
      reply,
      'compose/form',
      {
        title,
        mode: target.kind,
        action: target.kind === 'new' ? '/schreiben' : `/nachricht/${encodeURIComponent(target.rowId)}/antworten`,
        recipients: target.kind === 'new' ? await reachable() : [],
        replyTo: target.kind === 'reply' ? target.to : '',
        maxSubject: MAX_SUBJECT_CHARS,
        attachmentsHint: t('compose.attachments.hint', {
          count: MAX_ATTACHMENTS,
          maxMb: megabytes(maxUploadBytes),
        }),
        draft: data.draft,
        values: data.values ?? {},
        errors: data.errors ?? {},
        failure: data.failure,
        notice: data.notice,
        reattach: data.reattach ?? false,
      },
      status,
    );
  }

  /** The original of a reply, only from this mailbox's inbox (or trashed from it); undefined: 404. */
  async function replyTarget(mailbox: Mailbox, rowId: string): Promise<Target | undefined> {
    const row = await findMailboxMessage(ctx.deps.pool, mailbox.id, rowId);
    if (!row || !(row.folder === 'inbox' || (row.folder === 'trash' && row.trashedFrom === 'inbox'))) return undefined;
    const key = await ctx.openMailboxKey(mailbox);
    let raw: Buffer | undefined;
    try {
      raw = await readMailboxMessage(ctx.deps.pool, mailbox.id, key, row.id);
    } finally {
      key.fill(0);
    }
    if (!raw) return undefined;
    const context = readReplyContext(raw);
    const [to] = await decidePortalRecipients(
      { pool: ctx.deps.pool, internalDomains },
      { kind: 'reply', original: context },
    );
    return { kind: 'reply', rowId: row.id, messageId: row.messageId, to: to ?? '', original: raw, context };
  }

  /**
   * The reply form's quote of its original: read in a message view worker under its time limit (a stranger's message
   * of 30 MB is seconds of mailparser), kept a minute as the message's view is (message-view-cache.ts), so a reload
   * does not parse again. Over its time, or no worker free in time, the form opens without it; a worker that dies the
   * same (logged: not the message's fault, and the reply can be written all the same). `stamp`: the view cache's,
   * read before the original was.
   */
  async function quoteOf(
    req: FastifyRequest,
    mailbox: Mailbox,
    target: Target & { kind: 'reply' },
    stamp: number,
  ): Promise<CachedQuoteOutcome | { timedOut: 'waiting' | 'failed' }> {
    const cached = ctx.viewCache.get('quote', mailbox.id, target.rowId);
    if (cached) return cached;
    const ids = { mailboxId: mailbox.id, messageId: target.messageId, rowId: target.rowId };
    const started = performance.now();
    let outcome: Awaited<ReturnType<typeof ctx.messageViews.quote>>;
    try {
      outcome = await ctx.messageViews.quote(target.original ?? Buffer.alloc(0));
    } catch (err) {
      if (!(err instanceof MessageViewWorkerError)) throw err;
      req.log.error({ err, code: err.code, ...ids }, 'the message view worker failed');
      return { timedOut: 'failed' };
    }
    const ms = Math.round(performance.now() - started);
    if ('timedOut' in outcome) {
      req.log.warn(
        { code: 'PORTAL_VIEW_TIME_LIMIT', stage: outcome.timedOut, job: 'quote', ms, ...ids },
        'a reply quote ran out of its time: the form opens without it',
      );
    } else {
      req.log.debug({ code: 'PORTAL_REPLY_QUOTE', ms, ...ids }, 'reply quote made');
    }
    // A wait for a free worker says nothing about the message: not kept.
    if (!('timedOut' in outcome && outcome.timedOut === 'waiting')) {
      ctx.viewCache.set('quote', mailbox.id, target.rowId, outcome, stamp);
    }
    return outcome;
  }

  /** The page for a reply to someone who is no agency. */
  function replyRefused(req: FastifyRequest, reply: FastifyReply) {
    const t = ctx.t(req);
    return ctx.render(req, reply, 'compose/reply-refused', { title: t('compose.reply.refused.title') }, 403);
  }

  async function send(req: FastifyRequest, reply: FastifyReply, target: Target) {
    const t = ctx.t(req);
    const { mailbox } = ctx.login(req);
    const budget = uploads.get(req);
    const values = {
      to: multipartField(req.body, 'to', 320),
      subject: multipartField(req.body, 'subject', 4 * MAX_SUBJECT_CHARS),
      text: multipartField(req.body, 'text', 4 * MAX_TEXT_CHARS),
    };
    const hadFiles = (budget?.files.length ?? 0) > 0 || (budget?.tooLarge ?? false);
    // A field cut off at the multipart limit is never sent as if it were whole.
    const truncated = Object.values((req.body ?? {}) as Record<string, unknown>).some(
      (field) => (field as { valueTruncated?: unknown } | null)?.valueTruncated === true,
    );
    const refuse = (code: PortalWriteErrorCode, draft: string, status = 400) => {
      const message = t(`compose.error.${code}` as MessageKey, { maxMb: megabytes(maxUploadBytes) });
      const field = ERROR_FIELDS[code];
      req.log.info({ code: 'PORTAL_WRITE_REFUSED', reason: code, mailboxId: mailbox.id }, 'portal message refused');
      return renderForm(
        req,
        reply,
        target,
        {
          draft,
          values,
          errors: field ? { [field]: message } : {},
          failure: field ? undefined : message,
          reattach: hadFiles,
        },
        status,
      );
    };

    const draft = multipartField(req.body, 'draft', 100);
    const messageId = openDraftToken(draftKey, mailbox.id, draft, ctx.now());
    if (!messageId) return refuse('DRAFT_TAKEN', newDraftToken(draftKey, mailbox.id, ctx.now()));
    if (budget?.tooLarge || truncated) return refuse('UPLOAD_TOO_LARGE', draft, 413);
    // The send slots (the mailbox's, then the client's over all its mailboxes: accounts are easy to get) are taken
    // before sending, so parallel forms cannot all pass a check made first, and given back unless a new message
    // went: refused, failed, or a form sent before. Over a limit the form comes back as it was, with the wait.
    const slots = await takeSlots(ctx.limits, [
      ['composePerMailbox', mailbox.id],
      ['composePerClient', ctx.clientOf(req)],
    ]);
    if (slots.exceeded) {
      await slots.giveBack();
      const { name, state } = slots.exceeded;
      req.log.warn(
        {
          code: 'PORTAL_WRITE_RATE_LIMITED',
          mailboxId: mailbox.id,
          limit: name === 'composePerClient' ? 'client' : 'mailbox',
        },
        'too many portal messages sent',
      );
      reply.header('retry-after', Math.ceil(state.retryAfterMs / 1000));
      const failure = t('compose.rateLimited', { minutes: Math.max(1, Math.ceil(state.retryAfterMs / 60_000)) });
      return renderForm(req, reply, target, { draft, values, failure, reattach: hadFiles }, 429);
    }

    const submission: PortalSubmission = {
      mailboxId: mailbox.id,
      messageId,
      to:
        target.kind === 'new'
          ? { kind: 'new', addresses: [values.to] }
          : { kind: 'reply', originalRowId: target.rowId, original: target.context },
      subject: values.subject,
      text: values.text,
      attachments: budget?.files ?? [],
      client: { ip: req.ip, tls: req.protocol === 'https' },
    };
    const outcome = await submitPortalMessage(submitDeps, submission);
    if (outcome.kind !== 'sent' || outcome.again) await slots.giveBack();
    if (outcome.kind === 'sent') {
      req.log.info(
        { code: 'PORTAL_WRITE_SENT', mailboxId: mailbox.id, id: outcome.messageId, again: outcome.again },
        'portal message sent',
      );
      return reply.redirect('/schreiben/gesendet', 303);
    }
    if (outcome.kind === 'failed') {
      return renderForm(req, reply, target, { draft, values, failure: t('compose.failed'), reattach: hadFiles }, 503);
    }
    if (outcome.code === 'REPLY_SENDER_NOT_AGENCY' || outcome.code === 'REPLY_NO_SENDER')
      return replyRefused(req, reply);
    if (outcome.code === 'REPLY_ORIGINAL_NOT_FOUND') return ctx.renderError(req, reply, 404);
    return refuse(
      outcome.code,
      outcome.code === 'DRAFT_TAKEN' ? newDraftToken(draftKey, mailbox.id, ctx.now()) : draft,
    );
  }

  app.get('/schreiben', { config: { requireLogin: true } }, async (req, reply) => {
    const { mailbox } = ctx.login(req);
    return renderForm(req, reply, { kind: 'new' }, { draft: newDraftToken(draftKey, mailbox.id, ctx.now()) });
  });

  app.post('/schreiben', { config: { requireLogin: true } }, async (req, reply) => send(req, reply, { kind: 'new' }));

  app.get('/schreiben/gesendet', { config: { requireLogin: true } }, async (req, reply) =>
    ctx.render(req, reply, 'compose/sent', { title: ctx.t(req)('compose.sent.title') }),
  );

  app.get<{ Params: { id: string } }>('/nachricht/:id/antworten', parsing, async (req, reply) => {
    const { mailbox } = ctx.login(req);
    const t = ctx.t(req);
    let target: Target | undefined;
    // Before the original is read: its quote is not kept if the mailbox logs out or is deleted from here on.
    const stamp = ctx.viewCache.stamp();
    try {
      target = await replyTarget(mailbox, req.params.id);
    } catch (err) {
      if (err instanceof PortalWriteError) return replyRefused(req, reply);
      throw err;
    }
    if (target?.kind !== 'reply') return ctx.renderError(req, reply, 404);
    const { context } = target;
    const quote = await quoteOf(req, mailbox, target, stamp);
    return renderForm(req, reply, target, {
      draft: newDraftToken(draftKey, mailbox.id, ctx.now()),
      values: {
        subject: replySubject(context.subject),
        text: formatQuote('done' in quote ? quote.done : undefined, (from, date) =>
          t('compose.reply.quoteIntro', { from: from || '?', date: date || '?' }),
        ),
      },
      notice: 'timedOut' in quote ? t('compose.reply.quoteTimedOut') : undefined,
    });
  });

  // Sending a reply decrypts and reads the original again (replyTarget): limited as the reply form is.
  app.post<{ Params: { id: string } }>('/nachricht/:id/antworten', parsing, async (req, reply) => {
    const { mailbox } = ctx.login(req);
    let target: Target | undefined;
    try {
      target = await replyTarget(mailbox, req.params.id);
    } catch (err) {
      if (err instanceof PortalWriteError) return replyRefused(req, reply);
      throw err;
    }
    if (target?.kind !== 'reply') return ctx.renderError(req, reply, 404);
    return send(req, reply, { ...target, original: undefined });
  });
};
