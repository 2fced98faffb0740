// A portal user's message enters the pipeline here (issue 9): direction `portal`, itinerary scan → deliver, the
// portal user as the verified sender (envelope author, client.user, and an Authentication-Results field deliver
// puts on top: `auth=pass smtp.auth=<address>`). Deliver sends portal mail only to the agencies' relay
// (outbound-guard.ts refuses anything outside SMGW_INTERNAL_DOMAINS).
//
// The order, and why (ARCHITECTURE.md durability rule 1, as ingest's accept-message.ts):
//   1. The draft's id is the message's id (draft-token.ts). A Sent copy with that id means it went: answer "sent"
//      and do nothing more. A trace record with that id but no Sent copy means an earlier attempt stopped between
//      recording and the end (crash, broker down): go on from step 4 with what was recorded, never compose anew.
//   2. Recipients, composition and upload limit are decided before anything is stored (and the quota, as a first
//      look at the usage).
//   3. Blob, then trace (recordMessage + message.submitted) in one transaction: a stage may take the envelope the
//      moment it is published, and the trace rows must be there. The same transaction reserves the Sent copy's bytes
//      in the usage with a conditional update (reserveMailboxUsage, the quota check itself, under the mailbox row's
//      lock): parallel submissions cannot all fit into the same free space. One that does not fit is refused here,
//      with nothing recorded or published.
//   4. Publish, confirmed by the broker. Until here nothing is visible to the user as sent; if it fails the user is
//      told "not sent, send again", and the same draft republishes the recorded message. Its reserved bytes stay:
//      an unconfirmed publish may have gone, and its Sent copy must still fit when the form is sent again. Once the
//      draft can no longer be sent (DRAFT_MAX_AGE_MS), the reaper gives unused reserved bytes back.
//   5. The Sent copy (its bytes reserved in 3) with the trace event message.sent-copy-stored. Only now does the
//      user see "sent".
// A crash between 4 and 5 leaves a message that went without a Sent copy; the user saw no "sent" and may send the
// form again: step 1 finds the record, republishes it under the same id and stores the copy. Republishing cannot
// send twice: deliver records (message, recipient) and never sends a recorded recipient again, and scan's quarantine
// entry is one per message. Two submissions of one draft at once are serialised on the mailbox row in step 3.
import { Readable } from 'node:stream';
import type { BlobStore } from '@smgw/blob-store';
import { inDomains } from '@smgw/config';
import { type Pool, withTransaction } from '@smgw/db';
import { type Envelope, newEnvelope, withVerdict } from '@smgw/envelope';
import {
  findMailboxById,
  findMailboxMessage,
  findMailboxMessageByMessageId,
  insertMailboxMessage,
  lockMailbox,
  type Mailbox,
  type MailboxKeyStore,
  type MessageSummary,
  openMailboxKey,
  readMailboxMessage,
  reserveMailboxUsage,
} from '@smgw/mailbox-store';
import { type Mq, surelyNotEnqueued } from '@smgw/mq';
import { type Logger, messageLogger } from '@smgw/observability';
import {
  type RecordedMessage,
  recordEvent,
  recordedMessage,
  recordMessage,
  sentCopyReservationState,
} from '@smgw/trace';
import { composePortalMessage, MAX_ATTACHMENTS, type PortalAttachment, uploadBytes } from './compose.ts';
import { PortalWriteError, type PortalWriteErrorCode } from './errors.ts';
import { decidePortalRecipients, plainAddress } from './recipients.ts';
import { type ReplyContext, readReplyContext } from './reply-context.ts';

export interface SubmitDeps {
  pool: Pool;
  blobStore: Pick<BlobStore, 'put' | 'readAll'>;
  mq: Pick<Mq, 'publish'>;
  log: Logger;
  /** The mailbox key store: the mailbox's data key opens with it (openMailboxKey). */
  mailboxKeys: MailboxKeyStore;
  /** SMGW_HOSTNAME: the Message-ID's domain and the authserv-id of the Authentication-Results field. */
  hostname: string;
  internalDomains: string[];
  /** SMGW_MAILBOX_QUOTA_BYTES: every folder counts, the Sent copy too. */
  quotaBytes: number;
  /** SMGW_PORTAL_MAX_UPLOAD_BYTES: text and attachments of one message together. */
  maxUploadBytes: number;
  now?: () => Date;
}

