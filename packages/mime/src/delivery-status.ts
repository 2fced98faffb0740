// The text the gateway writes into generated mail about a message (DSNs, notices): header-field values made safe,
// and the message/delivery-status body of RFC 3464 (§2.2 per-message fields, §2.3 one block per recipient). One
// writer for deliver's DSNs and the mailbox's over-quota DSN.
import { crlfLines } from './line-endings.ts';
import { rfc5322Date } from './rfc5322-date.ts';

/** A value safe for one header field line: no line breaks or control characters, ASCII only, bounded. */
export function headerFieldValue(text: string, maxLength = 900): string {
  const clean = text
    .replace(/[\r\n\t]+/g, ' ')
    // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
    .replace(/[\x00-\x1f\x7f]/g, '')
    .replace(/[^\x20-\x7e]/g, '?')
    .trim();
  return clean.length > maxLength ? `${clean.slice(0, maxLength - 3)}...` : clean;
}

/** One line of printable text for a mail body (non-ASCII kept), bounded: addresses and names come from outside. */
export function oneLine(text: string, max = 300): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
  const clean = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return clean.length > max ? `${clean.slice(0, max - 3)}...` : clean;
}

/** RFC 3461 §4.4: an ENVID is at most 100 characters. */
export const MAX_ENVID_LENGTH = 100;

/** RFC 3461 §4.2: the address of an ORCPT is at most 500 characters. */
export const MAX_ORCPT_ADDRESS_LENGTH = 500;

/** An ORCPT's addr-type (RFC 3461 §4.2): an atom, as the registered ones are (`rfc822`, `utf-8`), short. */
const ORCPT_ADDRESS_TYPE = /^[A-Za-z0-9][A-Za-z0-9-]{0,19}$/;

export interface DeliveryStatusRecipient {
  recipient: string;
  /** ORCPT as the client gave it (`rfc822;addr` or a bare address). */
  originalRecipient?: string | undefined;
  /** RFC 3463 status, e.g. 5.1.1. */
  status: string;
  remoteMta?: string | undefined;
  /** `smtp; <reply>` when the next hop answered, else `X-SMGW; <code or error>`. */
  diagnostic?: { type: 'smtp' | 'X-SMGW'; text: string } | undefined;
  lastAttemptAt?: Date | undefined;
}

export interface DeliveryStatus {
  reportingMta: string;
  envelopeId?: string | undefined;
  /** The gateway message id the report is about. */
  messageId: string;
  arrivedAt: Date;
  recipients: readonly DeliveryStatusRecipient[];
}

/** The message/delivery-status body (every recipient failed: `Action: failed`). */
export function deliveryStatusBody(report: DeliveryStatus): string {
  const perMessage = [`Reporting-MTA: dns; ${headerFieldValue(report.reportingMta)}`];
  // An ENVID longer than RFC 3461 allows is not one a conforming client chose to find its message by, and the DSN
  // may go to whatever address a stranger named in MAIL FROM: its text (up to 900 characters) is not echoed there.
  const envid = report.envelopeId ? headerFieldValue(report.envelopeId, Number.POSITIVE_INFINITY) : '';
  if (envid !== '' && envid.length <= MAX_ENVID_LENGTH) perMessage.push(`Original-Envelope-Id: ${envid}`);
  perMessage.push(`X-SMGW-Message-Id: ${report.messageId}`);
  perMessage.push(`Arrival-Date: ${rfc5322Date(report.arrivedAt)}`);
  const blocks = [crlfLines(perMessage)];
  for (const r of report.recipients) {
    const lines = [`Final-Recipient: rfc822; ${headerFieldValue(r.recipient)}`];
    const orcpt = originalRecipientField(r.originalRecipient);
    if (orcpt) lines.push(`Original-Recipient: ${orcpt}`);
    lines.push('Action: failed', `Status: ${r.status}`);
    if (r.remoteMta) lines.push(`Remote-MTA: dns; ${headerFieldValue(r.remoteMta)}`);
    if (r.diagnostic) lines.push(`Diagnostic-Code: ${r.diagnostic.type}; ${headerFieldValue(r.diagnostic.text)}`);
    if (r.lastAttemptAt) lines.push(`Last-Attempt-Date: ${rfc5322Date(r.lastAttemptAt)}`);
    blocks.push(crlfLines(lines));
  }
  return blocks.join('\r\n');
}

/**
 * The Original-Recipient value of an ORCPT (`type;address`, or a bare address as rfc822), or undefined. An ORCPT whose
 * address is longer than RFC 3461 allows, or whose type is no short atom, is not one a conforming client chose to find
 * its recipient by, and the DSN may go to whatever address a stranger named in MAIL FROM: its text (up to 900
 * characters) is not echoed there, as for the ENVID.
 */
function originalRecipientField(orcpt: string | undefined): string | undefined {
  if (!orcpt) return undefined;
  const semicolon = orcpt.indexOf(';');
  const type = semicolon < 0 ? 'rfc822' : orcpt.slice(0, semicolon).trim();
  const address = headerFieldValue(semicolon < 0 ? orcpt : orcpt.slice(semicolon + 1), Number.POSITIVE_INFINITY);
  if (!ORCPT_ADDRESS_TYPE.test(type) || address === '' || address.length > MAX_ORCPT_ADDRESS_LENGTH) return undefined;
  return `${type}; ${address}`;
}
