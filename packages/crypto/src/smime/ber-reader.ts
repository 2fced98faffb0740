// A small, strict BER reader for the CMS we receive. asn1js builds what we send; for reading we need exact byte slices
// (the key-wrap AlgorithmIdentifier enters the ECDH KDF as encoded), indefinite lengths (OpenSSL streams its output),
// bounds on depth and element count, and one typed error (SMIME_MALFORMED) for every defect of hostile or truncated input.
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
/**
 * Elements one readBer may read. Each node costs a few hundred bytes of heap for 2 bytes of input at least (`30 00`),
 * so the count, not the input length, bounds the memory. Real CMS stays far below: a certificate is a few hundred
 * elements, OpenSSL streams content in 4 KiB segments (50 MB: 13 k), and callers keep certificates unread (listDepth).
 */
export const MAX_BER_ELEMENTS = 200_000;

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

interface Reading {
  readonly buf: Buffer;
  readonly listDepth: number;
  elementsLeft: number;
}

interface Header {
  readonly tagClass: number;
  readonly constructed: boolean;
  readonly tagNumber: number;
  readonly contentStart: number;
  /** Undefined for an indefinite length. */
  readonly length: number | undefined;
}

function malformed(message: string): SmimeError {
  return new SmimeError('SMIME_MALFORMED', message);
}

function readHeader(reading: Reading, start: number, limit: number): Header {
  if (--reading.elementsLeft < 0) throw malformed(`more than ${MAX_BER_ELEMENTS} ASN.1 elements`);
  const buf = reading.buf;
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
  if (lengthByte === 0x80) {
    if (!constructed) throw malformed('indefinite length on a primitive ASN.1 element');
    return { tagClass, constructed, tagNumber, contentStart: pos, length: undefined };
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
  if (pos + length > limit) throw malformed('ASN.1 element truncated');
  return { tagClass, constructed, tagNumber, contentStart: pos, length };
}

function isEndOfContents(reading: Reading, pos: number, limit: number): boolean {
  if (pos + 2 > limit) throw malformed('ASN.1 end-of-contents missing');
  return reading.buf[pos] === 0 && reading.buf[pos + 1] === 0;
}

/** The end of an indefinite-length element at `depth` whose content starts at `pos`, found without building nodes. */
function skipIndefinite(reading: Reading, pos: number, limit: number, depth: number): number {
  let open = 1;
  while (open > 0) {
    if (isEndOfContents(reading, pos, limit)) {
      pos += 2;
      open--;
      continue;
    }
    if (depth + open > MAX_DEPTH) throw malformed('ASN.1 nesting too deep');
    const header = readHeader(reading, pos, limit);
    if (header.length === undefined) open++;
    pos = header.contentStart + (header.length ?? 0);
  }
  return pos;
}

function readNode(reading: Reading, start: number, limit: number, depth: number): BerNode {
  if (depth > MAX_DEPTH) throw malformed('ASN.1 nesting too deep');
  const { tagClass, constructed, tagNumber, contentStart, length } = readHeader(reading, start, limit);
  const children: BerNode[] = [];
  // From listDepth on, a constructed element is kept whole (raw) without listing what it holds.
  const listed = constructed && depth < reading.listDepth;
  if (length === undefined) {
    let pos = contentStart;
    if (listed) {
      while (!isEndOfContents(reading, pos, limit)) {
        const child = readNode(reading, pos, limit, depth + 1);
        children.push(child);
        pos += child.raw.length;
      }
      pos += 2;
    } else {
      pos = skipIndefinite(reading, pos, limit, depth);
    }
    return {
      tagClass,
      constructed,
      tagNumber,
      raw: reading.buf.subarray(start, pos),
      content: reading.buf.subarray(0, 0),
      children,
    };
  }
  const end = contentStart + length;
  let childPos = contentStart;
  while (listed && childPos < end) {
    const child = readNode(reading, childPos, end, depth + 1);
    children.push(child);
    childPos += child.raw.length;
  }
  return {
    tagClass,
    constructed,
    tagNumber,
    raw: reading.buf.subarray(start, end),
    content: constructed ? reading.buf.subarray(0, 0) : reading.buf.subarray(contentStart, end),
    children,
  };
}

/**
 * Reads one BER element from the start of `bytes` (trailing bytes are ignored, as OpenSSL does). With `listDepth`,
 * constructed elements at that depth (the top element is depth 0) list no children: callers that need only their
 * bytes (certificates in a SignedData) skip the work; read `raw` again to go deeper. More than MAX_BER_ELEMENTS
 * elements read (listed or skipped) is SMIME_MALFORMED.
 */
export function readBer(bytes: Buffer, listDepth = MAX_DEPTH): BerNode {
  return readNode({ buf: bytes, listDepth, elementsLeft: MAX_BER_ELEMENTS }, 0, bytes.length, 0);
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

/**
 * Longest OBJECT IDENTIFIER (or RELATIVE-OID) content read from a stranger's DER: asn1js, under pkijs, builds an
 * object for each arc (about 3 µs), so one OID of 2 MB held an event loop 3 s, the 16 MB asn1js reads at most 30 s.
 * Real OIDs stay under 40 bytes (a UUID arc, 2.25.…, is 20).
 */
export const MAX_OID_BYTES = 256;

/**
 * Whether `der` holds an OID longer than MAX_OID_BYTES, in its own elements or in DER wrapped in an OCTET STRING
 * (pkijs parses a certificate extension's value, one level down; `wrapped` levels are looked into). Checked before
 * pkijs reads stranger DER. Also true for DER nested deeper than MAX_DEPTH (more than the limit's bytes there) or of
 * more than MAX_BER_ELEMENTS elements; false for other DER this reader cannot read (the caller's parser refuses it).
 */
export function holdsOverlongOid(der: Uint8Array, wrapped = 2, unlistedCounts = true): boolean {
  let root: BerNode;
  try {
    root = readBer(Buffer.from(der.buffer, der.byteOffset, der.byteLength));
  } catch (error) {
    // Deeper than this reader goes (asn1js reads 100 levels) or more elements than it lists: what that holds is not
    // known, and no real certificate or CMS is like it (`unlistedCounts`; a CRL of a few MB of serials is, see
    // parseCrl). Anything else it cannot read is not DER (a message's text).
    return unlistedCounts && error instanceof SmimeError && /nesting too deep|ASN\.1 elements/.test(error.message);
  }
  const pending: BerNode[] = [root];
  for (let node = pending.pop(); node; node = pending.pop()) {
    const long = node.content.length > MAX_OID_BYTES;
    if (long && node.tagClass === TAG_CLASS_UNIVERSAL && (node.tagNumber === UNIVERSAL_OID || node.tagNumber === 13)) {
      return true;
    }
    // Only an OCTET STRING longer than the limit can hide a longer OID.
    if (
      long &&
      wrapped > 0 &&
      isUniversal(node, UNIVERSAL_OCTET_STRING) &&
      holdsOverlongOid(node.content, wrapped - 1, unlistedCounts)
    ) {
      return true;
    }
    // readBer lists no children below MAX_DEPTH levels (asn1js reads to 100): a long one kept whole may hide one.
    if (node.constructed && node.children.length === 0 && node.raw.length > MAX_OID_BYTES) return true;
    for (const child of node.children) pending.push(child);
  }
  return false;
}