export interface PortalSubmission {
  mailboxId: string;
  /** The gateway id from the form's draft token (openDraftToken); the same id again is the same message. */
  messageId: string;
  to:
    | {
        kind: 'reply';
        originalRowId: string;
        /** The original's header as the caller already read it (the reply page decrypted it to find the row):
         * spares decrypting the whole original a second time. The row is still checked to be this mailbox's. */
        original?: ReplyContext;
      }
    | { kind: 'new'; addresses: readonly string[] };
  subject: string;
  text: string;
  attachments: readonly PortalAttachment[];
  /** The browser's address as the portal sees it, and whether the request came over TLS. */
  client: { ip: string; tls: boolean };
}

export type SubmitOutcome =
  /** Published (confirmed) and in Sent; `again`: an earlier submission of this draft had sent it already. */
  | { kind: 'sent'; messageId: string; sentRowId: string | undefined; again: boolean }
  /** Not allowed as it is: nothing was sent; the page says why. */
  | { kind: 'refused'; code: PortalWriteErrorCode; reason: string }
  /** Our side failed (database, blob store, broker): not sent, or not confirmed; the same draft may be sent again. */
  | { kind: 'failed'; code: string; reason: string };

/** The trace's stage name for what the portal does to a message. */
const STAGE = 'portal';

export async function submitPortalMessage(deps: SubmitDeps, input: PortalSubmission): Promise<SubmitOutcome> {
  try {
    return await submit(deps, input);
  } catch (err) {
    if (err instanceof PortalWriteError) return { kind: 'refused', code: err.code, reason: err.message };
    const code = codeOf(err) ?? 'PORTAL_SUBMIT_FAILED';
    deps.log.error({ code, err, id: input.messageId }, 'portal message not sent');
    return { kind: 'failed', code, reason: (err as Error).message };
  }
}

