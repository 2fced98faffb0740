// The header block of a message or MIME entity: where it ends, its fields (unfolded for reading, raw for writing them
// back byte for byte), read from a stream without buffering the body. Header bytes are handled as Latin-1 strings so
// that 8-bit text (raw UTF-8 in a Subject) goes in and out unchanged.
import { Readable } from 'node:stream';

export interface HeaderField {
  /** The name as written. */
  name: string;
  /** Lower-case name, for comparisons. */
  key: string;
  /** The value unfolded (CRLF + whitespace → the whitespace), without the leading space. */
  value: string;
  /** The field's lines as written, joined with CRLF, without the final line end. */
  raw: string;
}

export interface HeaderEnd {
  /** Length of the header block, up to and including the line break of its last line (not the blank line). */
  headerLength: number;
  /** Where the body starts: just after the blank line. */
  bodyStart: number;
}

export class HeaderBlockError extends Error {
  readonly code = 'MIME_HEADER_TOO_LARGE';
}

/** splitMessage refuses header blocks longer than this (a message is not a header). */
export const MAX_HEADER_BYTES = 1024 * 1024;

/** readHeaderBlock keeps at most this much (a DSN returns the original's header block, not a megabyte of it). */
export const MAX_RETURNED_HEADER_BYTES = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;

/**
 * Where the header block in `bytes` ends: at the first empty line, whether its line breaks are CRLF or bare LF. A
 * blank first line means no header fields. Undefined while no empty line has come.
 */
export function findHeaderEnd(bytes: Buffer): HeaderEnd | undefined {
  if (bytes[0] === LF) return { headerLength: 0, bodyStart: 1 };
  if (bytes[0] === CR && bytes[1] === LF) return { headerLength: 0, bodyStart: 2 };
  for (let i = bytes.indexOf(LF); i !== -1; i = bytes.indexOf(LF, i + 1)) {
    if (bytes[i + 1] === LF) return { headerLength: i + 1, bodyStart: i + 2 };
    if (bytes[i + 1] === CR && bytes[i + 2] === LF) return { headerLength: i + 1, bodyStart: i + 3 };
  }
  return undefined;
}

// Blanks at the end, matched only from the start of their run: /[ \t]+$/ tried again from each blank of a run that
// does not end the text (quadratic: a name of 100,000 blanks and a letter took 4.6 s, a 1 MiB header line minutes).
const TRAILING_BLANKS = /(?<![ \t])[ \t]+$/;

/** Parses a header block (with or without the blank line) into fields; lines that are not fields are dropped. */
export function parseHeaderFields(block: string): HeaderField[] {
  const fields: HeaderField[] = [];
  const lines = block.split(/\r?\n/);
  let current: string[] | undefined;
  const flush = () => {
    if (!current) return;
    const raw = current.join('\r\n');
    const colon = raw.indexOf(':');
    // RFC 5322 §4.5.3 (obs-optional): white space may stand before the colon, and mail clients read `From :` as
    // From; dropping such a line would hide a field from every check that a reader still sees.
    const name = raw.slice(0, colon).replace(TRAILING_BLANKS, '');
    if (colon > 0 && /^[!-9;-~]+$/.test(name)) {
      const value = raw
        .slice(colon + 1)
        .replace(/\r\n(?=[ \t])/g, '')
        .trim();
      fields.push({ name, key: name.toLowerCase(), value, raw });
    }
    current = undefined;
  };
  for (const line of lines) {
    if (/^[ \t]/.test(line) && current) current.push(line);
    else {
      flush();
      if (line !== '') current = [line];
    }
  }
  flush();
  return fields;
}

/**
 * What reading header blocks may cost a walk over a stranger's whole message (its parts, attached messages, what
 * SignedData holds): parsing costs about 0.15–0.35 µs a line whatever the line holds, so 31 MB of three-byte header
 * lines took 1–3 s of one synchronous walk. Real mail has a few hundred fields at the top (a long DKIM/ARC chain and
 * Received list included) and a handful per part: 10,000 parts (clamd's MaxFiles) of five lines each is 50,000.
 */
export interface HeaderBudget {
  /** Header lines (fields and their continuation lines) the walk may still read, in all: taken as blocks are read. */
  linesLeft: number;
  /** The longest header block read, in bytes (each block on its own). */
  readonly maxBlockBytes: number;
}

/** Header lines one walk over a message reads in all (a few tens of ms at most). */
export const MAX_WALK_HEADER_LINES = 100_000;

/** A fresh budget for one walk: MAX_WALK_HEADER_LINES lines in all, blocks of at most MAX_HEADER_BYTES. */
export function headerBudget(lines = MAX_WALK_HEADER_LINES, maxBlockBytes = MAX_HEADER_BYTES): HeaderBudget {
  return { linesLeft: lines, maxBlockBytes };
}

