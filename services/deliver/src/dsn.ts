// Delivery status notifications (RFC 3464): multipart/report with a German and English text part, the
// machine-readable message/delivery-status part, and the original's headers (or, only where allowed, all of it).
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { inDomains } from '@smgw/config';
import { type BlobRef, dsnParameterOf, type Envelope, failureDsnAsked, leavesClosedNetwork } from '@smgw/envelope';
import {
  type Bilingual,
  type BilingualTemplates,
  bilingualText,
  type DeliveryStatus,
  deliveryReportMail,
  type GeneratedMail,
  headerFieldValue,
  loadBilingualTemplates,
  messageIdOf,
  oneLine,
  renderTemplate,
  rfc5322Date,
} from '@smgw/mime';
import type { OwnFailureReason } from './bounce-classification.ts';

export const TEMPLATES_DIR = fileURLToPath(new URL('../templates/', import.meta.url));

/** The phrase a DSN gives per recipient: refused by the next hop, retry period over, or deliver's own (OwnFailureReason). */
export type FailureReason = 'rejected' | 'expired' | OwnFailureReason;

export interface FailedRecipient {
  recipient: string;
  reason: FailureReason;
  /** RFC 3463 status, e.g. 5.1.1 (or the last temporary status when the retry period expired). */
  status: string;
  /** The host that answered (or was tried last). */
  remoteMta?: string | undefined;
  /** The last SMTP reply of the next hop, if it answered. */
  reply?: string | undefined;
  /** What went wrong when there was no reply (connection refused, timeout). */
  error?: string | undefined;
  lastAttemptAt: Date;
}

export interface DsnTemplates extends BilingualTemplates {
  reasons: Record<FailureReason, Bilingual>;
  lastReply: Bilingual;
}

export function loadDsnTemplates(dir: string = TEMPLATES_DIR): Promise<DsnTemplates> {
  return loadBilingualTemplates<DsnTemplates>(dir, 'dsn');
}

export interface DsnInput {
  original: Envelope;
  failures: FailedRecipient[];
  /** SMGW_HOSTNAME: Reporting-MTA and the domain of the DSN's Message-ID. */
  reportingMta: string;
  /** Gateway id of the DSN itself. */
  dsnMessageId: string;
  now: Date;
  /** The header block of what the DSN may quote (dsnDisclosure), or undefined to quote nothing. */
  originalHeaders: Buffer | undefined;
  /** The whole original, only when dsnDisclosure allows it. */
  fullOriginal?: Readable | undefined;
  templates: DsnTemplates;
}

/** RFC 3461: no NOTIFY means FAILURE; NEVER, or a list without FAILURE, means no failure DSN. Never bounce a bounce. */
export function dsnWanted(envelope: Envelope, recipient: string): boolean {
  return envelope.mailFrom !== '' && failureDsnAsked(envelope.dsn, recipient);
}

/** RET=FULL is honoured only for mail that stays inside (internal) and goes back to an agency sender. */
export function mayReturnFullContent(envelope: Envelope, internalDomains: string[]): boolean {
  return envelope.dsn?.ret === 'FULL' && envelope.direction === 'internal' && fromAgency(envelope, internalDomains);
}

/**
 * Whether the envelope sender speaks for an agency: an agency address, on mail that did not come from the internet.
 * On the MX port nobody authenticated the sender; an agency address there (SMGW_MX_AGENCY_SENDER_EXCEPTIONS) is
 * typically one that sends from outside, and so may have its bounces forwarded outside too.
 */
function fromAgency(envelope: Envelope, internalDomains: string[]): boolean {
  return envelope.direction !== 'inbound' && envelope.mailFrom !== '' && inDomains(envelope.mailFrom, internalDomains);
}

/** Crypto verdicts of a message whose blob the gateway rewrote (encrypt's inbound decryption). */
const REWRITTEN_CRYPTO_STATUSES: readonly string[] = ['decrypted', 'not-decrypted'];

