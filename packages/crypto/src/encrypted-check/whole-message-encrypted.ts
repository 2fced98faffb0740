// Is this message, as a whole, an encrypted message and nothing else? The one predicate behind "already encrypted,
// let it pass" (encrypt) and "may this leave the closed network" (deliver), so both decide on the same bytes by the
// same rule. A label is only a claim: a body of one CMS header line followed by plaintext, or a PGP/MIME part with
// text beside the armor, would otherwise leave in clear. So the whole message is read (streamed, memory flat):
// - S/MIME: Content-Type application/(x-)pkcs7-mime, base64, and the decoded bytes are exactly one complete CMS
//   ContentInfo holding EnvelopedData or AuthEnvelopedData with at least one RecipientInfo and its encrypted content
//   inside (the outer length covers every decoded byte; nothing before or after it).
// - OpenPGP (RFC 3156): multipart/encrypted; protocol="application/pgp-encrypted" with exactly the two parts the RFC
//   names, the second one armored OpenPGP message whose packets are session keys and one encrypted-data packet, and
//   no text anywhere else (a preamble only of the customary sentence, no epilogue; in the parts' headers and the
//   armor only the fixed values RFC 3156 clients write).
// Anything else is "not encrypted", with a reason. The outer header fields stay readable by design (as in any S/MIME
// or PGP/MIME mail); what the body carries is what this checks. For a message that passes, the check gives the
// top-level Content-* fields that describe that body, rebuilt from what it read: a message passed on may leave with
// those instead of the sender's (whose parameters and comments are free text).
import { smimeContentFields } from '../smime/encrypt-enveloped.ts';
import { BerShapeError, BerSkeletonReader, type SkeletonNode } from './ber-skeleton.ts';
import { OpenPgpPacketWalker, OpenPgpShapeError } from './openpgp-packets.ts';

export type WholeMessageCheck =
  | {
      encrypted: true;
      form: 'smime' | 'pgp';
      /** Content-Type (and for S/MIME the other Content-* fields) describing the body that was checked. */
      contentFields: Array<[string, string]>;
      /**
       * PGP/MIME: the sender's boundary, which the body's delimiter lines repeat. It is free text (RFC 2046 allows
       * 70 characters, spaces too), so whoever passes the message on replaces it (renameBoundary in services/encrypt).
       */
      boundary?: string;
    }
  | { encrypted: false; reason: string };

/** Longest line read; base64 and armor lines are 64–76 characters, header fields are unfolded first. */
const MAX_LINE_BYTES = 64 * 1024;
/** How many header lines (after unfolding) a message or part may have. */
const MAX_HEADER_FIELDS = 500;
/**
 * How many lines a header block may have, folded lines counted: ingest refuses a top header of more (its
 * MAX_HEADER_LINES). Unbounded, one field folded over eight million lines of a crafted message took 5 s of the
 * check (a line costs an await and a concatenation).
 */
const MAX_HEADER_LINES = 10_000;
/** A PGP/MIME part's header block: at most its four fields, each folded a few times. */
const MAX_PART_HEADER_LINES = 64;
/**
 * Lines of a PGP/MIME preamble, control part, epilogue or the text after the armor: clients write one to three.
 * Unbounded, ten million blank lines there took 7–10 s of the check, a line at a time.
 */
const MAX_TEXT_LINES = 1_000;

class NotEncrypted extends Error {}

/** `type/subtype` as RFC 6838 names them (lower case here), short enough for a log line. */
const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$/;

const notEncrypted = (reason: string): never => {
  throw new NotEncrypted(reason);
};

