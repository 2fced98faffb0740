// DER framing of already-encoded parts: the per-message structures (a RecipientInfo around a fresh encrypted key)
// are frames around constant parts that asn1js encodes once, so encoding a message costs concatenation, not a
// re-encoding of the whole tree (which took longer than the RSA operation for small messages).

function lengthOctets(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  if (length < 0x100) return Buffer.from([0x81, length]);
  if (length < 0x10000) return Buffer.from([0x82, length >> 8, length & 0xff]);
  if (length < 0x1000000) return Buffer.from([0x83, length >> 16, (length >> 8) & 0xff, length & 0xff]);
  throw new RangeError('DER element too long');
}

/** One DER element with the given identifier octet around the concatenated parts. */
export function derFrame(tag: number, ...parts: readonly Uint8Array[]): Buffer {
  let length = 0;
  for (const part of parts) length += part.length;
  return Buffer.concat([Buffer.from([tag]), lengthOctets(length), ...parts]);
}

/** DER header of a definite-length element of `length` content bytes. */
export function derHeader(tag: number, length: number): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthOctets(length)]);
}

export const TAG_OCTET_STRING = 0x04;
export const TAG_BIT_STRING = 0x03;
export const TAG_SEQUENCE = 0x30;
export const TAG_SET = 0x31;
/** [n] constructed, context-specific. */
export const tagContextConstructed = (n: number): number => 0xa0 | n;
