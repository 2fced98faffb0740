// The message a portal user writes, as the gateway builds it (nodemailer's MailComposer). What the user typed is only
// ever content: the recipients are chosen from allowed lists (recipients.ts), the subject is one line, the text is
// the body of a text/plain part, attachments are base64 parts with a cleaned file name and a content type from our
// own table. Every header field (From, To, Date, Message-ID, In-Reply-To, References) is written by the gateway, so
// nothing a user types can become a header field in the gateway's name (X-SMGW-*, Authentication-Results, Received).
import { extname } from 'node:path';
import { displayText, encodeWords, rfc5322Date } from '@smgw/mime';
import MailComposer from 'nodemailer/lib/mail-composer';
import { MAX_FILENAME_CHARS, safeFilename } from './attachment-names.ts';
import { PortalWriteError } from './errors.ts';

export { MAX_FILENAME_CHARS };

/** A subject longer than this is refused (RFC 5322 §2.1.1 suggests 78 per line; the field is folded). */
export const MAX_SUBJECT_CHARS = 250;
/** The text is refused beyond this many characters (the upload limit bounds the whole message as well). */
export const MAX_TEXT_CHARS = 1_000_000;
export const MAX_ATTACHMENTS = 20;

/**
 * Content types by file extension: what the agencies' clients get to see for the usual documents. An extension not
 * here is sent as application/octet-stream. Whatever type the browser claimed is ignored (it is user input).
 */
export const ATTACHMENT_TYPES: Readonly<Record<string, string>> = {
  '.pdf': 'application/pdf',
  '.txt': 'text/plain',
  '.csv': 'text/csv',
  '.xml': 'application/xml',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.odt': 'application/vnd.oasis.opendocument.text',
  '.ods': 'application/vnd.oasis.opendocument.spreadsheet',
  '.doc': 'application/msword',
  '.xls': 'application/vnd.ms-excel',
  '.docx': 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  '.xlsx': 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  '.zip': 'application/zip',
  // Signed documents (CAdES): the agency's signature verification (issue 10) looks at them.
  '.p7s': 'application/pkcs7-signature',
  '.p7m': 'application/pkcs7-mime',
};

export const FALLBACK_ATTACHMENT_TYPE = 'application/octet-stream';

export interface PortalAttachment {
  /** The file name as the browser sent it (user input: cleaned by sanitizeFilename). */
  filename: string;
  content: Buffer;
}

export interface ReplyReference {
  /** The original's Message-ID, with angle brackets. */
  messageId: string;
  /** The original's References (ids with angle brackets), oldest first. */
  references: string[];
}

export interface PortalComposition {
  /** The portal user's address (the mailbox's own): the From of the message. */
  from: string;
  /** Agency addresses, already allowed by decidePortalRecipients. */
  to: readonly string[];
  subject: string;
  text: string;
  attachments: readonly PortalAttachment[];
  /** For a reply: In-Reply-To and References. */
  replyTo?: ReplyReference | undefined;
  /** The gateway id; the Message-ID is <id@hostname>. */
  messageId: string;
  hostname: string;
  date: Date;
}

// Line breaks anywhere, and NUL, make a subject no subject: refused with a clear message. Other control characters,
// bidi formatting and zero-width characters are dropped (displayText of @smgw/mime, the list the portal shows with).
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
const LINE_BREAK_OR_NUL = /[\r\n\x00\u0085\u2028\u2029]/;