/** A header block beyond what a walk's HeaderBudget has left; nothing of it was parsed. */
export class HeaderBudgetError extends Error {
  readonly code = 'MIME_HEADER_BUDGET_EXCEEDED';
}

/**
 * As splitHeaderBlock, but within `budget`: the block's lines are taken from what it has left. A block longer than
 * its maxBlockBytes or of more lines than are left throws HeaderBudgetError before anything is parsed, and the search
 * for the block's end stops there too (it visits every line break: 31 MB of them took 0.4 s on their own).
 */
export function splitHeaderBlockWithin(bytes: Buffer, budget: HeaderBudget): { fields: HeaderField[]; body: Buffer } {
  const end = headerEndWithin(bytes, budget);
  budget.linesLeft -= end.lines;
  return {
    fields: parseHeaderFields(bytes.subarray(0, end.headerLength).toString('latin1')),
    body: bytes.subarray(end.bodyStart),
  };
}

/**
 * findHeaderEnd looking no further than `maxBytes` (and the blank line after them): undefined when the block is
 * longer. Without an empty line all of `bytes` is the block. For a stranger's header that joins another block (what
 * the gateway decrypted joins the outer header): the search costs at most `maxBytes`, however long the entity.
 */
export function findHeaderEndWithin(bytes: Buffer, maxBytes: number): HeaderEnd | undefined {
  try {
    const { headerLength, bodyStart } = headerEndWithin(bytes, headerBudget(Number.POSITIVE_INFINITY, maxBytes));
    return { headerLength, bodyStart };
  } catch (err) {
    if (err instanceof HeaderBudgetError) return undefined;
    throw err;
  }
}

/** findHeaderEnd counting lines and stopping at the budget; without an empty line it is all header. */
function headerEndWithin(bytes: Buffer, budget: HeaderBudget): HeaderEnd & { lines: number } {
  if (bytes[0] === LF) return { headerLength: 0, bodyStart: 1, lines: 0 };
  if (bytes[0] === CR && bytes[1] === LF) return { headerLength: 0, bodyStart: 2, lines: 0 };
  const tooLong = () => new HeaderBudgetError(`a header block longer than ${budget.maxBlockBytes} bytes`);
  const tooMany = () => new HeaderBudgetError(`more than ${budget.linesLeft} header lines left to read`);
  // The block's last line break, and the blank line after it, lie within these bytes when it is not too long.
  const searched = bytes.subarray(0, budget.maxBlockBytes + 3);
  let lines = 0;
  for (let i = searched.indexOf(LF); i !== -1; i = searched.indexOf(LF, i + 1)) {
    if (++lines > budget.linesLeft) throw tooMany();
    if (i + 1 > budget.maxBlockBytes) throw tooLong();
    if (bytes[i + 1] === LF) return { headerLength: i + 1, bodyStart: i + 2, lines };
    if (bytes[i + 1] === CR && bytes[i + 2] === LF) return { headerLength: i + 1, bodyStart: i + 3, lines };
  }
  if (bytes.length > budget.maxBlockBytes) throw tooLong();
  // All header: a last line without its line break counts too.
  if (bytes.length > 0 && bytes[bytes.length - 1] !== LF && ++lines > budget.linesLeft) throw tooMany();
  return { headerLength: bytes.length, bodyStart: bytes.length, lines };
}

/** The fields and body of a message or entity held in memory. Without an empty line it is all header. */
export function splitHeaderBlock(bytes: Buffer): { fields: HeaderField[]; body: Buffer } {
  const end = findHeaderEnd(bytes);
  const headerLength = end?.headerLength ?? bytes.length;
  return {
    fields: parseHeaderFields(bytes.subarray(0, headerLength).toString('latin1')),
    body: bytes.subarray(end?.bodyStart ?? bytes.length),
  };
}

/** The header lines of `fields` as bytes, each ending in CRLF. */
export function headerBytes(fields: readonly HeaderField[]): Buffer {
  return Buffer.from(fields.map((f) => `${f.raw}\r\n`).join(''), 'latin1');
}

/** The value of the first field called `name` (any case). */
export function headerValue(fields: readonly HeaderField[], name: string): string | undefined {
  const key = name.toLowerCase();
  return fields.find((f) => f.key === key)?.value;
}

/** `fields` without those called one of `names` (any case). */
export function withoutFields(fields: readonly HeaderField[], names: readonly string[]): HeaderField[] {
  const keys = new Set(names.map((name) => name.toLowerCase()));
  return fields.filter((f) => !keys.has(f.key));
}

/** The fields by which a sender recognises its message in a DSN quoted to someone outside the agencies. */
export const IDENTIFYING_FIELDS: readonly string[] = [
  'date',
  'from',
  'to',
  'cc',
  'subject',
  'message-id',
  'in-reply-to',
  'references',
];

/** identifyingFields keeps at most this much: a few fields, each of them whole. */
export const MAX_IDENTIFYING_HEADER_BYTES = 8 * 1024;