/** Reads `message` to its end and says whether it is wholly encrypted. Never throws for bad input. */
export async function checkWholeMessageEncrypted(message: AsyncIterable<Uint8Array>): Promise<WholeMessageCheck> {
  const lines = new LineReader(message);
  try {
    const headers = await readHeaderBlock(lines);
    const type = contentTypeOf(headers);
    if (!type) return { encrypted: false, reason: 'no or several Content-Type fields' };
    if (type.value === 'application/pkcs7-mime' || type.value === 'application/x-pkcs7-mime') {
      const smimeType = await checkSmimeBody(headers, type.parameters, lines);
      return { encrypted: true, form: 'smime', contentFields: smimeContentFields(smimeType) };
    }
    if (type.value === 'multipart/encrypted') {
      const boundary = await checkPgpMimeBody(type.parameters, lines);
      const contentType = `multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"`;
      return { encrypted: true, form: 'pgp', contentFields: [['Content-Type', contentType]], boundary };
    }
    // Named only when it is a media type: the value is the sender's, and this reason goes to logs and the trace.
    const named = MEDIA_TYPE.test(type.value) ? type.value : '(not a media type)';
    return { encrypted: false, reason: `Content-Type ${named} is not an encrypted form` };
  } catch (err) {
    if (err instanceof NotEncrypted) return { encrypted: false, reason: err.message };
    if (err instanceof BerShapeError) return { encrypted: false, reason: `CMS: ${err.message}` };
    if (err instanceof OpenPgpShapeError) return { encrypted: false, reason: `OpenPGP: ${err.message}` };
    throw err;
  } finally {
    await lines.close();
  }
}

// --- S/MIME ------------------------------------------------------------------------------------------------------

const ENVELOPED_DATA = Buffer.from('2a864886f70d010703', 'hex');
const AUTH_ENVELOPED_DATA = Buffer.from('2a864886f70d0109100117', 'hex');
const UNIVERSAL = 0;
const CONTEXT = 2;

/** Checks the body; says which CMS type it holds (read from the bytes, not from the label). */
async function checkSmimeBody(
  headers: Map<string, string[]>,
  parameters: Map<string, string>,
  lines: LineReader,
): Promise<'enveloped-data' | 'authEnveloped-data'> {
  const smimeType = parameters.get('smime-type')?.toLowerCase();
  if (smimeType !== undefined && smimeType !== 'enveloped-data' && smimeType !== 'authenveloped-data') {
    notEncrypted(`smime-type ${smimeType} is not encryption`);
  }
  const encoding = single(headers, 'content-transfer-encoding')?.trim().toLowerCase();
  if (encoding !== 'base64') notEncrypted('an S/MIME body that is not base64');
  const reader = new BerSkeletonReader();
  const base64 = new Base64Decoder((bytes) => reader.push(bytes));
  // A chunk's lines at a time: one decode and one push per chunk, not per 76-character line.
  for (let batch = await lines.nextBatch(); batch; batch = await lines.nextBatch()) base64.lines(batch);
  base64.end();
  return checkContentInfo(reader.end()) ? 'authEnveloped-data' : 'enveloped-data';
}

/** Whether the ContentInfo holds AuthEnvelopedData (else EnvelopedData). */
function checkContentInfo(root: SkeletonNode): boolean {
  const [type, explicit, ...more] = universal(root, 16, 'ContentInfo').children;
  if (more.length > 0 || !type || !explicit) notEncrypted('ContentInfo is not (contentType, content)');
  const oid = primitiveContent(type, 6, 'contentType');
  const auth = oid.equals(AUTH_ENVELOPED_DATA);
  if (!auth && !oid.equals(ENVELOPED_DATA))
    notEncrypted('CMS content type is neither EnvelopedData nor AuthEnvelopedData');
  const [data, ...extra] = context(explicit as SkeletonNode, 0, 'content').children;
  if (!data || extra.length > 0) notEncrypted('CMS [0] content holds more than one element');
  const fields = [...universal(data as SkeletonNode, 16, 'EnvelopedData').children];
  const take = (test: (n: SkeletonNode) => boolean) => (fields[0] && test(fields[0]) ? fields.shift() : undefined);
  primitiveContent(fields.shift(), 2, 'version');
  take((n) => n.tagClass === CONTEXT && n.tagNumber === 0); // originatorInfo
  const recipientInfos = universal(fields.shift(), 17, 'recipientInfos');
  if (recipientInfos.children.length === 0) notEncrypted('no RecipientInfo');
  const contentInfo = universal(fields.shift(), 16, 'encryptedContentInfo');
  const [contentType, algorithm, encryptedContent, ...rest] = contentInfo.children;
  primitiveContent(contentType, 6, 'encrypted content type');
  universal(algorithm, 16, 'content encryption algorithm');
  if (!encryptedContent || encryptedContent.tagClass !== CONTEXT || encryptedContent.tagNumber !== 0 || rest.length) {
    notEncrypted('the encrypted content is not inside the message');
  }
  if (auth) {
    take((n) => n.tagClass === CONTEXT && n.tagNumber === 1); // authAttrs
    primitiveContentOrLarge(fields.shift(), 4, 'mac');
    take((n) => n.tagClass === CONTEXT && n.tagNumber === 2); // unauthAttrs
  } else {
    take((n) => n.tagClass === CONTEXT && n.tagNumber === 1); // unprotectedAttrs
  }
  if (fields.length > 0) notEncrypted('unexpected elements in the CMS structure');
  return auth;
}

