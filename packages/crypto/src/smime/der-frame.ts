// DER framing of already-encoded parts: the per-message structures (a RecipientInfo around a fresh encrypted key)
// are frames around constant parts that asn1js encodes once, so encoding a message costs concatenation, not a
// re-encoding of the whole tree (which took longer than the RSA operation for small messages).

/** Octets of the identifier and the definite length of an element with `length` content octets. */
function headerLength(length: number): number {
  if (length < 0x80) return 2;
  if (length < 0x100) return 3;
  if (length < 0x10000) return 4;
  if (length < 0x1000000) return 5;
  throw new RangeError('DER element too long');
}

/** Writes the identifier and length octets at the start of `out`; returns where the content starts. */
function writeHeader(out: Buffer, tag: number, length: number): number {
  const size = headerLength(length);
  out[0] = tag;
  if (size === 2) {
    out[1] = length;
  } else {
    out[1] = 0x80 | (size - 2); // long form: the count of length octets, then the length big-endian
    for (let at = size - 1, rest = length; at >= 2; at--, rest >>>= 8) out[at] = rest & 0xff;
  }
  return size;
}

/** One DER element with the given identifier octet around the concatenated parts (one allocation). */
export function derFrame(tag: number, ...parts: readonly Uint8Array[]): Buffer {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = Buffer.allocUnsafe(headerLength(length) + length);
  let at = writeHeader(out, tag, length);
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** DER header of a definite-length element of `length` content bytes. */
export function derHeader(tag: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(headerLength(length));
  writeHeader(out, tag, length);
  return out;
}

export const TAG_OCTET_STRING = 0x04;
export const TAG_BIT_STRING = 0x03;
export const TAG_SEQUENCE = 0x30;
export const TAG_SET = 0x31;
/** [n] constructed, context-specific. */
export const tagContextConstructed = (n: number): number => 0xa0 | n;
