// A small, strict BER reader for the CMS we receive. asn1js builds what we send; for reading we need exact byte slices
// (the key-wrap AlgorithmIdentifier enters the ECDH KDF as encoded), indefinite lengths (OpenSSL streams its output),
// a depth bound, and one typed error (SMIME_MALFORMED) for every defect of hostile or truncated input.
import { SmimeError } from './errors.ts';

export const TAG_CLASS_UNIVERSAL = 0;
export const TAG_CLASS_CONTEXT = 2;

export const UNIVERSAL_INTEGER = 2;
export const UNIVERSAL_BIT_STRING = 3;
export const UNIVERSAL_OCTET_STRING = 4;
export const UNIVERSAL_NULL = 5;
export const UNIVERSAL_OID = 6;
export const UNIVERSAL_SEQUENCE = 16;
export const UNIVERSAL_SET = 17;

const MAX_DEPTH = 48;

export interface BerNode {
  readonly tagClass: number;
  readonly constructed: boolean;
  readonly tagNumber: number;
  /** The node's complete encoding, header included. */
  readonly raw: Buffer;
  /** Content octets of a primitive node; empty for a constructed one. */
  readonly content: Buffer;
  readonly children: readonly BerNode[];
}

function malformed(message: string): SmimeError {
  return new SmimeError('SMIME_MALFORMED', message);
}

function readNode(buf: Buffer, start: number, limit: number, depth: number, listDepth = MAX_DEPTH): BerNode {
  if (depth > MAX_DEPTH) throw malformed('ASN.1 nesting too deep');
  let pos = start;
  if (pos >= limit) throw malformed('ASN.1 element truncated');
  const first = buf[pos++] as number;
  const tagClass = first >> 6;
  const constructed = (first & 0x20) !== 0;
  let tagNumber = first & 0x1f;
  if (tagNumber === 0x1f) {
    tagNumber = 0;
    for (let i = 0; ; i++) {
      if (pos >= limit || i >= 4) throw malformed('ASN.1 tag truncated or too long');
      const b = buf[pos++] as number;
      tagNumber = tagNumber * 128 + (b & 0x7f);
      if ((b & 0x80) === 0) break;
    }
  }
  if (pos >= limit) throw malformed('ASN.1 length truncated');
  const lengthByte = buf[pos++] as number;
  const children: BerNode[] = [];
  if (lengthByte === 0x80) {
    if (!constructed) throw malformed('indefinite length on a primitive ASN.1 element');
    for (;;) {
      if (pos + 2 > limit) throw malformed('ASN.1 end-of-contents missing');
      if (buf[pos] === 0 && buf[pos + 1] === 0) {
        pos += 2;
        break;
      }
      const child = readNode(buf, pos, limit, depth + 1, listDepth);
      children.push(child);
      pos += child.raw.length;
    }
    return { tagClass, constructed, tagNumber, raw: buf.subarray(start, pos), content: buf.subarray(0, 0), children };
  }
  let length = lengthByte;
  if (lengthByte > 0x80) {
    const count = lengthByte & 0x7f;
    if (count > 4) throw malformed('ASN.1 length too large');
    if (pos + count > limit) throw malformed('ASN.1 length truncated');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (buf[pos++] as number);
  } else if (lengthByte === 0xff) {
    throw malformed('reserved ASN.1 length');
  }
  const end = pos + length;
  if (end > limit) throw malformed('ASN.1 element truncated');
  // Below listDepth a definite-length element is kept whole (raw) without reading into it.
  if (constructed && depth < listDepth) {
    let childPos = pos;
    while (childPos < end) {
      const child = readNode(buf, childPos, end, depth + 1, listDepth);
      children.push(child);
      childPos += child.raw.length;
    }
  }
  return {
    tagClass,
    constructed,
    tagNumber,
    raw: buf.subarray(start, end),
    content: constructed ? buf.subarray(0, 0) : buf.subarray(pos, end),
    children,
  };
}

/**
 * Reads one BER element from the start of `bytes` (trailing bytes are ignored, as OpenSSL does). With `listDepth`,
 * constructed elements of definite length at that depth (the top element is depth 0) list no children: callers
 * that need only their bytes (certificates in a SignedData) skip the work; read `raw` again to go deeper.
 */
export function readBer(bytes: Buffer, listDepth = MAX_DEPTH): BerNode {
  return readNode(bytes, 0, bytes.length, 0, listDepth);
}

export function isUniversal(node: BerNode | undefined, tagNumber: number): node is BerNode {
  return node !== undefined && node.tagClass === TAG_CLASS_UNIVERSAL && node.tagNumber === tagNumber;
}

export function isContext(node: BerNode | undefined, tagNumber: number): node is BerNode {
  return node !== undefined && node.tagClass === TAG_CLASS_CONTEXT && node.tagNumber === tagNumber;
}

export function expectUniversal(node: BerNode | undefined, tagNumber: number, what: string): BerNode {
  if (!isUniversal(node, tagNumber)) throw malformed(`${what} missing or of the wrong type`);
  return node;
}

/** Dotted form of an OBJECT IDENTIFIER node. */
export function oidOf(node: BerNode | undefined, what: string): string {
  const oid = expectUniversal(node, UNIVERSAL_OID, what);
  const bytes = oid.content;
  if (bytes.length === 0) throw malformed(`${what}: empty OID`);
  const arcs: number[] = [];
  let value = 0;
  for (const b of bytes) {
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) throw malformed(`${what}: OID arc too large`);
    if ((b & 0x80) === 0) {
      if (arcs.length === 0) {
        const firstArc = value < 40 ? 0 : value < 80 ? 1 : 2;
        arcs.push(firstArc, value - firstArc * 40);
      } else {
        arcs.push(value);
      }
      value = 0;
    }
  }
  if ((bytes[bytes.length - 1] as number) & 0x80) throw malformed(`${what}: OID truncated`);
  return arcs.join('.');
}

/** Content of an OCTET STRING (or an implicitly tagged one), primitive or constructed from segments. */
export function octetsOf(node: BerNode, what: string): Buffer {
  if (!node.constructed) return node.content;
  const parts: Buffer[] = [];
  const collect = (n: BerNode): void => {
    for (const child of n.children) {
      if (!isUniversal(child, UNIVERSAL_OCTET_STRING)) throw malformed(`${what}: bad OCTET STRING segment`);
      if (child.constructed) collect(child);
      else parts.push(child.content);
    }
  };
  collect(node);
  return Buffer.concat(parts);
}

/** Non-negative small INTEGER value (versions, ICV lengths). */
export function smallIntegerOf(node: BerNode | undefined, what: string): number {
  const int = expectUniversal(node, UNIVERSAL_INTEGER, what);
  if (int.content.length === 0 || int.content.length > 4) throw malformed(`${what}: bad INTEGER`);
  return int.content.readUIntBE(0, int.content.length);
}
