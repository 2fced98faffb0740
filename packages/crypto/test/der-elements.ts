// DER built by hand for the tests that feed hostile structures to the readers.

/** A DER element: tag, definite length (long form from 128 bytes), content. */
export function tlv(tag: number, content: Buffer): Buffer {
  const length = content.length < 128 ? Buffer.from([content.length]) : Buffer.alloc(5);
  if (content.length >= 128) {
    length[0] = 0x84;
    length.writeUInt32BE(content.length, 1);
  }
  return Buffer.concat([Buffer.from([tag]), length, content]);
}

/** An OID of 1.2 and `arcs` arcs of 129 (0x81 0x01, two bytes each), then `tail` more content bytes (arcs of 1). */
export function longOid(arcs: number, tail = 0): Buffer {
  const content = Buffer.alloc(1 + 2 * arcs + tail, 0x01);
  content[0] = 0x2a;
  if (arcs > 0) content.fill(Buffer.from([0x81, 0x01]), 1, 1 + 2 * arcs);
  return tlv(0x06, content);
}
