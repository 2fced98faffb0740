// The top-level header block of a message, read from its stream without buffering the body: what encrypt needs to
// tell encrypted from plain mail, to build the inner entity (Content-* fields + body) and the outer headers.
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

export interface SplitMessage {
  fields: HeaderField[];
  /** Everything after the blank line that ends the header block. */
  body: Readable;
}

export class HeaderBlockError extends Error {
  readonly code = 'ENCRYPT_HEADER_TOO_LARGE';
}

/** Header blocks longer than this are refused (a message is not a header). */
export const MAX_HEADER_BYTES = 1024 * 1024;

/**
 * Reads `source` up to the end of the header block and returns the parsed fields and the rest as a stream.
 * A message without a blank line is all header and has an empty body.
 */
export async function splitMessage(source: Readable, maxHeaderBytes = MAX_HEADER_BYTES): Promise<SplitMessage> {
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let head = Buffer.alloc(0);
  for (;;) {
    const end = headerEnd(head);
    if (end) {
      const body = Readable.from(rest(head.subarray(end.bodyStart), iterator, source), { objectMode: false });
      // Destroying the body before it was read must release the source too (the generator never ran its finally).
      body.once('close', () => source.destroy());
      return { fields: parseHeaderFields(head.subarray(0, end.headerLength).toString('latin1')), body };
    }
    if (head.length > maxHeaderBytes) {
      source.destroy();
      throw new HeaderBlockError(`header block longer than ${maxHeaderBytes} bytes`);
    }
    const chunk = await iterator.next();
    if (chunk.done) {
      return { fields: parseHeaderFields(head.toString('latin1')), body: Readable.from([]) };
    }
    head = Buffer.concat([head, Buffer.from(chunk.value)]);
  }
}

async function* rest(first: Buffer, iterator: AsyncIterator<Buffer>, source: Readable): AsyncGenerator<Buffer> {
  try {
    if (first.length > 0) yield first;
    for (;;) {
      const chunk = await iterator.next();
      if (chunk.done) return;
      yield Buffer.from(chunk.value);
    }
  } finally {
    // The consumer stopped early (or failed): release the source (a blob stream holds a database connection).
    source.destroy();
  }
}

function headerEnd(head: Buffer): { headerLength: number; bodyStart: number } | undefined {
  if (head.length === 0) return undefined;
  // A message that starts with a blank line has no header fields.
  if (head.subarray(0, 2).equals(Buffer.from('\r\n'))) return { headerLength: 0, bodyStart: 2 };
  if (head[0] === 0x0a) return { headerLength: 0, bodyStart: 1 };
  const crlf = head.indexOf('\r\n\r\n');
  const lf = head.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { headerLength: crlf, bodyStart: crlf + 4 };
  if (lf >= 0) return { headerLength: lf, bodyStart: lf + 2 };
  return undefined;
}

/** Parses a header block (without the blank line) into fields; lines that are not fields are dropped. */
export function parseHeaderFields(block: string): HeaderField[] {
  const fields: HeaderField[] = [];
  const lines = block.split(/\r?\n/);
  let current: string[] | undefined;
  const flush = () => {
    if (!current) return;
    const raw = current.join('\r\n');
    const colon = raw.indexOf(':');
    const name = raw.slice(0, colon);
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

/** The header lines of `fields` as bytes, each ending in CRLF. */
export function headerBytes(fields: readonly HeaderField[]): Buffer {
  return Buffer.from(fields.map((f) => `${f.raw}\r\n`).join(''), 'latin1');
}

export function fieldValue(fields: readonly HeaderField[], key: string): string | undefined {
  return fields.find((f) => f.key === key)?.value;
}

export type EncryptedForm = 'smime' | 'pgp';

/**
 * Whether a message with these top-level fields is encrypted, and how: S/MIME enveloped-data or
 * authEnveloped-data, or multipart/encrypted (PGP/MIME, RFC 1847/3156). Signed-only S/MIME is not encrypted.
 */
export function encryptedFormOf(fields: readonly HeaderField[]): EncryptedForm | undefined {
  const contentType = (fieldValue(fields, 'content-type') ?? '').toLowerCase();
  if (/^multipart\/encrypted\s*(;|$)/.test(contentType)) return 'pgp';
  if (/^application\/(x-)?pkcs7-mime\s*(;|$)/.test(contentType)) {
    const smimeType = /;\s*smime-type\s*=\s*"?([a-z-]+)"?/.exec(contentType)?.[1];
    if (smimeType === 'enveloped-data' || smimeType === 'authenveloped-data') return 'smime';
  }
  return undefined;
}
