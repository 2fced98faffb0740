// The header block of a submitted message, checked and cleaned while the message streams in (issue 8, findings 5
// and 6), before anything is stored:
// - every address of every From and Sender field must be one the client may use (sender-policy.ts), else the
//   message is refused (550 5.7.1) before the 250. That counts what the parser reads as the address and everything a
//   reader would take for one: a display name, comment or encoded-word showing `x@y` (addressLikeTokens). The first
//   From address is the message's author: encrypt signs with that address's key, never with the envelope sender's.
// - Bcc and Resent-Bcc fields are removed: their recipients are in the envelope, and the fields never leave the
//   gateway, neither to the outside nor to the agency relay (RFC 5322 §3.6.3, the first way: removed for everyone;
//   a client's "redirect" writes Resent-Bcc, §3.6.6), nor into a portal mailbox.
// - Fields only the gateway writes are removed (forged-header-fields.ts: X-SMGW-*, Authentication-Results in our
//   name), whatever their length: the whole block is held here anyway, so this is the one reader of it in ingest.
//   So are folded lines before the first field: behind ingest's Received field they would continue it.
// Both listeners run it (the MX port with its own rule for From and Sender).
// Field names are matched leniently (any case, white space before the colon, as obs-field allows), because a mail
// client after us may read such a field as From. Only the header block is held, at most MAX_HEADER_BYTES.
import { domainOrAddressList } from '@smgw/config';
import { addressLikeTokens, listedAddresses, MAX_HEADER_BYTES } from '@smgw/mime';
import { isGatewayField } from './forged-header-fields.ts';

/** The fields whose addresses say who wrote or sent the message (RFC 5322 §3.6.2). */
const AUTHOR_FIELDS = new Set(['from', 'sender']);
const REMOVED_FIELDS = new Set(['bcc', 'resent-bcc']);

/**
 * Most lines a header block may have (folded lines count). mailauth's DKIM verifier reads header lines in time
 * quadratic in their number (80,000 short lines: 80 s of a blocked event loop; 10,000: 0.15 s); real header blocks
 * have a few hundred.
 */
export const MAX_HEADER_LINES = 10_000;

export class SubmissionHeaderError extends Error {
  readonly code: 'FROM_NOT_ALLOWED' | 'HEADER_TOO_LARGE';
  constructor(code: SubmissionHeaderError['code'], message: string) {
    super(message);
    this.name = 'SubmissionHeaderError';
    this.code = code;
  }
}

/** One field of the header block as written (its lines with their line ends), and its name lower-cased. */
interface RawField {
  /** undefined for a line that is no field (no name before a colon). */
  key: string | undefined;
  raw: string;
}

/**
 * The fields of a header block (Latin-1 text, CRLF line ends, ending with the last field's CRLF). A field's name is
 * read from the field unfolded: `From` CRLF SP `: x` reads `From : x`, and mail readers (mailparser) show it as From.
 */
function rawFields(block: string): RawField[] {
  const fields: RawField[] = [];
  for (const line of block.split(/(?<=\r\n)/)) {
    if (line === '') continue;
    const last = fields.at(-1);
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) last.raw += line;
    else fields.push({ key: undefined, raw: line });
  }
  for (const field of fields) {
    field.key = /^([!-9;-~]+)[ \t]*:/.exec(field.raw.replace(/\r\n(?=[ \t])/g, ''))?.[1]?.toLowerCase();
  }
  return fields;
}

const unfolded = (field: RawField) =>
  field.raw
    .slice(field.raw.indexOf(':') + 1)
    .replace(/\r\n/g, '')
    .trim();

export type AuthorDecision =
  | { accept: true; author: string | undefined }
  | { accept: false; field: string; address: string };

/**
 * Whether every From and Sender address of the header block is one the client may use; if so, the first From
 * address (normalised), or undefined when there is no From field.
 */
