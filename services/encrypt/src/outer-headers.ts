// What stays visible outside the encryption (the outer headers) and what goes inside it (the inner entity).
// The outer header is kept to what a mail client needs to show and thread the message; everything else of the
// original header (X-*, internal routing) is neither outside nor inside: only the Content-* fields go inside. Mail
// that passes through already encrypted (passThroughMessage) and the portal's copy (portalMessage) leave by the same
// rule: one header policy for every copy that goes to someone outside.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { OuterHeaders } from '@smgw/crypto';
import {
  decodeEncodedWords,
  displayText,
  encodeWords,
  type HeaderField,
  headerBytes,
  listedAddresses,
  parseHeaderFields,
  rfc5322Date,
} from '@smgw/mime';

const OUTER_FIELDS = new Set(['from', 'to', 'cc', 'date', 'message-id', 'subject', 'in-reply-to', 'references']);
const PRINTABLE_ASCII = /^[\x20-\x7e\t]*$/;
/** The fields that name messages: only their `<…>` message ids go outside. */
const MESSAGE_ID_FIELDS = new Set(['message-id', 'in-reply-to', 'references']);
/** RFC 5322 msg-id as clients write it: `<`, printable ASCII without space and angle brackets, `>`. */
const MESSAGE_ID_TOKEN = /<[\x21-\x3b\x3d\x3f-\x7e]{1,998}>/g;

export interface OuterHeaderDefaults {
  /** Envelope sender, used when the message has no From. */
  mailFrom: string;
  /** Used when the message has no Date. */
  date: Date;
  /** Used when the message has no Message-ID (without angle brackets). */
  messageId: string;
}

/**
 * The outer header fields as [name, value] pairs (values unfolded, ASCII): the gateway's own Received field (the
 * first field of the header, where ingest puts it; a Received field further down is another host's), then From, To,
 * Cc, Date, Message-ID, Subject, In-Reply-To, References in the original order, then `MIME-Version: 1.0` (never the
 * original's: its comment is free text). Message-ID, In-Reply-To and References keep only their `<…>` ids. A Subject
 * in raw UTF-8 becomes RFC 2047 encoded-words; other fields with raw non-ASCII, or with no message id where one
 * belongs, are left out (they cannot be written safely outside) and reported in `dropped`.
 */
export function outerHeaderPairs(
  fields: readonly HeaderField[],
  defaults: OuterHeaderDefaults,
): { pairs: Array<[string, string]>; dropped: string[] } {
  const pairs: Array<[string, string]> = [];
  const dropped: string[] = [];
  const received = fields[0]?.key === 'received' ? fields[0] : undefined;
  if (received && PRINTABLE_ASCII.test(received.value)) pairs.push(['Received', received.value]);
  for (const field of fields) {
    if (!OUTER_FIELDS.has(field.key)) continue;
    if (pairs.some(([name]) => name.toLowerCase() === field.key)) continue; // the first of a repeated field
    if (MESSAGE_ID_FIELDS.has(field.key)) {
      // Only the ids: a client's comments and old phrases ("Your message of 3 March about Az. 4711") are free text.
      const ids = messageIdsOf(field.key, field.value);
      if (ids) pairs.push([field.name, ids]);
      else dropped.push(field.name);
      continue;
    }
    if (PRINTABLE_ASCII.test(field.value) && field.value.trim() !== '') pairs.push([field.name, field.value]);
    else if (field.key === 'subject') pairs.push([field.name, encodeWords(utf8Text(field.value))]);
    else dropped.push(field.name);
  }
  const has = (key: string) => pairs.some(([name]) => name.toLowerCase() === key);
  if (!has('from')) pairs.push(['From', `<${defaults.mailFrom}>`]);
  if (!has('date')) pairs.push(['Date', rfc5322Date(defaults.date)]);
  if (!has('message-id')) pairs.push(['Message-ID', `<${defaults.messageId}>`]);
  pairs.push(['MIME-Version', '1.0']);
  return { pairs, dropped };
}

/**
 * The `<…>` message ids of a Message-ID (its first), In-Reply-To or References field, space-separated; undefined when
 * it holds none. Whatever else the field holds (comments, phrases, obsolete text) stays inside the encryption only.
 */
function messageIdsOf(key: string, value: string): string | undefined {
  const ids = value.match(MESSAGE_ID_TOKEN) ?? [];
  if (ids.length === 0) return undefined;
  return key === 'message-id' ? ids[0] : ids.join(' ');
}

/**
 * The same header for encryptPgpMime, which writes From, To, Subject, Date, Message-ID, In-Reply-To and References
 * itself (and MIME-Version 1.0); Received and Cc come back as `extraLines` to put in front of its output. The Subject
 * is decoded and put on one line (displayText: line breaks and other controls become spaces or go).
 */
