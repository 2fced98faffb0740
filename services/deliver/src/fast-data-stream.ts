// nodemailer's DataStream (the DATA phase of every connection: dot-stuffing, bare CR and bare LF made CRLF, the SMTP
// smuggling defence) looks at every byte in a JavaScript loop: at 100 KB it was ~10 % of deliver's CPU. This gives
// its `_transform` the same rules, applied only where they can apply: after each CR, at and after each LF, and at
// the start of the chunk, which Buffer.indexOf finds in native code. Everything else (_flush, the counters nodemailer
// reads) stays the library's. The output is byte for byte the same; fast-data-stream.test.ts compares the two on
// random input cut at random places.
//
// It replaces a method of a class nodemailer does not document, so it is installed only on the exact version and
// the exact `_transform` it was checked against (a hash of its source). Anything else keeps nodemailer's own, which
// is correct, only slower; `installFastDataStream` says which it did.
import { createHash } from 'node:crypto';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream';
import nodemailerPackage from 'nodemailer/package.json' with { type: 'json' };

export const CHECKED_NODEMAILER_VERSION = '10.6.1';
/** sha256 of String(DataStream.prototype._transform) in that version. */
export const CHECKED_TRANSFORM_SHA256 = 'f9011076cfb9b81d6f382bca2d600bc9fe9d40bbe0d4bed9a0563aab27e8d4d5';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const INSERT_LF = Buffer.from('\n');
const INSERT_LF_DOT = Buffer.from('\n.');
const INSERT_CR = Buffer.from('\r');
const INSERT_DOT = Buffer.from('.');

/** nodemailer's own method, kept before any patch (the test compares against it). */
export const nodemailerTransform = DataStream.prototype._transform;

interface DataStreamState {
  inByteCount: number;
  outByteCount: number;
  /** The last byte of the previous chunk; false before the first. */
  lastByte: number | false;
  push(chunk: Buffer): boolean;
}

/** What goes in front of byte `i`, by nodemailer's three rules; `prev` is the byte before it (false: none yet). */
function insertBefore(byte: number, prev: number | false): Buffer | undefined {
  // A bare CR becomes CRLF, and a dot after it is stuffed (a receiver taking a lone CR as a line end must not see
  // "\r.\r" as the end of the data).
  if (prev === CR && byte !== LF) return byte === DOT ? INSERT_LF_DOT : INSERT_LF;
  if (byte === LF && prev !== CR) return INSERT_CR;
  if (byte === DOT && (prev === LF || prev === false)) return INSERT_DOT;
  return undefined;
}

/** nodemailer's DataStream._transform, the same output; `this` is the DataStream. */
export function fastDataStreamTransform(
  this: DataStreamState,
  input: Buffer | string,
  _encoding: BufferEncoding,
  done: (err?: Error | null) => void,
): void {
  if (!input?.length) {
    done();
    return;
  }
  const chunk = typeof input === 'string' ? Buffer.from(input) : input;
  this.inByteCount += chunk.length;
  const length = chunk.length;
  const pieces: Buffer[] = [];
  let outLength = 0;
  let copiedTo = 0;
  /** Positions below this have been looked at. */
  let lookedTo = 0;
  const look = (i: number) => {
    if (i < lookedTo || i >= length) return;
    lookedTo = i + 1;
    const insert = insertBefore(chunk[i] as number, i > 0 ? (chunk[i - 1] as number) : this.lastByte);
    if (!insert) return;
    if (i > copiedTo) {
      pieces.push(chunk.subarray(copiedTo, i));
      outLength += i - copiedTo;
    }
    pieces.push(insert);
    outLength += insert.length;
    copiedTo = i;
  };
  // A rule can only apply at the chunk's start, at an LF, or right after a CR or an LF.
  look(0);
  let nextCr = chunk.indexOf(CR);
  let nextLf = chunk.indexOf(LF);
  while (nextCr !== -1 || nextLf !== -1) {
    const at = nextCr === -1 ? nextLf : nextLf === -1 ? nextCr : Math.min(nextCr, nextLf);
    look(at);
    look(at + 1);
    if (at === nextCr) nextCr = chunk.indexOf(CR, at + 1);
    else nextLf = chunk.indexOf(LF, at + 1);
  }
  if (pieces.length > 0) {
    if (copiedTo < length) {
      pieces.push(chunk.subarray(copiedTo));
      outLength += length - copiedTo;
    }
    this.outByteCount += outLength;
    this.push(Buffer.concat(pieces, outLength));
  } else {
    this.outByteCount += length;
    this.push(chunk);
  }
  this.lastByte = chunk[length - 1] as number;
  done();
}

export type FastDataStreamInstall = 'installed' | 'already' | { skipped: string };

/** Puts fastDataStreamTransform in place of nodemailer's, if nodemailer is the version and code it was checked against. */
export function installFastDataStream(): FastDataStreamInstall {
  const prototype = DataStream.prototype as unknown as { _transform: unknown };
  if (prototype._transform === fastDataStreamTransform) return 'already';
  if (nodemailerPackage.version !== CHECKED_NODEMAILER_VERSION) {
    return { skipped: `nodemailer ${nodemailerPackage.version}, checked against ${CHECKED_NODEMAILER_VERSION}` };
  }
  const hash = createHash('sha256').update(String(nodemailerTransform)).digest('hex');
  if (hash !== CHECKED_TRANSFORM_SHA256) return { skipped: `DataStream._transform changed (sha256 ${hash})` };
  prototype._transform = fastDataStreamTransform;
  return 'installed';
}
