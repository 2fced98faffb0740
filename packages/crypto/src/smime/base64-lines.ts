// Base64 in 76-character lines (RFC 2045), encoded as the bytes arrive: only a partial line (< 57 bytes) is held.

const LINE_BYTES = 57; // 57 input bytes make one 76-character line
const LINE_CHARS = 76;
const EMPTY = Buffer.alloc(0);

function encodeLines(input: Buffer): Buffer {
  const encoded = input.toString('base64');
  const lineCount = Math.ceil(encoded.length / LINE_CHARS);
  const out = Buffer.allocUnsafe(encoded.length + lineCount * 2);
  // Write the base64 text at the end of the output, then move each line to its place, front to back: a line's
  // destination never overtakes the source of a later line. copyWithin is the cheapest per-line move (no views).
  const textStart = lineCount * 2;
  out.write(encoded, textStart, 'latin1');
  for (let line = 0; line < lineCount; line++) {
    const from = textStart + line * LINE_CHARS;
    const to = line * (LINE_CHARS + 2);
    const length = Math.min(LINE_CHARS, out.length - from);
    out.copyWithin(to, from, from + length);
    out[to + length] = 13;
    out[to + length + 1] = 10;
  }
  return out;
}

export interface Base64LineEncoder {
  /** Encodes what completes whole lines; the rest waits for more input. Returns an empty buffer if nothing is ready. */
  push(chunk: Buffer): Buffer;
  /** The last, possibly short, line. */
  end(): Buffer;
}

export function createBase64LineEncoder(): Base64LineEncoder {
  let pending: Buffer = EMPTY;
  return {
    push(chunk) {
      const parts: Buffer[] = [];
      let rest = chunk;
      if (pending.length > 0) {
        const take = Math.min(LINE_BYTES - pending.length, rest.length);
        pending = Buffer.concat([pending, rest.subarray(0, take)]);
        rest = rest.subarray(take);
        if (pending.length < LINE_BYTES) return EMPTY;
        parts.push(encodeLines(pending));
        pending = EMPTY;
      }
      const whole = rest.length - (rest.length % LINE_BYTES);
      if (whole > 0) parts.push(encodeLines(rest.subarray(0, whole)));
      // Copy the tail so a large input chunk is not kept alive by a few bytes of it.
      if (whole < rest.length) pending = Buffer.from(rest.subarray(whole));
      return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    },
    end() {
      const last = pending.length > 0 ? encodeLines(pending) : EMPTY;
      pending = EMPTY;
      return last;
    },
  };
}
