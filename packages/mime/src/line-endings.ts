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
  if (!bytes.includes(0x0a)) return bytes;
  const out: Buffer[] = [];
  let start = 0;
  for (let i = bytes.indexOf(0x0a); i !== -1; i = bytes.indexOf(0x0a, i + 1)) {
    if (i > 0 && bytes[i - 1] === 0x0d) continue;
    out.push(bytes.subarray(start, i), CRLF);
    start = i + 1;
  }
  if (start === 0) return bytes;
  out.push(bytes.subarray(start));
  return Buffer.concat(out);
}

/**
 * The entity with every line end (CRLF, bare LF, lone CR) as CRLF: what an S/MIME signature covers (RFC 8551
 * §3.1.1). `entity` itself when it is canonical already.
 */
export function canonicalLineEnds(entity: Buffer): Buffer {
  if (!/\r(?!\n)|(?<!\r)\n/.test(entity.toString('latin1'))) return entity;
  return Buffer.from(entity.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
}

/** The lines, each ending in CRLF (a header-like block such as the fields of a delivery-status part). */
export function crlfLines(lines: readonly string[]): string {
  return `${lines.join('\r\n')}\r\n`;
}
