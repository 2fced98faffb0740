// Mail wants CRLF line ends (RFC 5322 §2.1); templates, openpgp's armor and messages stored by other tools often have
// bare LF. Two rules for bytes, on purpose: what is signed is made canonical entirely (a lone CR too), what is
// verified only gets its bare LF fixed, since a lone CR the signer kept is part of what the signature covers.

const CRLF = Buffer.from('\r\n');

/** Text with every LF or CRLF as CRLF. */
export function toCrlf(text: string): string {
  return text.replace(/\r?\n/g, '\r\n');
}

/**
 * Bytes with every bare LF as CRLF; existing CRLF and lone CR are kept. `bytes` itself when there is no bare LF.
 *
 * Into one buffer: a subarray per line, concatenated, cost 0.4 µs a line, so a stranger's 31 MB of three-byte lines
 * (ten million bare LFs) took 3.5–4.3 s of a synchronous walk (scan's, the verifier's). Short lines are copied byte by
 * byte (0.2 s for those), longer ones a line at a time.
 */
export function bareLfToCrlf(bytes: Buffer): Buffer {
  let bare = 0;
  for (let i = bytes.indexOf(0x0a); i !== -1; i = bytes.indexOf(0x0a, i + 1)) {
    if (i === 0 || bytes[i - 1] !== 0x0d) bare++;
  }
  if (bare === 0) return bytes;
  const out = Buffer.allocUnsafe(bytes.length + bare);
  let j = 0;
  if (bare * 16 > bytes.length) {
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i] as number;
      if (byte === 0x0a && (i === 0 || bytes[i - 1] !== 0x0d)) out[j++] = 0x0d;
      out[j++] = byte;
    }
    return out;
  }
  let start = 0;
  for (let i = bytes.indexOf(0x0a); i !== -1; i = bytes.indexOf(0x0a, i + 1)) {
    if (i > 0 && bytes[i - 1] === 0x0d) continue;
    j += bytes.copy(out, j, start, i);
    j += CRLF.copy(out, j);
    start = i + 1;
  }
  bytes.copy(out, j, start);
  return out;
}

/**
 * The entity with every line end (CRLF, bare LF, lone CR) as CRLF: what an S/MIME signature covers (RFC 8551
 * §3.1.1). `entity` itself when it is canonical already.
 *
 * As bareLfToCrlf, into one buffer: a regular expression over the entity as Latin-1 text took 1.7–2.8 s for a
 * stranger's ten million bare LFs (encrypt's event loop, on what a stranger's ciphertext opened to). The line ends to
 * fix are counted first; dense ones are written byte by byte, sparse ones a line at a time.
 */
export function canonicalLineEnds(entity: Buffer): Buffer {
  if (!/\r(?!\n)|(?<!\r)\n/.test(entity.toString('latin1'))) return entity;
  const added = lineEndsToFix(entity);
  const out = Buffer.allocUnsafe(entity.length + added);
  let j = 0;
  if (added * 16 > entity.length) {
    for (let i = 0; i < entity.length; i++) {
      const byte = entity[i] as number;
      if (byte === 0x0a && (i === 0 || entity[i - 1] !== 0x0d)) out[j++] = 0x0d;
      out[j++] = byte;
      if (byte === 0x0d && entity[i + 1] !== 0x0a) out[j++] = 0x0a;
    }
    return out;
  }
  let start = 0;
  let cr = entity.indexOf(0x0d);
  let lf = entity.indexOf(0x0a);
  while (cr !== -1 || lf !== -1) {
    if (lf === -1 || (cr !== -1 && cr < lf)) {
      if (entity[cr + 1] !== 0x0a) {
        j += entity.copy(out, j, start, cr + 1);
        out[j++] = 0x0a;
        start = cr + 1;
      }
      cr = entity.indexOf(0x0d, cr + 1);
    } else {
      if (lf === 0 || entity[lf - 1] !== 0x0d) {
        j += entity.copy(out, j, start, lf);
        j += CRLF.copy(out, j);
        start = lf + 1;
      }
      lf = entity.indexOf(0x0a, lf + 1);
    }
  }
  entity.copy(out, j, start);
  return out;
}

/**
 * How many bare LFs and lone CRs the bytes hold: each becomes a CRLF, one byte longer. Found with indexOf while line
 * ends are sparse (normal mail), byte by byte once they are more than one in 16 bytes (indexOf costs then 3–4 times
 * more).
 */
function lineEndsToFix(bytes: Buffer): number {
  const dense = bytes.length / 16;
  let lineEnds = 0;
  let count = 0;
  for (let i = bytes.indexOf(0x0a); i !== -1; i = bytes.indexOf(0x0a, i + 1)) {
    if (++lineEnds > dense) return lineEndsToFixByteByByte(bytes);
    if (i === 0 || bytes[i - 1] !== 0x0d) count++;
  }
  for (let i = bytes.indexOf(0x0d); i !== -1; i = bytes.indexOf(0x0d, i + 1)) {
    if (++lineEnds > dense) return lineEndsToFixByteByByte(bytes);
    if (bytes[i + 1] !== 0x0a) count++;
  }
  return count;
}

function lineEndsToFixByteByByte(bytes: Buffer): number {
  let count = 0;
  let previous = 0;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i] as number;
    if (byte === 0x0a) {
      if (previous !== 0x0d) count++;
    } else if (previous === 0x0d) count++;
    previous = byte;
  }
  return previous === 0x0d ? count + 1 : count;
}

/** The lines, each ending in CRLF (a header-like block such as the fields of a delivery-status part). */
export function crlfLines(lines: readonly string[]): string {
  return `${lines.join('\r\n')}\r\n`;
}
