// The outer header block of a PGP/MIME message. Values come from the original message; we refuse anything that
// could inject a header (CR/LF) and encode a non-ASCII subject as RFC 2047 encoded-words.
import { encodeWords, rfc5322Date } from '@smgw/mime';
import { PgpError } from './errors.ts';

export interface OuterHeaders {
  /** RFC 5322 From value, ready to use (ASCII; display names already encoded). */
  from: string;
  /** RFC 5322 To value, ready to use (ASCII). */
  to: string;
  /** Subject as text; non-ASCII is encoded here. */
  subject: string;
  date: Date | string;
  /** With or without angle brackets. */
  messageId: string;
  /** Threading of replies, copied from the original (ASCII, already formatted). */
  inReplyTo?: string;
  references?: string;
}

const PRINTABLE_ASCII = /^[\x20-\x7e\t]*$/;

/** Header lines (each ending in CRLF) for the given values, without the Content-Type. */
export function formatOuterHeaders(headers: OuterHeaders): string {
  const messageId = headers.messageId.startsWith('<') ? headers.messageId : `<${headers.messageId}>`;
  const lines = [
    `From: ${asciiValue('From', headers.from)}`,
    `To: ${asciiValue('To', headers.to)}`,
    `Subject: ${encodeSubject(headers.subject)}`,
    `Date: ${typeof headers.date === 'string' ? asciiValue('Date', headers.date) : rfc5322Date(headers.date)}`,
    `Message-ID: ${asciiValue('Message-ID', messageId)}`,
  ];
  if (headers.inReplyTo) lines.push(`In-Reply-To: ${asciiValue('In-Reply-To', headers.inReplyTo)}`);
  if (headers.references) lines.push(`References: ${asciiValue('References', headers.references)}`);
  return lines.map((line) => `${line}\r\n`).join('');
}

// A value may be folded (CRLF followed by a space or tab), which cannot start a new header; any other line break or
// non-ASCII character is refused.
function asciiValue(name: string, value: string): string {
  if (!PRINTABLE_ASCII.test(value.replace(/\r\n[ \t]/g, ' ')) || /^\s*$/.test(value)) {
    throw new PgpError(
      'PGP_INVALID_HEADER',
      `${name} must be non-empty printable ASCII, folded only with CRLF + space`,
    );
  }
  return value;
}

/** The subject as it is when that is safe, else as RFC 2047 encoded-words in UTF-8 (at most 75 characters each). */
export function encodeSubject(subject: string): string {
  if (/[\r\n]/.test(subject)) throw new PgpError('PGP_INVALID_HEADER', 'Subject must not contain line breaks');
  // Long ASCII subjects are encoded too: encoded-words fold, so no line exceeds RFC 5322's 998 characters.
  if (PRINTABLE_ASCII.test(subject) && !subject.includes('=?') && subject.length <= 900) return subject;
  return encodeWords(subject);
}
