// The gateway's own mail (delivery status notifications, virus notices): the header fields every one of them carries,
// German then English text from template files, as a nodemailer MimeNode tree. MimeNode rather than MailComposer:
// MailComposer always makes multipart/mixed and cannot express multipart/report (zone-mta builds its bounces the same
// way, plugins/core/email-bounce.js). MimeNode encodes non-ASCII header values itself (RFC 2047).
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import MimeNode from 'nodemailer/lib/mime-node';
import { type DeliveryStatus, deliveryStatusBody } from './delivery-status.ts';
import { toCrlf } from './line-endings.ts';
import { rfc5322Date } from './rfc5322-date.ts';

/** A MIME tree; stream it with `.createReadStream()`. */
export type GeneratedMail = MimeNode;

export type Bilingual = { de: string; en: string };

/** What every generated mail's templates hold; a kind of mail adds its own phrases in its JSON file. */
export interface BilingualTemplates {
  /** The German text (`<name>.de.txt`), with {{placeholders}}. */
  de: string;
  /** The English text (`<name>.en.txt`). */
  en: string;
  subject: string;
  /** Display name of the sender. */
  from: string;
  /** The line between the German and the English text. */
  separator: string;
}

/** Reads `<dir>/<name>.de.txt`, `<dir>/<name>.en.txt` and the rest from `<dir>/<name>.json`. */
export async function loadBilingualTemplates<T extends BilingualTemplates>(dir: string, name: string): Promise<T> {
  const [de, en, json] = await Promise.all([
    readFile(`${dir}/${name}.de.txt`, 'utf8'),
    readFile(`${dir}/${name}.en.txt`, 'utf8'),
    readFile(`${dir}/${name}.json`, 'utf8'),
  ]);
  return { de, en, ...(JSON.parse(json) as Omit<T, 'de' | 'en'>) } as T;
}

/** Fills {{name}} placeholders; an unknown one is left as it is. */
export function renderTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (whole, name: string) => values[name] ?? whole);
}

/** The German text, the separator, the English text; CRLF line ends. */
export function bilingualText(de: string, en: string, separator: string): string {
  return toCrlf(`${de.trimEnd()}\n\n${separator}\n\n${en.trimEnd()}\n`);
}

export interface GeneratedMailHeaders {
  /** Display name of MAILER-DAEMON@hostname. */
  fromName: string;
  /** SMGW_HOSTNAME: the domain of the sender and of the Message-ID. */
  hostname: string;
  to: string;
  subject: string;
  date: Date;
  /** Gateway id of the generated mail itself. */
  messageId: string;
  /** RFC 3834: `auto-replied` for an answer to a message (a DSN), `auto-generated` otherwise. */
  autoSubmitted: 'auto-replied' | 'auto-generated';
  /** Message-ID of the message this answers, for In-Reply-To and References. */
  inReplyTo?: string | undefined;
  /** Further fields, written after the others. */
  extra?: ReadonlyArray<readonly [string, string]>;
}

/**
 * The root of a generated mail with its header fields set: From, To, Subject, Date, Message-ID, Auto-Submitted (so
 * that auto-responders do not answer it), In-Reply-To and References, then `extra`. Add the content or the parts.
 */
export function generatedMail(contentType: string, headers: GeneratedMailHeaders): GeneratedMail {
  const root = new MimeNode(contentType);
  root.setHeader('From', { name: headers.fromName, address: `MAILER-DAEMON@${headers.hostname}` });
  root.setHeader('To', headers.to);
  root.setHeader('Subject', headers.subject);
  root.setHeader('Date', rfc5322Date(headers.date));
  root.setHeader('Message-ID', `<${headers.messageId}@${headers.hostname}>`);
  root.setHeader('Auto-Submitted', headers.autoSubmitted);
  if (headers.inReplyTo) {
    root.setHeader('In-Reply-To', headers.inReplyTo);
    root.setHeader('References', headers.inReplyTo);
  }
  for (const [name, value] of headers.extra ?? []) root.setHeader(name, value);
  return root;
}

export interface BilingualNoticeInput {
  to: string;
  /** Placeholders of the templates (subject, German and English text); `hostname` is added. */
  values: Record<string, string>;
  hostname: string;
  date: Date;
  /** Gateway id of the mail itself. */
  messageId: string;
  /** The message the mail is about: X-SMGW-Related-Message-Id. */
  relatesTo?: string | undefined;
}

/**
 * A plain-text notice of the gateway (auto-generated): the subject and German-then-English text of `templates`
 * with the placeholders filled. The mailbox stage's and the reaper's notices are made with it.
 */
export function bilingualNoticeMail(templates: BilingualTemplates, input: BilingualNoticeInput): GeneratedMail {
  const values = { ...input.values, hostname: input.hostname };
  const root = generatedMail('text/plain; charset=utf-8', {
    fromName: templates.from,
    hostname: input.hostname,
    to: input.to,
    subject: renderTemplate(templates.subject, values),
    date: input.date,
    messageId: input.messageId,
    autoSubmitted: 'auto-generated',
    extra: input.relatesTo ? [['X-SMGW-Related-Message-Id', input.relatesTo]] : [],
  });
  root.setContent(
    bilingualText(renderTemplate(templates.de, values), renderTemplate(templates.en, values), templates.separator),
  );
  return root;
}

export interface DeliveryReportInput {
  /** The header fields; a DSN answers a message, so it is always `auto-replied` (RFC 3834). */
  headers: Omit<GeneratedMailHeaders, 'autoSubmitted'>;
  /** The text for people (bilingualText). */
  text: string;
  /** The machine-readable part. */
  status: DeliveryStatus;
  /**
   * What of the original is quoted: its header block (text/rfc822-headers), the whole message as it was sent
   * (message/rfc822, only where the caller may disclose it), or nothing.
   */
  original?: { headers: Buffer | string } | { full: Buffer | string | Readable } | undefined;
}

/**
 * A delivery status notification (RFC 3464): multipart/report with the text, the message/delivery-status part and the
 * quoted original if any. Deliver's bounces, the mailbox's over-quota DSN and the reaper's expiry DSN are made with it.
 */
export function deliveryReportMail(input: DeliveryReportInput): GeneratedMail {
  const root = generatedMail('multipart/report; report-type=delivery-status', {
    ...input.headers,
    autoSubmitted: 'auto-replied',
  });
  root.createChild('text/plain; charset=utf-8').setContent(input.text);
  root.createChild('message/delivery-status').setContent(deliveryStatusBody(input.status));
  const original = input.original;
  if (original && 'full' in original) {
    // The original as it was sent (8bit: it may hold 8-bit text; it is not re-encoded).
    root.createChild('message/rfc822').setHeader('Content-Transfer-Encoding', '8bit').setContent(original.full);
  } else if (original) {
    root.createChild('text/rfc822-headers').setContent(original.headers);
  }
  return root;
}