async function submit(deps: SubmitDeps, input: PortalSubmission): Promise<SubmitOutcome> {
  const now = (deps.now ?? (() => new Date()))();
  const mailbox = await findMailboxById(deps.pool, input.mailboxId);
  if (mailbox?.state !== 'active') {
    throw new PortalWriteError('MAILBOX_NOT_ACTIVE', 'only an active mailbox can send');
  }
  if (plainAddress(mailbox.address) !== mailbox.address) {
    // Mailbox addresses are normalised ASCII; one that is not could not be written into From and the auth field.
    throw new PortalWriteError('MAILBOX_NOT_ACTIVE', 'this mailbox address cannot send');
  }
  if (inDomains(mailbox.address, deps.internalDomains)) {
    // Registration refuses agency addresses, but a mailbox made before its domain became an agency's (an operator's
    // change of SMGW_INTERNAL_DOMAINS) would write an agency From into mail the agencies take for their own.
    throw new PortalWriteError('MAILBOX_NOT_ACTIVE', 'a mailbox at an agency address cannot send from the portal');
  }

  // 1. Sent before, or recorded before?
  const copy = await findMailboxMessageByMessageId(deps.pool, {
    mailboxId: mailbox.id,
    messageId: input.messageId,
    folders: ['sent', 'trash'],
  });
  if (copy) return { kind: 'sent', messageId: input.messageId, sentRowId: copy.id, again: true };
  const earlier = await recordedMessage(deps.pool, input.messageId);
  if (earlier) return resume(deps, mailbox, earlier, input, now);

  // 2. Decide everything before storing anything.
  if (input.attachments.length > MAX_ATTACHMENTS) {
    throw new PortalWriteError('TOO_MANY_ATTACHMENTS', `at most ${MAX_ATTACHMENTS} attachments`);
  }
  if (uploadBytes(input) > deps.maxUploadBytes) {
    throw new PortalWriteError('UPLOAD_TOO_LARGE', `text and attachments exceed ${deps.maxUploadBytes} bytes`);
  }
  const reply =
    input.to.kind === 'reply' ? await originalOf(deps, mailbox, input.to.originalRowId, input.to.original) : undefined;
  const recipients = await decidePortalRecipients(
    { pool: deps.pool, internalDomains: deps.internalDomains },
    reply
      ? { kind: 'reply', original: reply }
      : { kind: 'new', chosen: input.to.kind === 'new' ? input.to.addresses : [] },
  );
  const raw = await composePortalMessage({
    from: mailbox.address,
    to: recipients,
    subject: input.subject,
    text: input.text,
    attachments: input.attachments,
    replyTo: reply?.messageId ? { messageId: reply.messageId, references: reply.references } : undefined,
    messageId: input.messageId,
    hostname: deps.hostname,
    date: now,
  });
  checkQuota(deps, mailbox, raw.length);

  // 3. Blob and trace.
  const blob = await deps.blobStore.put(Readable.from([raw]), { messageId: input.messageId, maxBytes: raw.length });
  const composed = portalEnvelope(deps, {
    id: input.messageId,
    sender: mailbox.address,
    recipients,
    blob,
    client: input.client,
    receivedAt: now,
  });
  const envelope = await withTransaction(deps.pool, async (db) => {
    const locked = await lockMailbox(db, mailbox.id);
    if (locked?.state !== 'active') throw new PortalWriteError('MAILBOX_NOT_ACTIVE', 'only an active mailbox can send');
    // A concurrent submission of the same draft recorded it first: send that one, not a second version.
    const twin = await recordedMessage(db, input.messageId);
    if (twin) return undefined;
    const fits = await reserveMailboxUsage(db, {
      mailboxId: mailbox.id,
      bytes: raw.length,
      quotaBytes: deps.quotaBytes,
    });
    if (!fits) throw quotaExceeded(raw.length, deps.quotaBytes);
    await recordMessage(db, composed);
    await recordEvent(db, composed.id, {
      stage: STAGE,
      event: 'message.submitted',
      outcome: 'next',
      data: {
        listener: 'portal',
        mailboxId: mailbox.id,
        size: blob.size,
        blob: blob.ref,
        recipients: recipients.length,
        reply: reply !== undefined,
        attachments: input.attachments.length,
        auth: 'portal-login',
      },
      at: now,
    });
    return composed;
  });
  if (!envelope) {
    const twin = await recordedMessage(deps.pool, input.messageId);
    if (!twin) throw new Error(`message ${input.messageId} was recorded and is gone`);
    return resume(deps, mailbox, twin, input, now);
  }

  // 4. and 5.
  return publishAndKeepCopy(deps, mailbox, envelope, raw, {
    subject: summarySubject(raw),
    attachments: input.attachments.length,
    now,
  });
}

/** An earlier attempt recorded this draft: publish what it recorded (never a new version) and keep the copy. */
async function resume(
  deps: SubmitDeps,
  mailbox: Mailbox,
  recorded: RecordedMessage,
  input: PortalSubmission,
  now: Date,
): Promise<SubmitOutcome> {
  if (recorded.direction !== 'portal' || recorded.mailFrom !== mailbox.address) {
    throw new PortalWriteError('DRAFT_TAKEN', 'this form belongs to another message; open the form again');
  }
  // Published and its copy stored before (the copy was deleted since, or step 1 would have found it): sent.
  if ((await sentCopyReservationState(deps.pool, recorded.id)) === 'stored') {
    return { kind: 'sent', messageId: recorded.id, sentRowId: undefined, again: true };
  }
  const raw = await deps.blobStore.readAll(recorded.blob.ref);
  const envelope = portalEnvelope(deps, {
    id: recorded.id,
    traceId: recorded.traceId,
    sender: mailbox.address,
    recipients: recorded.recipients,
    blob: recorded.blob,
    client: input.client,
    receivedAt: recorded.receivedAt,
  });
  // Each attempt is recorded before its publish, as the first one is (message.submitted): the reaper collects a
  // message only when every attempt was surely refused (@smgw/trace, deleteAbandonedMessages), so a resend whose
  // publish went, or is on its way, keeps it.
  await recordEvent(deps.pool, recorded.id, {
    stage: STAGE,
    event: 'message.resubmitted',
    outcome: 'next',
    data: { mailboxId: mailbox.id },
    at: now,
  });
  messageLogger(deps.log, envelope).info(
    { code: 'PORTAL_SUBMIT_RESUMED' },
    'portal message sent again from its record',
  );
  return publishAndKeepCopy(deps, mailbox, envelope, raw, {
    subject: summarySubject(raw),
    attachments: countAttachments(raw),
    now,
  });
}

