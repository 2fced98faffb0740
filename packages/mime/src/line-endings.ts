// Mail wants CRLF line ends (RFC 5322 §2.1); templates, openpgp's armor and messages stored by other tools often have
// bare LF. Two rules for bytes, on purpose: what is signed is made canonical entirely (a lone CR too), what is
// verified only gets its bare LF fixed, since a lone CR the signer kept is part of what the signature covers.

const CRLF = Buffer.from('\r\n');

/** Text with every LF or CRLF as CRLF. */
export function toCrlf(text: string): string {
  return text.replace(/\r?\n/g, '\r\n');
}

/** Bytes with every bare LF as CRLF; existing CRLF and lone CR are kept. `bytes` itself when there is no bare LF. */
export function bareLfToCrlf(bytes: Buffer): Buffer {
  return withCrlf(bytes, false);
}

/**
 * The entity with every line end (CRLF, bare LF, lone CR) as CRLF: what an S/MIME signature covers (RFC 8551
 * §3.1.1). `entity` itself when it is canonical already.
 */
export function canonicalLineEnds(entity: Buffer): Buffer {
  return withCrlf(entity, true);
}

/**
 * `bytes` with each bare LF (and, with `loneCr`, each lone CR) made a CRLF, into one buffer: the line ends to fix are
 * counted first, dense ones then written byte by byte, sparse ones a line at a time. A subarray per line,
 * concatenated, or a regular expression over the bytes as text, took 1.7–4.3 s for a stranger's ten million bare LFs
 * (31 MB) on a synchronous walk or encrypt's event loop; this takes 0.2–0.3 s.
 */
function withCrlf(bytes: Buffer, loneCr: boolean): Buffer {
  const added = lineEndsToFix(bytes, loneCr);
  if (added === 0) return bytes;
  const out = Buffer.allocUnsafe(bytes.length + added);
  let j = 0;
  if (added * 16 > bytes.length) {
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i] as number;
      if (byte === 0x0a && (i === 0 || bytes[i - 1] !== 0x0d)) out[j++] = 0x0d;
      out[j++] = byte;
      if (loneCr && byte === 0x0d && bytes[i + 1] !== 0x0a) out[j++] = 0x0a;
    }
    return out;
  }
  let start = 0;
  let cr = loneCr ? bytes.indexOf(0x0d) : -1;
  let lf = bytes.indexOf(0x0a);
  while (cr !== -1 || lf !== -1) {
    if (lf === -1 || (cr !== -1 && cr < lf)) {
      if (bytes[cr + 1] !== 0x0a) {
        j += bytes.copy(out, j, start, cr + 1);
        out[j++] = 0x0a;
        start = cr + 1;
      }
      cr = bytes.indexOf(0x0d, cr + 1);
    } else {
      if (lf === 0 || bytes[lf - 1] !== 0x0d) {
        j += bytes.copy(out, j, start, lf);
        j += CRLF.copy(out, j);
        start = lf + 1;
      }
      lf = bytes.indexOf(0x0a, lf + 1);
    }
  }
  bytes.copy(out, j, start);
  return out;
}

/**
 * How many bare LFs (and, with `loneCr`, lone CRs) the bytes hold: each becomes a CRLF, one byte longer. Found with
 * indexOf while line ends are sparse (normal mail), byte by byte once they are more than one in 16 bytes (indexOf
 * costs then 3–4 times more).
 */
function lineEndsToFix(bytes: Buffer, loneCr: boolean): number {
  const dense = bytes.length / 16;
  let lineEnds = 0;
  let count = 0;
  for (let i = bytes.indexOf(0x0a); i !== -1; i = bytes.indexOf(0x0a, i + 1)) {
    if (++lineEnds > dense) return lineEndsToFixByteByByte(bytes, loneCr);
    if (i === 0 || bytes[i - 1] !== 0x0d) count++;
  }
  if (!loneCr) return count;
  for (let i = bytes.indexOf(0x0d); i !== -1; i = bytes.indexOf(0x0d, i + 1)) {
    if (++lineEnds > dense) return lineEndsToFixByteByByte(bytes, loneCr);
    if (bytes[i + 1] !== 0x0a) count++;
  }
  return count;
}

function lineEndsToFixByteByByte(bytes: Buffer, loneCr: boolean): number {
  let count = 0;
  let previous = 0;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i] as number;
    if (byte === 0x0a) {
      if (previous !== 0x0d) count++;
    } else if (loneCr && previous === 0x0d) count++;
    previous = byte;
  }
  return loneCr && previous === 0x0d ? count + 1 : count;
}

/** The lines, each ending in CRLF (a header-like block such as the fields of a delivery-status part). */
export function crlfLines(lines: readonly string[]): string {
  return `${lines.join('\r\n')}\r\n`;
}