export function decideAuthor(block: string, mayUse: (address: string) => boolean): AuthorDecision {
  let author: string | undefined;
  for (const field of rawFields(block)) {
    if (!field.key || !AUTHOR_FIELDS.has(field.key)) continue;
    const value = asShown(unfolded(field));
    const addresses = listedAddresses(value);
    // A From or Sender without any address shows the reader only a name: nothing we could check.
    if (addresses.length === 0) return { accept: false, field: field.key, address: '' };
    for (const address of [...addresses, ...addressLikeTokens(value)]) {
      if (!address || !mayUse(address)) return { accept: false, field: field.key, address };
    }
    if (field.key === 'from' && author === undefined) author = normalAddress(addresses[0] as string);
  }
  return { accept: true, author };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A field value (Latin-1 text, one character per byte) as mail clients show it: 8-bit bytes that are valid UTF-8 as
 * UTF-8 (RFC 6532 headers; 8BITMIME is offered), anything else byte for byte. Read as Latin-1, `chefin@bücher.example`
 * in UTF-8 would name no agency domain and pass the MX port's rule.
 */
function asShown(value: string): string {
  if (!/[\x80-\xff]/.test(value)) return value;
  try {
    return UTF8.decode(Buffer.from(value, 'latin1'));
  } catch {
    return value;
  }
}

/** The header block without Bcc and Resent-Bcc fields, byte for byte otherwise; and how many were removed. */
export function withoutBcc(block: string): { block: string; removed: number } {
  const cleaned = withoutRawFields(block, isBcc);
  return { block: cleaned.block, removed: cleaned.removed.length };
}

const isBcc = (field: RawField) => field.key !== undefined && REMOVED_FIELDS.has(field.key);

/** The header block without the fields `remove` picks, byte for byte otherwise; and those removed. */
function withoutRawFields(block: string, remove: (field: RawField) => boolean): { block: string; removed: RawField[] } {
  const fields = rawFields(block);
  const removed = fields.filter(remove);
  if (removed.length === 0) return { block, removed };
  const gone = new Set(removed);
  return { block: fields.flatMap((f) => (gone.has(f) ? [] : [f.raw])).join(''), removed };
}

/**
 * local@domain with the local part lower-cased and the domain an A-label (how keys are looked up); as written, lower-
 * cased, when it is no such address (the port's rule has let it pass: it names no key of ours).
 */
function normalAddress(address: string): string {
  try {
    return domainOrAddressList(address)[0] ?? address.toLowerCase();
  } catch {
    return address.toLowerCase();
  }
}

export interface CheckedHeader {
  /** The first From address, normalised; undefined when the message has no From field. */
  author: string | undefined;
  /** How many Bcc fields were removed. */
  removedBcc: number;
  /** Names (never values: the sender's content) of the fields in our name that were removed. */
  removedGatewayFields: string[];
}

export interface HeaderCheckOptions {
  /** SMGW_HOSTNAME: Authentication-Results fields with this authserv-id are ours (forged-header-fields.ts). */
  gatewayHostname: string;
  maxHeaderBytes?: number;
}

/**
 * The message with its header block checked (decideAuthor; SubmissionHeaderError FROM_NOT_ALLOWED), without Bcc
 * fields and without fields in the gateway's name. `checked` is told the result before the body passes. The source
 * has been through the BareLineEndingGuard, so every line ends in CRLF.
 */
export async function* withCheckedSubmissionHeader(
  source: AsyncIterable<Uint8Array>,
  mayUse: (address: string) => boolean,
  checked: (header: CheckedHeader) => void,
  options: HeaderCheckOptions,
): AsyncGenerator<Uint8Array> {
  const { gatewayHostname, maxHeaderBytes = MAX_HEADER_BYTES } = options;
  const check = (bytes: Buffer) => checkedBlock(bytes, mayUse, gatewayHostname, checked);
  let head = Buffer.alloc(0);
  let inHeader = true;
  for await (const chunk of source) {
    if (!inHeader) {
      yield chunk;
      continue;
    }
    const searchFrom = Math.max(0, head.length - 3);
    head = Buffer.concat([head, chunk]);
    // The header ends at the first empty line: CRLF CRLF, or a CRLF at the very start (no fields at all).
    const blank = head.subarray(0, 2).equals(CRLF) ? -2 : head.indexOf(CRLF_CRLF, searchFrom);
    if (blank === -1) {
      if (head.length > maxHeaderBytes) throw headerTooLarge(maxHeaderBytes);
      continue;
    }
    if (blank + 2 > maxHeaderBytes) throw headerTooLarge(maxHeaderBytes);
    const block = check(head.subarray(0, blank + 2));
    if (block.length > 0) yield block;
    yield head.subarray(blank + 2);
    inHeader = false;
  }
  // A message that is all header (no empty line).
  if (inHeader) yield check(head);
}

const CRLF = Buffer.from('\r\n');
const CRLF_CRLF = Buffer.from('\r\n\r\n');

function headerTooLarge(limit: number) {
  return new SubmissionHeaderError('HEADER_TOO_LARGE', `header block longer than ${limit} bytes`);
}

function checkedBlock(
  bytes: Buffer,
  mayUse: (address: string) => boolean,
  gatewayHostname: string,
  checked: (header: CheckedHeader) => void,
): Buffer {
  if (lineCount(bytes) > MAX_HEADER_LINES) {
    throw new SubmissionHeaderError('HEADER_TOO_LARGE', `header block of more than ${MAX_HEADER_LINES} lines`);
  }
  const text = bytes.toString('latin1');
  const decision = decideAuthor(text, mayUse);
  if (!decision.accept) {
    const what = decision.address ? `address ${decision.address}` : 'a field without an address';
    throw new SubmissionHeaderError('FROM_NOT_ALLOWED', `${decision.field}: ${what} is not one this sender may use`);
  }
  const ours = (field: RawField) =>
    continuesOurReceived(field) || isGatewayField(field.raw.replace(/\r\n(?=[ \t])/g, ''), gatewayHostname);
  const cleaned = withoutRawFields(text, (field) => isBcc(field) || ours(field));
  const gatewayFields = cleaned.removed.filter((field) => !isBcc(field));
  checked({
    author: decision.author,
    removedBcc: cleaned.removed.length - gatewayFields.length,
    // A name, never a value: folded lines before the first field have none of their own.
    removedGatewayFields: gatewayFields.map((field) =>
      continuesOurReceived(field) ? 'Received (continued)' : field.raw.slice(0, field.raw.indexOf(':')).trim(),
    ),
  });
  return cleaned.removed.length > 0 ? Buffer.from(cleaned.block, 'latin1') : bytes;
}

/**
 * Folded lines before the block's first field: ingest puts its Received field right in front of the block, so every
 * reader would take them for more of that field, and the client would write into the gateway's own trace field.
 */
const continuesOurReceived = (field: RawField) => field.raw.startsWith(' ') || field.raw.startsWith('\t');

function lineCount(bytes: Buffer): number {
  let lines = bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a ? 1 : 0;
  for (let at = bytes.indexOf(0x0a); at !== -1; at = bytes.indexOf(0x0a, at + 1)) lines++;
  return lines;
}