export function pgpOuterHeaders(pairs: ReadonlyArray<[string, string]>): {
  headers: OuterHeaders;
  extraLines: string;
} {
  const get = (key: string) => pairs.find(([name]) => name.toLowerCase() === key)?.[1];
  const extra = pairs.filter(([name]) => ['received', 'cc'].includes(name.toLowerCase()));
  const headers: OuterHeaders = {
    from: get('from') ?? '<>',
    to: get('to') ?? 'undisclosed-recipients:;',
    // encryptPgpMime encodes the subject itself: give it the text, on one line. An encoded-word may hold a line
    // break (a two-line title) or another control character, which encryptPgpMime rightly refuses in a header.
    subject: displayText(decodeEncodedWords(get('subject') ?? '')),
    date: get('date') ?? new Date(),
    messageId: get('message-id') ?? '',
  };
  const inReplyTo = get('in-reply-to');
  const references = get('references');
  if (inReplyTo) headers.inReplyTo = inReplyTo;
  if (references) headers.references = references;
  return { headers, extraLines: extra.map(([name, value]) => `${name}: ${value}\r\n`).join('') };
}

/** The MIME entity that is encrypted: the original's Content-* fields, a blank line, the original body. */
export function innerEntity(fields: readonly HeaderField[], body: Readable): Readable {
  return entityOf(
    fields.filter((f) => f.key.startsWith('content-')),
    body,
  );
}

/**
 * A message that passes through already encrypted, as it may leave: the outer fields the gateway's own copies keep
 * (outerHeaderPairs), the Content-* fields checkWholeMessageEncrypted rebuilt for the body it checked, then that body
 * byte for byte. Nothing else of the sender's header leaves (X-*, Comments, Keywords, internal Received, Bcc,
 * Resent-*).
 */
export function passThroughMessage(
  outerPairs: ReadonlyArray<[string, string]>,
  contentFields: ReadonlyArray<[string, string]>,
  body: Readable,
): Readable {
  return entityOf(fieldsOf([...outerPairs, ...contentFields]), body);
}

/**
 * PGP/MIME that passes through, under a boundary of ours: the sender's (`from`, as checkWholeMessageEncrypted read
 * it) is free text of up to 70 characters, spaces allowed, that the Content-Type and every delimiter line would
 * carry in clear. Only the delimiter lines change: the check found every other line in a fixed form or the armor.
 */
export function underOwnBoundary(
  from: string,
  body: Readable,
): { contentFields: Array<[string, string]>; body: Readable } {
  const to = `smgw-pgp-${randomBytes(12).toString('hex')}`;
  const contentType = `multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${to}"`;
  return {
    contentFields: [['Content-Type', contentType]],
    body: Readable.from(renamedDelimiters(body, `--${from}`, `--${to}`), { objectMode: false }),
  };
}

/** `body` with each line that is `delimiter` or its close (trailing white space aside, as the check reads) renamed. */
async function* renamedDelimiters(body: Readable, delimiter: string, renamed: string): AsyncGenerator<Buffer> {
  const rename = (line: string) => {
    const cr = line.endsWith('\r') ? '\r' : '';
    const bare = line.trimEnd();
    if (bare === delimiter) return `${renamed}${cr}`;
    if (bare === `${delimiter}--`) return `${renamed}--${cr}`;
    return line;
  };
  let carry = '';
  for await (const chunk of body) {
    const lines = (carry + Buffer.from(chunk as Uint8Array).toString('latin1')).split('\n');
    carry = lines.pop() as string;
    if (lines.length > 0) yield Buffer.from(`${lines.map(rename).join('\n')}\n`, 'latin1');
  }
  if (carry !== '') yield Buffer.from(rename(carry), 'latin1');
}

/**
 * The copy a recipient without a key reads in the portal (and may download whole): by the same rule as the encrypted
 * copies, the outer fields (outerHeaderPairs), then the original's Content-* fields, then its body byte for byte.
 * Nothing else of the agency's header reaches the citizen (X-*, Comments, Organization, User-Agent, internal Received).
 */
export function portalMessage(
  outerPairs: ReadonlyArray<[string, string]>,
  fields: readonly HeaderField[],
  body: Readable,
): Readable {
  return entityOf([...fieldsOf(outerPairs), ...fields.filter((f) => f.key.startsWith('content-'))], body);
}

/**
 * The recipients the message names in To and Cc, lower-cased: they see each other in the header anyway and may share
 * one encrypted copy (plan-outbound.ts).
 */
export function namedInHeader(fields: readonly HeaderField[]): Set<string> {
  const named = fields.filter((f) => f.key === 'to' || f.key === 'cc').flatMap((f) => listedAddresses(f.value));
  return new Set(named.filter(Boolean).map((address) => address.toLowerCase()));
}

function fieldsOf(pairs: ReadonlyArray<[string, string]>): HeaderField[] {
  return parseHeaderFields(pairs.map(([name, value]) => `${name}: ${value}`).join('\r\n'));
}

function entityOf(fields: readonly HeaderField[], body: Readable): Readable {
  return Readable.from(entityChunks(Buffer.concat([headerBytes(fields), Buffer.from('\r\n')]), body), {
    objectMode: false,
  });
}

async function* entityChunks(head: Buffer, body: Readable): AsyncGenerator<Buffer> {
  yield head;
  for await (const chunk of body) {
    const bytes = chunk as Uint8Array;
    yield Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
}

/** Header bytes (read as Latin-1) as the UTF-8 text they hold. */
function utf8Text(latin1: string): string {
  return Buffer.from(latin1, 'latin1').toString('utf8');
}