/** The subject as it goes into the message: one line, trimmed, length-limited. Throws PortalWriteError. */
export function checkSubject(subject: string): string {
  if (LINE_BREAK_OR_NUL.test(subject)) {
    throw new PortalWriteError('SUBJECT_LINE_BREAK', 'the subject must be one line');
  }
  const clean = displayText(subject);
  if (clean === '') throw new PortalWriteError('SUBJECT_MISSING', 'the message needs a subject');
  if ([...clean].length > MAX_SUBJECT_CHARS) {
    throw new PortalWriteError('SUBJECT_TOO_LONG', `the subject may have at most ${MAX_SUBJECT_CHARS} characters`);
  }
  return clean;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
const TEXT_CONTROLS = /[\x00-\x08\x0b-\x1f\x7f]/g;

/** The text with CRLF line ends, without NUL and other control characters (tabs stay). */
export function cleanText(text: string): string {
  const clean = text.normalize('NFC').replace(/\r\n?/g, '\n').replace(TEXT_CONTROLS, '');
  if (clean.length > MAX_TEXT_CHARS) {
    throw new PortalWriteError('TEXT_TOO_LONG', `the text may have at most ${MAX_TEXT_CHARS} characters`);
  }
  return clean.replace(/\n/g, '\r\n');
}

/**
 * A file name safe to show and to save: the last path segment only, cleaned as the portal cleans the names it serves
 * (safeFilename of attachment-names.ts: no control, bidi or zero-width characters, blank look-alikes and white space
 * runs one space, none of `\ / : * ? " < > |`, no leading or trailing dots and spaces, no reserved device name, at
 * most MAX_FILENAME_CHARS characters with the extension kept); "anhang" when nothing is left.
 */
export function sanitizeFilename(name: string): string {
  return safeFilename(name.split(/[/\\]/).pop() ?? '', 'anhang');
}

/**
 * The subject as it goes into the header. Text is text: an encoded-word the user typed (`=?utf-8?b?…?=`) would pass
 * nodemailer as it is (it takes a valid one for a value encoded already) and the agency's client would decode it into
 * whatever it holds, line breaks and bidi overrides included, which checkSubject removed from the typed text. A
 * subject holding `=?` is therefore encoded whole, so it decodes to exactly what was typed.
 */
export function subjectFieldValue(subject: string): string {
  return subject.includes('=?') ? encodeWords(subject).replace(/\r\n /g, ' ') : subject;
}

/** The content type for a (cleaned) file name: ATTACHMENT_TYPES by extension, else application/octet-stream. */
export function attachmentContentType(filename: string): string {
  return ATTACHMENT_TYPES[extname(filename).toLowerCase()] ?? FALLBACK_ATTACHMENT_TYPE;
}

const MESSAGE_ID = /^<[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+>$/;
/** At most this many References are carried on (the newest ones). */
const MAX_REFERENCES = 20;

/** Only well-formed ids (printable ASCII, no brackets inside) pass; the rest is dropped. */
export function wellFormedMessageId(id: string): boolean {
  return id.length <= 250 && MESSAGE_ID.test(id);
}

/** The bytes a portal user's input adds up to: text and attachments (SMGW_PORTAL_MAX_UPLOAD_BYTES bounds it). */
export function uploadBytes(input: { text: string; attachments: readonly PortalAttachment[] }): number {
  return Buffer.byteLength(input.text) + input.attachments.reduce((sum, a) => sum + a.content.length, 0);
}

/** The whole message (RFC 5322, CRLF). Throws PortalWriteError for input it refuses. */
export async function composePortalMessage(input: PortalComposition): Promise<Buffer> {
  const subject = checkSubject(input.subject);
  const text = cleanText(input.text);
  if (input.to.length === 0) throw new PortalWriteError('NO_RECIPIENT', 'the message needs a recipient');
  if (input.attachments.length > MAX_ATTACHMENTS) {
    throw new PortalWriteError('TOO_MANY_ATTACHMENTS', `at most ${MAX_ATTACHMENTS} attachments`);
  }
  if (text.trim() === '' && input.attachments.length === 0) {
    throw new PortalWriteError('MESSAGE_EMPTY', 'the message needs a text or an attachment');
  }
  const reply = input.replyTo && wellFormedMessageId(input.replyTo.messageId) ? input.replyTo : undefined;
  const references = reply
    ? [...reply.references.filter(wellFormedMessageId), reply.messageId].slice(-MAX_REFERENCES)
    : [];

  const composer = new MailComposer({
    from: { name: '', address: input.from },
    to: input.to.map((address) => ({ name: '', address })),
    subject: subjectFieldValue(subject),
    date: rfc5322Date(input.date),
    messageId: `<${input.messageId}@${input.hostname}>`,
    ...(reply ? { inReplyTo: reply.messageId, references: references.join(' ') } : {}),
    text,
    textEncoding: 'quoted-printable',
    attachments: input.attachments.map((a) => {
      const filename = sanitizeFilename(a.filename);
      return {
        filename,
        content: a.content,
        contentType: attachmentContentType(filename),
        contentDisposition: 'attachment',
        contentTransferEncoding: 'base64',
      };
    }),
    // Only the buffers given here are read: never a file or a URL named in the input.
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  return await new Promise<Buffer>((resolve, reject) => {
    composer.compile().build((err, message) => (err ? reject(err) : resolve(message)));
  });
}
