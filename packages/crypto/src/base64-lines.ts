// Base64 in lines ending in CRLF, encoded as the bytes arrive: 76 characters for MIME (RFC 2045), 64 for OpenPGP
// armor (RFC 4880 §6.3). Only a partial line of input is held between calls. Each call produces one output buffer
// (optionally with text before and after the lines): the base64 of all its pieces is written straight into it, with
// no joined copy of the input and no second buffer for the lines, then spread out into lines in place. Fresh memory is
// what encoding costs most on our VMs (a page fault measured ~13 µs, filling 1 MiB ~11 µs), so one allocation per
// call is the aim.

const EMPTY = Buffer.alloc(0);
/**
 * Lines encoded and moved into place at a time. Small batches keep the text in the processor's cache between the
 * toString that writes it and the moves that put it into lines; they also keep every string far below V8's largest
 * regular object (128 KiB: a larger string goes to the large object space and cost four times as much per byte).
 */
const BATCH_LINES = 128;

export interface Base64Write {
  /** Text (already encoded) in front of the lines, e.g. header fields. */
  readonly head?: Buffer;
  /** Also encode the held bytes and end with the final (short, padded) line. */
  readonly last?: boolean;
  /** Text after the lines, e.g. the end of an armor. */
  readonly tail?: Buffer;
}

export class Base64LineWriter {
  readonly #lineBytes: number;
  readonly #lineChars: number;
  /** Input bytes that do not yet fill a line (copied: a large input chunk is not kept alive by them). */
  #pending: Buffer = EMPTY;
  /** Up to two bytes carried across piece boundaries while encoding, so every piece is encoded in whole triplets. */
  readonly #carry = Buffer.alloc(3);

  /** `lineChars`: characters per line, a multiple of 4 (76 for MIME, 64 for OpenPGP armor). */
  constructor(lineChars = 76) {
    if (lineChars <= 0 || lineChars % 4 !== 0) throw new RangeError('base64 lines hold a multiple of 4 characters');
    this.#lineChars = lineChars;
    this.#lineBytes = (lineChars / 4) * 3;
  }

  /** `head`, the base64 lines of the held bytes and `pieces` (whole lines only unless `last`), then `tail`. */
  write(pieces: readonly Buffer[], { head = EMPTY, last = false, tail = EMPTY }: Base64Write = {}): Buffer {
    const lineBytes = this.#lineBytes;
    const lineChars = this.#lineChars;
    let total = this.#pending.length;
    for (const piece of pieces) total += piece.length;
    const encodeBytes = last ? total : total - (total % lineBytes);
    const textLength = Math.ceil(encodeBytes / 3) * 4;
    const lineCount = Math.ceil(textLength / lineChars);
    const linesEnd = head.length + textLength + lineCount * 2;
    const out = Buffer.allocUnsafe(linesEnd + tail.length);
    head.copy(out, 0);
    // Batch by batch: the batch's text goes at the end of its lines' room, then the lines move to their places front
    // to back (a line's destination never overtakes the text of a later line). Small batches keep the text in the
    // processor's cache between writing and moving it.
    const cursor: Cursor = { index: -1, offset: 0 };
    const batchBytes = BATCH_LINES * lineBytes;
    let lineStart = head.length;
    for (let left = encodeBytes; left > 0; ) {
      const bytes = Math.min(left, batchBytes);
      const chars = Math.ceil(bytes / 3) * 4;
      const lines = Math.ceil(chars / lineChars);
      const textStart = lineStart + lines * 2;
      const textEnd = textStart + chars;
      this.#encodeNext(out, textStart, bytes, pieces, cursor);
      for (let line = 0; line < lines; line++) {
        const from = textStart + line * lineChars;
        const to = lineStart + line * (lineChars + 2);
        const length = Math.min(lineChars, textEnd - from);
        out.copyWithin(to, from, from + length);
        out[to + length] = 13;
        out[to + length + 1] = 10;
      }
      lineStart = textEnd;
      left -= bytes;
    }
    this.#pending = this.#restAfter(cursor, pieces);
    tail.copy(out, linesEnd);
    return out;
  }

  /** Writes the base64 of the next `count` bytes of held bytes + pieces at `at` and moves the cursor past them. */
  #encodeNext(out: Buffer, at: number, count: number, pieces: readonly Buffer[], cursor: Cursor): void {
    const carry = this.#carry;
    let carried = 0;
    let position = at;
    for (let remaining = count; remaining > 0; ) {
      const piece = cursor.index < 0 ? this.#pending : (pieces[cursor.index] as Buffer);
      const end = cursor.offset + Math.min(piece.length - cursor.offset, remaining);
      let offset = cursor.offset;
      if (carried > 0) {
        while (carried < 3 && offset < end) carry[carried++] = piece[offset++] as number;
        if (carried === 3) {
          position += out.write(carry.toString('base64'), position, 'latin1');
          carried = 0;
        }
      }
      const whole = offset + Math.floor((end - offset) / 3) * 3;
      if (whole > offset) position += out.write(piece.toString('base64', offset, whole), position, 'latin1');
      for (offset = whole; offset < end; offset++) carry[carried++] = piece[offset] as number;
      remaining -= end - cursor.offset;
      if (end === piece.length) {
        cursor.index++;
        cursor.offset = 0;
      } else {
        cursor.offset = end;
      }
    }
    // Only the last line of the data ends in a partial triplet (with padding); batches are whole triplets.
    if (carried > 0) out.write(carry.toString('base64', 0, carried), position, 'latin1');
  }

  /** The bytes after the cursor (under one line): copied, so a large input chunk is not kept alive by them. */
  #restAfter(cursor: Cursor, pieces: readonly Buffer[]): Buffer {
    const rest: Buffer[] = [];
    for (let index = cursor.index; index < pieces.length; index++) {
      const piece = index < 0 ? this.#pending : (pieces[index] as Buffer);
      const from = index === cursor.index ? cursor.offset : 0;
      if (from < piece.length) rest.push(piece.subarray(from));
    }
    return rest.length === 0 ? EMPTY : Buffer.concat(rest);
  }
}

/** Where encoding stands in the held bytes (index -1) and the pieces of one write. */
interface Cursor {
  index: number;
  offset: number;
}

export interface Base64LineEncoder {
  /** Encodes what completes whole lines; the rest waits for more input. Returns an empty buffer if nothing is ready. */
  push(chunk: Buffer): Buffer;
  /** The last, possibly short, line. */
  end(): Buffer;
}

/** MIME base64 (76-character lines) as a push/end encoder. */
export function createBase64LineEncoder(): Base64LineEncoder {
  const writer = new Base64LineWriter();
  return {
    push: (chunk) => writer.write([chunk]),
    end: () => writer.write([], { last: true }),
  };
}