export interface DsnDisclosure {
  /** The message whose header block (or, with fullContent, whole content) the DSN quotes; undefined: nothing. */
  quote: BlobRef | undefined;
  /** RET=FULL honoured: the whole message goes back, not only its header block. */
  fullContent: boolean;
  /** Per recipient only the status codes: not the next hop's reply text, our error text or the host's name. */
  statusOnly: boolean;
  /** Of the quoted header block only the fields that identify the message (identifyingFields of @smgw/mime). */
  identifyingOnly: boolean;
}

/**
 * Whether the gateway changed the message for a sender outside the agencies (decrypted it, or tried to): the next hop
 * then gets NOTIFY=NEVER (dsnParametersFor), for its notices would quote what the gateway made of it.
 */
function changedForOutsider(envelope: Envelope, internalDomains: string[]): boolean {
  return !fromAgency(envelope, internalDomains) && changedByGateway(envelope);
}

/**
 * What a DSN about `envelope` may carry, by who gets it (the envelope sender). An agency sender (fromAgency: never
 * the sender of mail from the internet) gets the message as it was sent on, with the whole of it for RET=FULL where
 * mayReturnFullContent allows. Anyone else gets only what they sent us, as ingest received it (`receivedBlob`):
 * never a byte of decrypted content, never our own header fields (X-SMGW-Decrypted and X-SMGW-Decryption would tell
 * whether their ciphertext opened). And per recipient only the status: such a DSN is about mail to an agency, so
 * the host that refused it is the agencies' relay (a host name or address of the closed network), its reply text
 * may name internal aliases or mailboxes, or quote the content as the gateway changed it, and our own error text
 * names the relay's address (connect ECONNREFUSED 10.0.0.5:25). Of the header block only the fields that identify
 * the message: the sender may be forged, and the rest is up to 64 KiB of text of a stranger's choosing (bounce spam).
 */
export function dsnDisclosure(envelope: Envelope, internalDomains: string[]): DsnDisclosure {
  if (fromAgency(envelope, internalDomains)) {
    return {
      quote: envelope.blob,
      fullContent: mayReturnFullContent(envelope, internalDomains),
      statusOnly: false,
      identifyingOnly: false,
    };
  }
  // An envelope from before receivedBlob existed that was changed: its original is not known, so nothing is quoted.
  const quote = envelope.receivedBlob ?? (changedByGateway(envelope) ? undefined : envelope.blob);
  return { quote, fullContent: false, statusOnly: true, identifyingOnly: true };
}

function changedByGateway(envelope: Envelope): boolean {
  if (envelope.receivedBlob && envelope.receivedBlob.ref !== envelope.blob.ref) return true;
  return REWRITTEN_CRYPTO_STATUSES.includes(envelope.verdicts.crypto?.status ?? '');
}

/** A failure reduced to what dsnDisclosure's statusOnly allows. */
export function statusOnlyFailure(failure: FailedRecipient): FailedRecipient {
  const { recipient, reason, status, lastAttemptAt } = failure;
  return { recipient, reason, status, lastAttemptAt };
}

function failureLines(failures: FailedRecipient[], templates: DsnTemplates, lang: 'de' | 'en'): string {
  return failures
    .map((f) => {
      // One line: a recipient deliver refused as not one plain address may hold anything.
      const lines = [`  <${oneLine(f.recipient)}>`, `    ${templates.reasons[f.reason][lang]}`];
      const last = f.reply ?? f.error;
      if (last) lines.push(`    ${templates.lastReply[lang]}: ${headerFieldValue(last, 300)}`);
      return lines.join('\n');
    })
    .join('\n\n');
}

function humanText(input: DsnInput): string {
  const values = {
    reportingMta: input.reportingMta,
    arrivalDate: rfc5322Date(new Date(input.original.receivedAt)),
    messageId: input.original.id,
  };
  const text = (lang: 'de' | 'en') =>
    renderTemplate(input.templates[lang], { ...values, failures: failureLines(input.failures, input.templates, lang) });
  return bilingualText(text('de'), text('en'), input.templates.separator);
}