function universal(node: SkeletonNode | undefined, tag: number, what: string): SkeletonNode {
  if (!node || node.tagClass !== UNIVERSAL || node.tagNumber !== tag || !node.constructed) {
    return notEncrypted(`${what} missing or of the wrong type`);
  }
  return node;
}

function context(node: SkeletonNode, tag: number, what: string): SkeletonNode {
  if (node.tagClass !== CONTEXT || node.tagNumber !== tag || !node.constructed) {
    return notEncrypted(`${what} missing or of the wrong type`);
  }
  return node;
}

function primitiveContent(node: SkeletonNode | undefined, tag: number, what: string): Buffer {
  if (!node || node.tagClass !== UNIVERSAL || node.tagNumber !== tag || node.constructed || !node.content) {
    return notEncrypted(`${what} missing or of the wrong type`);
  }
  return node.content;
}

function primitiveContentOrLarge(node: SkeletonNode | undefined, tag: number, what: string): void {
  if (!node || node.tagClass !== UNIVERSAL || node.tagNumber !== tag || node.constructed) {
    notEncrypted(`${what} missing or of the wrong type`);
  }
}

// --- PGP/MIME ----------------------------------------------------------------------------------------------------

/** What clients customarily write before the first part; any other preamble text is refused. */
const PGP_PREAMBLE = /^This is an OpenPGP\/MIME encrypted message( \(RFC 4880 and 3156\))?\.?$/i;

const ARMOR_LINES = ['-----BEGIN PGP MESSAGE-----', '-----END PGP MESSAGE-----'];

/** RFC 2046 §5.1.1: 1–70 bchars, not ending in a space (so it can be written back quoted as it is). */
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

/**
 * The header fields of the two parts, as RFC 3156 clients write them (Thunderbird and Enigmail, Mailvelope, GpgOL,
 * mutt, KMail, Evolution, PGP Desktop, the gateway's own encryptPgpMime): a part's fields are readable text beside the
 * encrypted data, so each may appear once and only with one of these values (compared without case). Content-Type
 * may name the file (`name`), Content-Disposition is `inline` or `attachment` with at most a `filename`, and
 * Content-Transfer-Encoding is 7bit. Anything else makes the message "not encrypted": the gateway encrypts it.
 */
const PGP_MIME_PARTS = {
  control: {
    type: 'application/pgp-encrypted',
    descriptions: ['PGP/MIME version identification', 'PGP/MIME Versions Identification'],
    fileNames: ['PGPMIME version identification', 'PGPMIME Versions Identification'],
  },
  data: {
    type: 'application/octet-stream',
    descriptions: ['OpenPGP encrypted message', 'PGP/MIME encrypted message'],
    fileNames: [
      'encrypted.asc',
      'msg.asc',
      'message.asc',
      'openpgp-encrypted-message.asc',
      'encrypted.eml.pgp',
      'Message.pgp',
    ],
  },
} as const;
type PgpMimePart = (typeof PGP_MIME_PARTS)[keyof typeof PGP_MIME_PARTS];

/** A part's header block holds at most these four fields, once each. */
const MAX_PART_FIELDS = 4;

/**
 * The armor Version lines of implementations that still write one (GnuPG before 2.1, OpenPGP.js before 5, Bouncy
 * Castle, PGP Desktop): a known name, a version number and at most a one-word platform, no free text.
 */