/**
 * The fields of a header block by which its sender recognises the message (IDENTIFYING_FIELDS, in their order, each
 * kept whole or left out), together at most `maxBytes`. For a DSN to a sender outside the agencies, who may be anyone
 * (a forged MAIL FROM): quoting the whole block (up to MAX_RETURNED_HEADER_BYTES) would send 64 KiB of text the
 * stranger wrote to a victim of its choosing, in the gateway's name.
 */
export function identifyingFields(headerBlock: Buffer, maxBytes = MAX_IDENTIFYING_HEADER_BYTES): Buffer {
  const kept: HeaderField[] = [];
  let size = 0;
  for (const field of parseHeaderFields(headerBlock.toString('latin1'))) {
    if (!IDENTIFYING_FIELDS.includes(field.key)) continue;
    const length = field.raw.length + 2;
    if (size + length > maxBytes) continue;
    kept.push(field);
    size += length;
  }
  return headerBytes(kept);
}

/** The first well-formed Message-ID (with its angle brackets) of a header block, for In-Reply-To and References. */
export function messageIdOf(headerBlock: Buffer): string | undefined {
  for (const field of parseHeaderFields(headerBlock.toString('latin1'))) {
    if (field.key !== 'message-id') continue;
    const id = /^(<[^<>\s]+>)/.exec(field.value)?.[1];
    if (id) return id;
  }
  return undefined;
}

export interface SplitMessage {
  fields: HeaderField[];
  /** Everything after the blank line that ends the header block. */
  body: Readable;
}

/**
 * Reads `source` up to the end of the header block and returns the parsed fields and the rest as a stream. A message
 * without a blank line is all header and has an empty body; a header block over `maxHeaderBytes` is refused
 * (HeaderBlockError).
 */
export async function splitMessage(source: Readable, maxHeaderBytes = MAX_HEADER_BYTES): Promise<SplitMessage> {
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<unknown>;
  const { head, end } = await readHead(iterator, maxHeaderBytes);
  // The bound holds also when the block's end came in the chunk that took it past the bound (one large read).
  if (end && end.headerLength <= maxHeaderBytes) {
    const body = Readable.from(rest(head.subarray(end.bodyStart), iterator, source), { objectMode: false });
    // Destroying the body before it was read must release the source too (the generator never ran its finally).
    body.once('close', () => source.destroy());
    return { fields: parseHeaderFields(head.subarray(0, end.headerLength).toString('latin1')), body };
  }
  if (end || head.length > maxHeaderBytes) {
    source.destroy();
    throw new HeaderBlockError(`header block longer than ${maxHeaderBytes} bytes`);
  }
  return { fields: parseHeaderFields(head.toString('latin1')), body: Readable.from([]) };
}

/**
 * Reads a message's header block (up to, not including, the blank line) and stops reading. Bounded by maxBytes:
 * a longer block is cut at its last complete line.
 */
export async function readHeaderBlock(source: Readable, maxBytes = MAX_RETURNED_HEADER_BYTES): Promise<Buffer> {
  let read: { head: Buffer; end: HeaderEnd | undefined };
  try {
    read = await readHead(source[Symbol.asyncIterator]() as AsyncIterator<unknown>, maxBytes);
  } finally {
    source.destroy();
  }
  const block = read.end ? read.head.subarray(0, read.end.headerLength) : read.head;
  if (block.length <= maxBytes) return block;
  const cut = block.subarray(0, maxBytes);
  return cut.subarray(0, cut.lastIndexOf('\n') + 1);
}

/**
 * Reads chunks until the header block has ended, the source has ended, or more than `maxBytes` came without the
 * end (then `end` is undefined and `head` longer than `maxBytes`).
 */
async function readHead(
  iterator: AsyncIterator<unknown>,
  maxBytes: number,
): Promise<{ head: Buffer; end: HeaderEnd | undefined }> {
  let head: Buffer = Buffer.alloc(0);
  for (;;) {
    const end = findHeaderEnd(head);
    if (end || head.length > maxBytes) return { head, end };
    const chunk = await iterator.next();
    if (chunk.done) return { head, end: undefined };
    // The first chunk as it is: usually it holds the whole header block (and for a small message all of it).
    head = head.length === 0 ? bytesOf(chunk.value) : Buffer.concat([head, bytesOf(chunk.value)]);
  }
}

async function* rest(first: Buffer, iterator: AsyncIterator<unknown>, source: Readable): AsyncGenerator<Buffer> {
  try {
    if (first.length > 0) yield first;
    for (;;) {
      const chunk = await iterator.next();
      if (chunk.done) return;
      yield bytesOf(chunk.value);
    }
  } finally {
    // The consumer stopped early (or failed): release the source (a blob stream holds a database connection).
    source.destroy();
  }
}

/** A chunk as a Buffer: the same bytes, not a copy (Buffer.from of a Uint8Array would copy them). */
function bytesOf(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk);
  const bytes = chunk as Uint8Array;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