/** The message/delivery-status report of a DSN (@smgw/mime writes it, as for the mailbox's and the reaper's DSNs). */
function deliveryStatusOf(input: DsnInput): DeliveryStatus {
  const { original } = input;
  return {
    reportingMta: input.reportingMta,
    envelopeId: original.dsn?.envid,
    messageId: original.id,
    arrivedAt: new Date(original.receivedAt),
    recipients: input.failures.map((f) => ({
      recipient: f.recipient,
      originalRecipient: dsnParameterOf(original.dsn?.orcpt, f.recipient),
      status: f.status,
      remoteMta: f.remoteMta,
      diagnostic: f.reply
        ? { type: 'smtp' as const, text: f.reply }
        : f.error
          ? { type: 'X-SMGW' as const, text: f.error }
          : undefined,
      lastAttemptAt: f.lastAttemptAt,
    })),
  };
}

/** The DSN as a MIME tree; stream it with `.createReadStream()`. */
export function buildDsn(input: DsnInput): GeneratedMail {
  if (input.original.mailFrom === '') throw new Error('a null-sender message never gets a DSN');
  if (input.failures.length === 0) throw new Error('a DSN needs at least one failed recipient');
  return deliveryReportMail({
    headers: {
      fromName: input.templates.from,
      hostname: input.reportingMta,
      to: input.original.mailFrom,
      subject: input.templates.subject,
      date: input.now,
      messageId: input.dsnMessageId,
      inReplyTo: input.originalHeaders ? messageIdOf(input.originalHeaders) : undefined,
    },
    text: humanText(input),
    status: deliveryStatusOf(input),
    original: input.fullOriginal
      ? { full: input.fullOriginal }
      : input.originalHeaders
        ? { headers: input.originalHeaders }
        : undefined,
  });
}

/**
 * DSN parameters to pass on to the next hop (RFC 3461 relaying) for one transaction. nodemailer applies one
 * NOTIFY/ORCPT to every recipient (LIBRARY-NOTES §6): NOTIFY goes only when the group agrees on it, ORCPT only
 * for a single recipient. RET and ENVID are per message. Mail for the outside carries RET and NOTIFY only.
 *
 * A message the gateway changed (decrypted) from a sender outside the agencies goes on with NOTIFY=NEVER, whatever
 * was asked: the next hop's notices (RET=FULL, NOTIFY=SUCCESS, or a later bounce, which quotes the message by
 * default) would carry the decrypted content to whoever sent the ciphertext, so anyone who captured one could have
 * it opened by resending it. Such a sender hears of failures only from us (dsnDisclosure: status only). A next hop
 * that does not offer DSN gets no parameters (nodemailer drops them); its bounces have the null sender, which the
 * submission port refuses, so they do not leave the agencies through the gateway either.
 */
export function dsnParametersFor(
  envelope: Envelope,
  recipients: string[],
  internalDomains: string[],
): { ret?: string; envid?: string; notify?: string[]; orcpt?: string } | undefined {
  if (changedForOutsider(envelope, internalDomains)) return { notify: ['NEVER'] };
  const request = envelope.dsn;
  if (!request) return undefined;
  // ENVID (up to 100 characters the agency's client chose) and ORCPT (an address as the agency wrote it: an internal
  // alias or list) are the sender's words in clear: they stay inside the closed network.
  const outside = leavesClosedNetwork(envelope);
  const out: { ret?: string; envid?: string; notify?: string[]; orcpt?: string } = {};
  if (request.ret) out.ret = request.ret;
  if (request.envid && !outside) out.envid = request.envid;
  const notifies = recipients.map((r) => dsnParameterOf(request.notify, r));
  const first = notifies[0];
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((x) => b.includes(x));
  if (first && notifies.every((n) => n !== undefined && same(n, first))) out.notify = [...first];
  const only = recipients.length === 1 && !outside ? recipients[0] : undefined;
  const orcpt = only ? dsnParameterOf(request.orcpt, only) : undefined;
  if (orcpt) out.orcpt = orcpt.includes(';') ? orcpt : `rfc822;${orcpt}`;
  return Object.keys(out).length > 0 ? out : undefined;
}
