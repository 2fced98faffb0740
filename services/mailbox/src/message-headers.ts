// What a reader sees of a message's header fields: From, To, Cc, Subject and Date decoded (raw UTF-8, RFC 2047) into
// plain text. The text is only ever shown escaped, but it is still cleaned: control characters and bidi overrides
// (which make "evil.exe" read as "exe.live" or turn a sender's name around) are dropped, and it is cut to a length a
// page can show. Used for the sealed folder summary at arrival and for the message page.
import { decodeEncodedWords, displayText, type HeaderField, headerValue, listedMailboxes } from '@smgw/mime';

export interface DisplayMailbox {
  name: string;
  address: string;
}

export interface DisplayHeaders {
  from: DisplayMailbox[];
  to: DisplayMailbox[];
  cc: DisplayMailbox[];
  subject: string;
  /** The Date field as an ISO time, or null when missing or unreadable. */
  date: string | null;
}

export const MAX_DISPLAY_NAME = 200;
export const MAX_SUBJECT = 500;
/** More recipients than this are summarised as "… (+N)". */
export const MAX_LISTED_MAILBOXES = 50;
/** A field's mailboxes are read up to this many (the rest is not shown anyway). */
const MAX_READ_MAILBOXES = 10_000;

/** A header value read as Latin-1 (header-block.ts) back to text: raw UTF-8 (RFC 6532) when it is valid UTF-8. */
function headerText(latin1: string): string {
  const bytes = Buffer.from(latin1, 'latin1');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return latin1;
  }
}

function mailboxesOf(fields: readonly HeaderField[], name: string): DisplayMailbox[] {
  const value = headerValue(fields, name);
  if (value === undefined) return [];
  const text = headerText(value);
  let listed: { name: string; address: string }[];
  try {
    listed = listedMailboxes(text);
  } catch {
    listed = [{ name: text, address: '' }];
  }
  return listed.slice(0, MAX_READ_MAILBOXES).map((mailbox) => ({
    name: displayText(mailbox.name, MAX_DISPLAY_NAME),
    address: displayText(mailbox.address, 320),
  }));
}

/** The Date field as ISO, when it reads as a date between 1970 and 9999. */
export function isoDate(value: string | undefined): string | null {
  if (!value) return null;
  // A trailing comment goes; no `\s*` before it, which rescanned a run of white space from each of its characters.
  const parsed = new Date(value.replace(/\([^()]*\)\s*$/, '').trim());
  const time = parsed.getTime();
  if (Number.isNaN(time) || time < 0 || time > 253402300799999) return null;
  return parsed.toISOString();
}

export function displayHeaders(fields: readonly HeaderField[]): DisplayHeaders {
  const subject = headerValue(fields, 'subject');
  return {
    from: mailboxesOf(fields, 'from'),
    to: mailboxesOf(fields, 'to'),
    cc: mailboxesOf(fields, 'cc'),
    subject: subject === undefined ? '' : displayText(decodeEncodedWords(headerText(subject)), MAX_SUBJECT),
    date: isoDate(headerValue(fields, 'date')),
  };
}

/** Mailboxes as one line of text: `Name <address>` or the bare address, comma-separated, long lists cut. */
export function formatMailboxes(mailboxes: readonly DisplayMailbox[]): string {
  const shown = mailboxes.slice(0, MAX_LISTED_MAILBOXES).map((mailbox) => {
    if (!mailbox.name) return mailbox.address;
    if (!mailbox.address || mailbox.name === mailbox.address) return mailbox.name;
    return `${mailbox.name} <${mailbox.address}>`;
  });
  const more = mailboxes.length > MAX_LISTED_MAILBOXES ? ` (+${mailboxes.length - MAX_LISTED_MAILBOXES})` : '';
  return shown.join(', ') + more;
}