async function publishAndKeepCopy(
  deps: SubmitDeps,
  mailbox: Mailbox,
  envelope: Envelope,
  raw: Buffer,
  summary: { subject: string; attachments: number; now: Date },
): Promise<SubmitOutcome> {
  const log = messageLogger(deps.log, envelope);
  try {
    await deps.mq.publish(envelope);
  } catch (err) {
    const code = codeOf(err) ?? 'MQ_PUBLISH_FAILED';
    log.error({ code, err }, 'broker did not confirm the portal message; the user is asked to send it again');
    await recordEvent(deps.pool, envelope.id, {
      stage: STAGE,
      event: 'message.refused',
      outcome: 'retry',
      code,
      reason: `${(err as Error).message}; the portal user was told it was not sent`,
      // `none`: surely in no queue; `unknown`: the confirm was lost, it may have been taken (the reaper keeps it).
      data: { enqueued: surelyNotEnqueued(err) ? 'none' : 'unknown' },
    }).catch((e: unknown) => log.error({ code: 'TRACE_WRITE_FAILED', err: e }, 'cannot record message.refused'));
    return { kind: 'failed', code, reason: (err as Error).message };
  }

  const sentSummary: MessageSummary = {
    from: mailbox.address,
    to: envelope.recipients.join(', '),
    subject: summary.subject,
    date: new Date(envelope.receivedAt).toISOString(),
    attachments: summary.attachments,
  };
  const sentRowId = await withTransaction(deps.pool, async (db) => {
    const locked = await lockMailbox(db, mailbox.id);
    if (!locked) return undefined; // deleted meanwhile: the message went, there is nowhere to keep a copy
    // Only an open reservation takes a copy uncounted. After a copy was stored on it (and deleted since: its bytes
    // came back then) a resend stores none: another would stay uncounted and give its bytes back again when deleted,
    // so a user could hold any amount. After the reaper gave the bytes back (the draft's life ended while a resend
    // was on its way) the copy is stored only if its bytes fit again.
    const reservation = await sentCopyReservationState(db, envelope.id);
    if (reservation === 'stored') return undefined;
    if (reservation === 'abandoned') {
      const fits = await reserveMailboxUsage(db, {
        mailboxId: mailbox.id,
        bytes: raw.length,
        quotaBytes: deps.quotaBytes,
      });
      if (!fits) {
        log.warn({ code: 'QUOTA_EXCEEDED', size: raw.length }, 'portal message sent; no room left for its Sent copy');
        return undefined;
      }
    }
    const dataKey = await openMailboxKey(deps.mailboxKeys, locked);
    try {
      const id = await insertMailboxMessage(
        db,
        {
          mailboxId: mailbox.id,
          dataKey,
          folder: 'sent',
          messageId: envelope.id,
          recipient: mailbox.address,
          raw,
          receivedAt: summary.now,
          summary: sentSummary,
        },
        { usageReserved: true },
      );
      if (id) {
        await recordEvent(db, envelope.id, {
          stage: STAGE,
          event: 'message.sent-copy-stored',
          outcome: 'next',
          data: { mailboxId: mailbox.id, size: raw.length, usageBytes: locked.usageBytes },
          at: summary.now,
        });
      }
      return id;
    } finally {
      dataKey.fill(0);
    }
  });
  log.info(
    { code: 'PORTAL_MESSAGE_SENT', recipients: envelope.recipients.length, size: raw.length },
    'portal message sent',
  );
  return { kind: 'sent', messageId: envelope.id, sentRowId, again: false };
}