const ARMOR_VERSION =
  /^Version: (GnuPG(\/MacGPG2)?|OpenPGP\.js|BCPG( C#)?|Keybase OpenPGP|Mailvelope|FlowCrypt|OpenKeychain|PGP Desktop|PGP Universal|Encryption Desktop) v?[0-9][0-9A-Za-z.-]{0,20}( \([A-Za-z0-9/]{1,16}\))?$/;

/** Checks the body of a multipart/encrypted message; its boundary, for the rebuilt Content-Type. */
async function checkPgpMimeBody(parameters: Map<string, string>, lines: LineReader): Promise<string> {
  if (parameters.get('protocol')?.toLowerCase() !== 'application/pgp-encrypted') {
    notEncrypted('multipart/encrypted without protocol="application/pgp-encrypted"');
  }
  const boundary = parameters.get('boundary');
  if (!boundary || !BOUNDARY.test(boundary)) notEncrypted('multipart/encrypted without a usable boundary');
  const delimiter = `--${boundary}`;
  // A delimiter that is also an armor line would be read as both (and renamed with the delimiters when passed on).
  if (ARMOR_LINES.some((line) => line === delimiter || line === `${delimiter}--`)) {
    notEncrypted('a boundary that reads as an armor line');
  }
  const isDelimiter = (line: string) => line.trimEnd() === delimiter;
  const isClose = (line: string) => line.trimEnd() === `${delimiter}--`;

  // Preamble: blank lines and the customary sentence only.
  for (let count = 0; ; count++) {
    const line = await nextLine(lines, 'the first part is missing');
    if (isDelimiter(line)) break;
    if (line.trim() !== '' && !PGP_PREAMBLE.test(line.trim())) notEncrypted('text before the encrypted parts');
    if (count >= MAX_TEXT_LINES) notEncrypted(`more than ${MAX_TEXT_LINES} lines before the encrypted parts`);
  }
  // Part 1: application/pgp-encrypted, "Version: 1".
  const control = await readHeaderBlock(lines, MAX_PART_FIELDS, MAX_PART_HEADER_LINES);
  if (contentTypeOf(control)?.value !== 'application/pgp-encrypted') {
    notEncrypted('the first part is not application/pgp-encrypted');
  }
  checkPartFields(control, PGP_MIME_PARTS.control, 'first');
  for (let count = 0; ; count++) {
    const line = await nextLine(lines, 'the second part is missing');
    if (isDelimiter(line)) break;
    if (line.trim() !== '' && !/^Version:\s*1$/i.test(line.trim())) notEncrypted('text in the control part');
    if (count >= MAX_TEXT_LINES) notEncrypted(`more than ${MAX_TEXT_LINES} lines in the control part`);
  }
  // Part 2: application/octet-stream holding one armored OpenPGP message.
  const data = await readHeaderBlock(lines, MAX_PART_FIELDS, MAX_PART_HEADER_LINES);
  if (contentTypeOf(data)?.value !== 'application/octet-stream') {
    notEncrypted('the second part is not application/octet-stream');
  }
  checkPartFields(data, PGP_MIME_PARTS.data, 'second');
  await checkArmoredMessage(lines, isClose, isDelimiter);
  // Epilogue: nothing but blank lines.
  let count = 0;
  for (let line = await lines.next(); line !== undefined; line = await lines.next()) {
    if (line.trim() !== '') notEncrypted('text after the encrypted parts');
    if (++count > MAX_TEXT_LINES) notEncrypted(`more than ${MAX_TEXT_LINES} lines after the encrypted parts`);
  }
  return boundary as string;
}

/** Every field of a part one of PGP_MIME_PARTS allows, with an allowed value. */
function checkPartFields(headers: Map<string, string[]>, part: PgpMimePart, which: string): void {
  const listed = (values: readonly string[], value: string | undefined) =>
    value !== undefined && values.some((v) => v.toLowerCase() === value.toLowerCase());
  for (const [name, values] of headers) {
    if (values.length > 1) notEncrypted(`${name.slice(0, 40)} given more than once in the ${which} part`);
    const value = values[0] as string;
    let allowed = false;
    if (name === 'content-type') {
      const type = strictStructuredValue(value);
      allowed = type?.value === part.type && onlyParameter(type.parameters, 'name', part.fileNames);
    } else if (name === 'content-disposition') {
      const disposition = strictStructuredValue(value);
      allowed =
        (disposition?.value === 'inline' || disposition?.value === 'attachment') &&
        onlyParameter(disposition.parameters, 'filename', part.fileNames);
    } else if (name === 'content-description') {
      allowed = listed(part.descriptions, value);
    } else if (name === 'content-transfer-encoding') {
      allowed = value.toLowerCase() === '7bit';
    }
    // The value is not quoted in the reason: it may be the very text that must not leave.
    if (!allowed) notEncrypted(`a ${name.slice(0, 40)} field in the ${which} part that no OpenPGP client writes`);
  }
}

/** No parameter, or only `name` with one of `values` (without case). */
function onlyParameter(parameters: Map<string, string>, name: string, values: readonly string[]): boolean {
  for (const [key, value] of parameters) {
    if (key !== name || !values.some((v) => v.toLowerCase() === value.toLowerCase())) return false;
  }
  return true;
}

/** RFC 2045 §5.1 token: no space, control or tspecial. */
const TOKEN = "[A-Za-z0-9!#$%&'*+.^_`{|}~-]+";
/** `type/subtype` or `disposition`, then `; name=value` parameters (token or quoted string without escapes), all of it. */
const STRICT_STRUCTURED = new RegExp(
  `^(${TOKEN}(?:/${TOKEN})?)((?:\\s*;\\s*${TOKEN}=(?:"[^"\\\\]*"|${TOKEN}))*)\\s*;?$`,
);
const STRICT_PARAMETER = new RegExp(`(${TOKEN})=(?:"([^"]*)"|(${TOKEN}))`, 'g');

/**
 * A structured field value read strictly: every character accounted for, no comments, no escapes. Undefined when it
 * holds anything else (such as text after the parameters, which contentTypeOf passes over).
 */
function strictStructuredValue(field: string): { value: string; parameters: Map<string, string> } | undefined {
  const match = STRICT_STRUCTURED.exec(field.trim());
  if (!match) return undefined;
  const parameters = new Map<string, string>();
  for (const [, name, quoted, token] of (match[2] as string).matchAll(STRICT_PARAMETER)) {
    const key = (name as string).toLowerCase();
    if (parameters.has(key)) return undefined;
    parameters.set(key, quoted ?? (token as string));
  }
  return { value: (match[1] as string).toLowerCase(), parameters };
}

async function checkArmoredMessage(
  lines: LineReader,
  isClose: (line: string) => boolean,
  isDelimiter: (line: string) => boolean,
): Promise<void> {
  let line = await nextLine(lines, 'the armored message is missing');
  for (let count = 0; line.trim() === ''; count++) {
    if (count >= MAX_TEXT_LINES) notEncrypted(`more than ${MAX_TEXT_LINES} blank lines before the armored message`);
    line = await nextLine(lines, 'the armored message is missing');
  }
  if (line.trimEnd() !== '-----BEGIN PGP MESSAGE-----') notEncrypted('text before the armored message');
  // Armor headers: at most one Version line of a known implementation (free text would travel in clear), then one
  // blank line.
  let versionLines = 0;
  for (;;) {
    line = await nextLine(lines, 'the armored message is cut off');
    if (line.trim() === '') break;
    if (!ARMOR_VERSION.test(line.trimEnd()) || ++versionLines > 1) {
      notEncrypted('an armor header other than one Version line of a known implementation');
    }
  }
  const walker = new OpenPgpPacketWalker();
  const base64 = new Base64Decoder((bytes) => walker.push(bytes));
  // The data a batch of lines at a time, up to the line that ends it: a line at a time (an await each), ten million
  // short or blank armor lines took 10 s of the check.
  for (;;) {
    const batch = await lines.nextBatch();
    if (batch === undefined) notEncrypted('the armored message is cut off');
    const batchLines = batch as string[];
    const end = batchLines.findIndex(endsArmorData);
    if (end < 0) {
      base64.lines(batchLines);
      continue;
    }
    base64.lines(batchLines.slice(0, end));
    lines.unread(batchLines.slice(end + 1));
    line = (batchLines[end] as string).trimEnd();
    break;
  }
  // The optional CRC-24 line ends the data (RFC 9580 §6.1).
  if (line !== ARMOR_END) {
    const end = (await nextLine(lines, 'the armored message is cut off')).trimEnd();
    if (end !== ARMOR_END) notEncrypted('text after the armor checksum');
  }
  base64.end();
  walker.end();
  for (let count = 0; ; count++) {
    line = await nextLine(lines, 'the closing boundary is missing');
    if (isClose(line)) return;
    if (isDelimiter(line)) notEncrypted('a third part');
    if (line.trim() !== '') notEncrypted('text after the armored message');
    if (count >= MAX_TEXT_LINES) notEncrypted(`more than ${MAX_TEXT_LINES} lines after the armored message`);
  }
}

const ARMOR_END = '-----END PGP MESSAGE-----';
const ARMOR_CHECKSUM = /^=[A-Za-z0-9+/]{4}$/;

/** The armor's END line or its CRC-24 line (trailing white space allowed): the last line of the armored data. */
function endsArmorData(line: string): boolean {
  const first = line.charCodeAt(0);
  if (first !== 45 /* - */ && first !== 61 /* = */) return false;
  const text = line.trimEnd();
  return text === ARMOR_END || ARMOR_CHECKSUM.test(text);
}

// --- lines, header blocks, base64 ----------------------------------------------------------------------------------

/**
 * The message's lines (LF or CRLF stripped) in batches, one per chunk that ends a line; latin1 so that every byte
 * maps to one character.
 */
async function* lineBatches(message: AsyncIterable<Uint8Array>): AsyncGenerator<string[]> {
  let carry = '';
  for await (const chunk of message) {
    const text = carry + Buffer.from(chunk).toString('latin1');
    const parts = text.split('\n');
    carry = parts.pop() as string;
    if (carry.length > MAX_LINE_BYTES) notEncrypted('a line longer than 64 KiB');
    if (parts.length === 0) continue;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as string;
      if (part.length > MAX_LINE_BYTES) notEncrypted('a line longer than 64 KiB');
      if (part.endsWith('\r')) parts[i] = part.slice(0, -1);
    }
    yield parts;
  }
  if (carry !== '') yield [carry.endsWith('\r') ? carry.slice(0, -1) : carry];
}

/** The lines one at a time (header blocks, PGP/MIME) or, for a long body, the rest of a batch at once. */
class LineReader {
  readonly #batches: AsyncGenerator<string[]>;
  #batch: string[] = [];
  #at = 0;

  constructor(message: AsyncIterable<Uint8Array>) {
    this.#batches = lineBatches(message);
  }

  /** The next line; undefined at the end of the message. */
  async next(): Promise<string | undefined> {
    if (!(await this.#fill())) return undefined;
    return this.#batch[this.#at++];
  }

  /** Puts `rest` (the end of the batch nextBatch gave) back, to be read next. */
  unread(rest: string[]): void {
    this.#batch = rest;
    this.#at = 0;
  }

  /** The lines of the current batch not yet read, or the next batch; undefined at the end of the message. */
  async nextBatch(): Promise<string[] | undefined> {
    if (!(await this.#fill())) return undefined;
    const rest = this.#at === 0 ? this.#batch : this.#batch.slice(this.#at);
    this.#at = this.#batch.length;
    return rest;
  }

  close(): Promise<unknown> {
    return this.#batches.return(undefined);
  }

  async #fill(): Promise<boolean> {
    while (this.#at >= this.#batch.length) {
      const { value, done } = await this.#batches.next();
      if (done) return false;
      this.#batch = value;
      this.#at = 0;
    }
    return true;
  }
}

async function nextLine(lines: LineReader, missing: string): Promise<string> {
  const line = await lines.next();
  if (line === undefined) return notEncrypted(missing);
  return line;
}

/** Header fields up to the blank line, unfolded, by lower-case name (every occurrence kept). */
async function readHeaderBlock(
  lines: LineReader,
  maxFields = MAX_HEADER_FIELDS,
  maxLines = MAX_HEADER_LINES,
): Promise<Map<string, string[]>> {
  const fields: string[] = [];
  for (let count = 0; ; count++) {
    const line = await nextLine(lines, 'the header block does not end');
    if (line === '') break;
    if (count >= maxLines) notEncrypted(`a header block of more than ${maxLines} lines`);
    if (/^[ \t]/.test(line) && fields.length > 0) fields[fields.length - 1] += ` ${line.trim()}`;
    else fields.push(line);
    if (fields.length > maxFields) notEncrypted('too many header fields');
  }
  const byName = new Map<string, string[]>();
  for (const field of fields) {
    const colon = field.indexOf(':');
    if (colon <= 0) notEncrypted('a header line that is no field');
    const name = field.slice(0, colon).trim().toLowerCase();
    byName.set(name, [...(byName.get(name) ?? []), field.slice(colon + 1).trim()]);
  }
  return byName;
}

/** The one value of a field; refuses a field given twice (two readers could pick different ones). */
function single(headers: Map<string, string[]>, name: string): string | undefined {
  const values = headers.get(name);
  if (values && values.length > 1) notEncrypted(`${name} given more than once`);
  return values?.[0];
}

/** `type/subtype` (lower case) and its parameters (RFC 2045 §5.1: token or quoted-string values). */
function contentTypeOf(headers: Map<string, string[]>): { value: string; parameters: Map<string, string> } | undefined {
  const values = headers.get('content-type');
  if (values?.length !== 1) return undefined;
  const raw = (values[0] as string).replace(/\([^()]*\)/g, '');
  const semicolon = raw.indexOf(';');
  const value = (semicolon < 0 ? raw : raw.slice(0, semicolon)).trim().toLowerCase();
  const parameters = new Map<string, string>();
  const rest = semicolon < 0 ? '' : raw.slice(semicolon + 1);
  const parameter = /\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;]*))\s*(?:;|$)/gy;
  for (let match = parameter.exec(rest); match; match = parameter.exec(rest)) {
    const name = (match[1] as string).toLowerCase();
    if (parameters.has(name)) notEncrypted(`Content-Type parameter ${name} given twice`);
    parameters.set(name, match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : (match[3] as string));
    if (parameter.lastIndex >= rest.length) break;
  }
  return { value, parameters };
}

const BASE64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64_ALPHABET_ONLY = /^[A-Za-z0-9+/]*$/;

/** base64 lines → bytes, strictly: only the alphabet, padding only at the very end. */
class Base64Decoder {
  private carry = '';
  private padded = false;
  private readonly sink: (bytes: Buffer) => void;
  constructor(sink: (bytes: Buffer) => void) {
    this.sink = sink;
  }

  line(line: string): void {
    this.lines([line]);
  }

  /** Checks each line in order, then decodes them together (whole groups; the rest waits for the next lines). */
  lines(lines: readonly string[]): void {
    const joined = lines.join('');
    // The usual batch: alphabet only, no blanks, no padding. Then every line passes the rules below unchanged, and
    // one test of the batch replaces one per line.
    if (!this.padded && BASE64_ALPHABET_ONLY.test(joined)) {
      this.decode(this.carry + joined);
      return;
    }
    const texts = [this.carry];
    for (const line of lines) {
      const text = line.trim();
      if (text === '') continue;
      if (this.padded) notEncrypted('base64 after its padding');
      if (!BASE64_LINE.test(text)) notEncrypted('a line that is not base64');
      if (text.endsWith('=')) this.padded = true;
      texts.push(text);
    }
    this.decode(texts.join(''));
  }

  /** Decodes the whole groups of `all`; what is left over waits for the next lines. */
  private decode(all: string): void {
    const whole = all.length - (all.length % 4);
    this.carry = all.slice(whole);
    if (whole > 0) this.sink(Buffer.from(all.slice(0, whole), 'base64'));
  }

  end(): void {
    if (this.carry !== '') notEncrypted('base64 that does not end on a whole group');
  }
}
