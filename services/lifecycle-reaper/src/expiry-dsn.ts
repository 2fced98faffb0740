// The DSN (RFC 3464) to the sender of a message the parked sweep gives up (SMGW_PARKED_ACTION=remove): the gateway
// answered 250 for it, so it may not vanish without word (RFC 5321 §6.1). Recorded in the transaction that bounces
// the recipients (expireParkedMessages' onExpiring), into the reaper's notice outbox, published after the commit.
//
// What it may carry follows deliver's rules (services/deliver/README.md, "What a DSN may quote"), with less to go on:
// the parked envelope waits in the broker, the reaper knows only the trace. So it quotes at most the identifying
// fields of the header block of the message as ingest received it (what the sender sent), never the whole message (RET=FULL is
// not honoured: whether the sender speaks for an agency, and what the envelope's blob had become, is not known here),
// and per recipient only the status and our code (no stage's error text, no host). No DSN for the null sender, for
// portal mail (it asks for none: NOTIFY=NEVER; the portal shows the recipients' states), nor for a recipient whose
// NOTIFY excludes FAILURE.
import type { BlobStore } from '@smgw/blob-store';
import type { PoolClient } from '@smgw/db';
import { dsnParameterOf, type Envelope, failureDsnAsked, newMessageId } from '@smgw/envelope';
import {
  type BilingualTemplates,
  bilingualText,
  deliveryReportMail,
  type GeneratedMail,
  identifyingFields,
  messageIdOf,
  oneLine,
  readHeaderBlock,
  renderTemplate,
} from '@smgw/mime';
import type { Logger } from '@smgw/observability';
import type { ExpiringMessage } from '@smgw/trace';
import { mailTime } from './inactivity.ts';
import { type ReaperTemplates, recordNotice, storeMail } from './notices.ts';

/**
 * RFC 3463 X.4.7 "delivery time expired", class 4: "persistence of some temporary condition has caused abandonment"
 * (the message itself is not at fault; sent again it may well go through). With `Action: failed`, as deliver's DSN
 * after its retry period.
 */
export const EXPIRED_STATUS = '4.4.7';

/** Why no DSN is sent (the `dsn` of the `envelope.expired` event's data). */
export type NoDsnReason = 'null-sender' | 'portal' | 'generated' | 'notify';

export type ExpiryDsnPlan = { send: true; recipients: string[] } | { send: false; reason: NoDsnReason };

/** Whether the sender gets a DSN about the given-up message, and for which of the recipients it bounced. */
export function planExpiryDsn(message: ExpiringMessage): ExpiryDsnPlan {
  if (message.mailFrom === '') return { send: false, reason: 'null-sender' };
  const direction = message.parked.data?.direction ?? message.direction;
  if (direction === 'portal') return { send: false, reason: 'portal' };
  if (direction === 'generated') return { send: false, reason: 'generated' };
  // A parked event written before it kept the DSN request (no data) counts as no NOTIFY: a DSN (RFC 3461).
  const request = message.parked.data?.dsn ?? undefined;
  const recipients = message.bounced.filter((recipient) => failureDsnAsked(request, recipient));
  return recipients.length > 0 ? { send: true, recipients } : { send: false, reason: 'notify' };
}

export interface ExpiryDsnInput {
  message: ExpiringMessage;
  recipients: readonly string[];
  /** SMGW_HOSTNAME: Reporting-MTA and the domain of the DSN's Message-ID. */
  reportingMta: string;
  /** Gateway id of the DSN itself. */
  dsnMessageId: string;
  now: Date;
  /** The header block of the message as ingest received it, or undefined to quote nothing. */
  receivedHeaders: Buffer | undefined;
  templates: BilingualTemplates;
}