/**
 * The original of a reply: a message of this mailbox's own inbox (or trashed from it), read for its header (or the
 * header the caller read already, once the row is found to be one of those).
 */
async function originalOf(deps: SubmitDeps, mailbox: Mailbox, rowId: string, known: ReplyContext | undefined) {
  const row = await findMailboxMessage(deps.pool, mailbox.id, rowId);
  const fromInbox = row && (row.folder === 'inbox' || (row.folder === 'trash' && row.trashedFrom === 'inbox'));
  if (!row || !fromInbox) {
    throw new PortalWriteError('REPLY_ORIGINAL_NOT_FOUND', 'the message to reply to is not in this mailbox');
  }
  if (known) return known;
  const dataKey = await openMailboxKey(deps.mailboxKeys, mailbox);
  try {
    const raw = await readMailboxMessage(deps.pool, mailbox.id, dataKey, row.id);
    if (!raw) throw new PortalWriteError('REPLY_ORIGINAL_NOT_FOUND', 'the message to reply to is not in this mailbox');
    return readReplyContext(raw);
  } finally {
    dataKey.fill(0);
  }
}

/** A first look before anything is stored; the reservation in step 3 is the check that holds. */
function checkQuota(deps: SubmitDeps, mailbox: Mailbox, size: number): void {
  if (mailbox.usageBytes + size > deps.quotaBytes) throw quotaExceeded(size, deps.quotaBytes);
}

function quotaExceeded(size: number, quotaBytes: number): PortalWriteError {
  return new PortalWriteError('QUOTA_EXCEEDED', `the message (${size} bytes) does not fit into ${quotaBytes} bytes`);
}

/**
 * The Authentication-Results field deliver puts on top of the message (authentication-results.ts): the portal
 * user logged in, RFC 8601's `auth` method with the authenticated identity as smtp.auth. The address is normalised
 * printable ASCII (plainAddress), so the field holds nothing the user chose beyond it.
 */
export function portalAuthenticationResults(hostname: string, address: string): string {
  return `Authentication-Results: ${hostname};\r\n\tauth=pass (Messenger portal: user logged in) smtp.auth=${address}\r\n`;
}

function portalEnvelope(
  deps: SubmitDeps,
  message: {
    id: string;
    traceId?: string;
    sender: string;
    recipients: readonly string[];
    blob: Envelope['blob'];
    client: PortalSubmission['client'];
    receivedAt: Date;
  },
): Envelope {
  const envelope = newEnvelope({
    id: message.id,
    ...(message.traceId ? { traceId: message.traceId } : {}),
    receivedAt: message.receivedAt,
    direction: 'portal',
    mailFrom: message.sender,
    recipients: message.recipients,
    client: {
      listener: 'portal',
      ip: message.client.ip,
      helo: 'portal',
      user: message.sender,
      tls: message.client.tls,
    },
    blob: message.blob,
    author: message.sender,
    // No delivery status notifications: a DSN goes by plain mail over the internet and quotes the header block,
    // subject included; what became of the message the user sees in the portal (recipient states of the trace).
    dsn: { notify: Object.fromEntries(message.recipients.map((r) => [r, ['NEVER' as const]])) },
  });
  return withVerdict(envelope, 'auth', {
    status: 'pass',
    at: message.receivedAt.toISOString(),
    method: 'portal-login',
    user: message.sender,
    field: portalAuthenticationResults(deps.hostname, message.sender),
  });
}

/** The subject as composed (decoded), for the Sent folder's summary. */
function summarySubject(raw: Buffer): string {
  return readReplyContext(raw).subject;
}

/** How many attachment parts a composed message has (for a resumed one, whose input is not at hand). */
function countAttachments(raw: Buffer): number {
  return (raw.toString('latin1').match(/^Content-Disposition: attachment/gim) ?? []).length;
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : undefined;
}
