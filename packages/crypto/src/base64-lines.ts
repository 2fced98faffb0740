// Base64 in lines ending in CRLF, encoded as the bytes arrive: 76 characters for MIME (RFC 2045), 64 for OpenPGP
// armor (RFC 4880 §6.3). Only a partial line of input is held between calls. Each call produces one output buffer
// (optionally with text before and after the lines): the base64 of all its pieces is written straight into it, with
// no joined copy of the input and no second buffer for the lines, then spread out into lines in place. Fresh memory is
// the expensive part of encoding (each new page costs a page fault), so one allocation per call is the aim.

const EMPTY = Buffer.alloc(0);
/**
 * Input bytes per toString call: a base64 string above V8's largest regular object (128 KiB) goes to the large
 * object space and cost four times as much per byte (measured with 128 KiB of input).
 */
const ENCODE_STEP = 48 * 1024;

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
    let total = this.#pending.length;
    for (const piece of pieces) total += piece.length;
    const encodeBytes = last ? total : total - (total % this.#lineBytes);
    const textLength = Math.ceil(encodeBytes / 3) * 4;
    const lineCount = Math.ceil(textLength / this.#lineChars);
    const linesEnd = head.length + textLength + lineCount * 2;
    const out = Buffer.allocUnsafe(linesEnd + tail.length);
    head.copy(out, 0);
    // The text goes at the end of the lines' room; moving the lines to their places front to back never overtakes it.
    const textStart = head.length + lineCount * 2;
    this.#pending = this.#encodeInto(out, textStart, encodeBytes, pieces);
    const lineChars = this.#lineChars;
    for (let line = 0; line < lineCount; line++) {
      const from = textStart + line * lineChars;
      const to = head.length + line * (lineChars + 2);
      const length = Math.min(lineChars, linesEnd - from);
      out.copyWithin(to, from, from + length);
      out[to + length] = 13;
      out[to + length + 1] = 10;
    }
    tail.copy(out, linesEnd);
    return out;
  }

  /** Writes the base64 of the first `count` bytes of held bytes + pieces at `at`; returns the bytes after them. */
  #encodeInto(out: Buffer, at: number, count: number, pieces: readonly Buffer[]): Buffer {
    const carry = this.#carry;
    let carried = 0;
    let remaining = count;
    let position = at;
    const rest: Buffer[] = [];
    for (let index = -1; index < pieces.length; index++) {
      const piece = index < 0 ? this.#pending : (pieces[index] as Buffer);
      const usable = Math.min(piece.length, remaining);
      let offset = 0;
      if (carried > 0) {
        while (carried < 3 && offset < usable) carry[carried++] = piece[offset++] as number;
        if (carried === 3) {
          position += out.write(carry.toString('base64'), position, 'latin1');
          carried = 0;
        }
      }
      const whole = offset + Math.floor((usable - offset) / 3) * 3;
      for (; offset < whole; offset += ENCODE_STEP) {
        const end = Math.min(offset + ENCODE_STEP, whole);
        position += out.write(piece.toString('base64', offset, end), position, 'latin1');
      }
      for (offset = whole; offset < usable; offset++) carry[carried++] = piece[offset] as number;
      remaining -= usable;
      if (usable < piece.length) rest.push(piece.subarray(usable));
    }
    // Only the last line of the data ends in a partial triplet (with padding).
    if (carried > 0) out.write(carry.toString('base64', 0, carried), position, 'latin1');
    return rest.length === 0 ? EMPTY : Buffer.concat(rest); // under one line: a small copy
  }
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