/** The DSN as a MIME tree (multipart/report): text, message/delivery-status, and the received header block if any. */
export function buildExpiryDsn(input: ExpiryDsnInput): GeneratedMail {
  const { message } = input;
  if (message.mailFrom === '') throw new Error('a null-sender message never gets a DSN');
  if (input.recipients.length === 0) throw new Error('a DSN needs at least one failed recipient');
  const dsn = message.parked.data?.dsn ?? undefined;
  const values = {
    hostname: input.reportingMta,
    messageId: message.messageId,
    arrivalDate: mailTime(message.receivedAt),
    parkedSince: mailTime(message.parked.parkedAt),
    // Each on one line (oneLine), as deliver and scan write theirs: the recipients are plain addresses by ingest's
    // rule (no line breaks or control characters), and a line of the text is not where that rule should first fail.
    recipients: input.recipients.map((r) => `  <${oneLine(r)}>`).join('\n'),
  };
  const { templates } = input;
  return deliveryReportMail({
    headers: {
      fromName: templates.from,
      hostname: input.reportingMta,
      to: message.mailFrom,
      subject: renderTemplate(templates.subject, values),
      date: input.now,
      messageId: input.dsnMessageId,
      inReplyTo: input.receivedHeaders ? messageIdOf(input.receivedHeaders) : undefined,
      extra: [['X-SMGW-Related-Message-Id', message.messageId]],
    },
    text: bilingualText(
      renderTemplate(templates.de, values),
      renderTemplate(templates.en, values),
      templates.separator,
    ),
    status: {
      reportingMta: input.reportingMta,
      envelopeId: dsn?.envid,
      messageId: message.messageId,
      arrivedAt: message.receivedAt,
      recipients: input.recipients.map((recipient) => ({
        recipient,
        originalRecipient: dsnParameterOf(dsn?.orcpt, recipient),
        status: EXPIRED_STATUS,
        diagnostic: { type: 'X-SMGW' as const, text: 'PARKED_EXPIRED' },
        lastAttemptAt: message.parked.parkedAt,
      })),
    },
    original: input.receivedHeaders ? { headers: input.receivedHeaders } : undefined,
  });
}

export interface ExpiryDsnDeps {
  blobStore: BlobStore;
  templates: ReaperTemplates;
  hostname: string;
  log: Logger;
}

/**
 * Makes the DSN about a message being given up and records it in the notice outbox, in the expiry's transaction
 * (`db`). Returns its envelope (to publish once that commits), and what the `envelope.expired` event says of it.
 */
export async function recordExpiryDsn(
  deps: ExpiryDsnDeps,
  db: PoolClient,
  message: ExpiringMessage,
  now: Date,
): Promise<{ envelope: Envelope | undefined; data: Record<string, unknown> }> {
  const plan = planExpiryDsn(message);
  if (!plan.send) return { envelope: undefined, data: { dsn: { sent: false, reason: plan.reason } } };
  const receivedHeaders = await readReceivedHeaders(deps, message);
  const id = newMessageId(now.getTime());
  const mail = buildExpiryDsn({
    message,
    recipients: plan.recipients,
    reportingMta: deps.hostname,
    dsnMessageId: id,
    now,
    receivedHeaders,
    templates: deps.templates['parked-expired-dsn'],
  });
  const envelope = await storeMail(deps, id, mail, {
    to: message.mailFrom,
    traceId: message.traceId,
    relatesTo: message.messageId,
    now,
  });
  await recordNotice(db, envelope, 'parked-expired-dsn', now, { recipients: plan.recipients });
  return {
    envelope,
    data: { dsn: { sent: true, messageId: id, recipients: plan.recipients, headersQuoted: !!receivedHeaders } },
  };
}

/**
 * The fields that identify the message (identifyingFields of @smgw/mime) of its header block as ingest received it:
 * the sender of mail from the internet may be forged, and the whole block is up to 64 KiB of text a stranger chose,
 * sent to its victim in our name. Undefined when that blob is not known (the message row
 * names another) or cannot be read (purged, its key retired, kept in files this process cannot read): the DSN then
 * goes without it, which is still the truth, rather than not at all.
 */
async function readReceivedHeaders(deps: ExpiryDsnDeps, message: ExpiringMessage): Promise<Buffer | undefined> {
  if (!message.receivedBlob) return undefined;
  try {
    return identifyingFields(await readHeaderBlock(deps.blobStore.open(message.receivedBlob)));
  } catch (err) {
    deps.log.warn(
      { code: 'REAPER_DSN_NO_HEADERS', messageId: message.messageId, err },
      'the header block of a given-up message cannot be read; its DSN goes without it',
    );
    return undefined;
  }
}
