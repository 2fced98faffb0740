// A streaming BER reader that keeps the shape of what it reads, not the bytes: every element's tag, its children,
// and the content of small primitives (OIDs, versions). Memory grows with the number of elements, not with the size
// of the content, so a 50 MB EnvelopedData is checked without holding it. Every defect (truncation, a length past
// its parent, a depth over the limit, bytes after the outer element) makes it refuse.

const MAX_DEPTH = 32;
/** Primitive contents up to this size are kept (OIDs, INTEGERs); larger ones are only counted. */
const KEEP_CONTENT_BYTES = 64;
const MAX_ELEMENTS = 1_000_000;
/**
 * Elements deeper than this are read and checked but not kept as children: the CMS checks look no deeper than the
 * encrypted content's own element (ContentInfo > [0] > EnvelopedData > encryptedContentInfo > [0]), and the thousands
 * of OCTET STRING chunks below it would otherwise cost memory per chunk.
 */
const KEEP_DEPTH = 5;
/** Elements kept at most (a message naming 100,000 recipients is no real message; memory stays a few MB). */
const MAX_KEPT = 100_000;

export interface SkeletonNode {
  tagClass: number;
  constructed: boolean;
  tagNumber: number;
  /** Content of a small primitive; undefined when constructed or larger than KEEP_CONTENT_BYTES. */
  content?: Buffer;
  children: SkeletonNode[];
}

export class BerShapeError extends Error {
  readonly code = 'BER_MALFORMED';
}

interface Open {
  node: SkeletonNode;
  /** Bytes of content left; undefined for an indefinite length. */
  remaining: number | undefined;
}

/** Feed bytes in order with `push`, then `end()` returns the one outer element. */
export class BerSkeletonReader {
  private readonly stack: Open[] = [];
  private root: SkeletonNode | undefined;
  private pending = Buffer.alloc(0);
  /** Bytes of primitive content still to skip (or keep) for the innermost primitive. */
  private primitive: { node: SkeletonNode; remaining: number; kept: Buffer[] | undefined } | undefined;
  private elements = 0;
  private kept = 0;
  private finished = false;

  push(chunk: Buffer): void {
    let data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    while (data.length > 0) {
      if (this.finished) throw new BerShapeError('bytes after the outer element');
      if (this.primitive) {
        const take = Math.min(this.primitive.remaining, data.length);
        this.primitive.kept?.push(Buffer.from(data.subarray(0, take)));
        this.primitive.remaining -= take;
        this.consumed(take);
        data = data.subarray(take);
        if (this.primitive.remaining === 0) this.closePrimitive();
        continue;
      }
      const header = readHeader(data);
      if (!header) {
        this.pending = Buffer.from(data);
        return;
      }
      data = data.subarray(header.size);
      if (header.endOfContents) {
        const top = this.stack[this.stack.length - 1];
        if (!top || top.remaining !== undefined)
          throw new BerShapeError('end-of-contents outside an indefinite element');
        this.consumed(header.size, 1);
        this.stack.pop();
        this.closed(top.node);
        continue;
      }
      this.consumed(header.size);
      if (++this.elements > MAX_ELEMENTS) throw new BerShapeError('too many elements');
      if (this.stack.length >= MAX_DEPTH) throw new BerShapeError('nesting too deep');
      const node: SkeletonNode = {
        tagClass: header.tagClass,
        constructed: header.constructed,
        tagNumber: header.tagNumber,
        children: [],
      };
      const parent = this.stack[this.stack.length - 1];
      if (parent) {
        if (this.stack.length < KEEP_DEPTH) {
          if (++this.kept > MAX_KEPT) throw new BerShapeError('too many elements to check');
          parent.node.children.push(node);
        }
      } else if (this.root) throw new BerShapeError('bytes after the outer element');
      else this.root = node;
      if (header.length !== undefined && parent?.remaining !== undefined && header.length > parent.remaining) {
        throw new BerShapeError('an element is longer than its parent');
      }
      if (!header.constructed) {
        if (header.length === undefined) throw new BerShapeError('indefinite length on a primitive');
        const kept = header.length <= KEEP_CONTENT_BYTES ? [] : undefined;
        this.primitive = { node, remaining: header.length, kept };
        if (header.length === 0) this.closePrimitive();
        continue;
      }
      this.stack.push({ node, remaining: header.length });
      if (header.length === 0) {
        this.stack.pop();
        this.closed(node);
      }
    }
  }

  /** The outer element; throws when the input ended inside it or was empty. */
  end(): SkeletonNode {
    if (this.pending.length > 0 || this.primitive || this.stack.length > 0 || !this.root) {
      throw new BerShapeError('the encoding is truncated');
    }
    return this.root;
  }

  private closePrimitive(): void {
    const primitive = this.primitive as { node: SkeletonNode; kept: Buffer[] | undefined };
    if (primitive.kept) primitive.node.content = Buffer.concat(primitive.kept);
    this.primitive = undefined;
    this.closed(primitive.node);
  }

  /** Counts `bytes` against every definite-length element that is open. */
  private consumed(bytes: number, skipInnermost = 0): void {
    for (let i = this.stack.length - 1 - skipInnermost; i >= 0; i--) {
      const open = this.stack[i] as Open;
      if (open.remaining === undefined) continue;
      if (bytes > open.remaining) throw new BerShapeError('an element runs past its parent');
      open.remaining -= bytes;
    }
  }

  /** An element ended: close every definite parent that is now complete. */
  private closed(node: SkeletonNode): void {
    if (this.stack.length === 0 && node === this.root) {
      this.finished = true;
      return;
    }
    for (;;) {
      const top = this.stack[this.stack.length - 1];
      if (top?.remaining !== 0) return;
      this.stack.pop();
      if (this.stack.length === 0) {
        this.finished = true;
        return;
      }
    }
  }
}

interface Header {
  size: number;
  tagClass: number;
  constructed: boolean;
  tagNumber: number;
  length: number | undefined;
  endOfContents: boolean;
}

/** The identifier and length octets at the start of `data`, or undefined when more bytes are needed. */
function readHeader(data: Buffer): Header | undefined {
  if (data.length < 2) return undefined;
  const first = data[0] as number;
  let pos = 1;
  let tagNumber = first & 0x1f;
  if (tagNumber === 0x1f) {
    tagNumber = 0;
    for (let i = 0; ; i++) {
      if (pos >= data.length) return undefined;
      if (i >= 4) throw new BerShapeError('tag too long');
      const b = data[pos++] as number;
      tagNumber = tagNumber * 128 + (b & 0x7f);
      if ((b & 0x80) === 0) break;
    }
  }
  if (pos >= data.length) return undefined;
  const lengthByte = data[pos++] as number;
  const base = { tagClass: first >> 6, constructed: (first & 0x20) !== 0, tagNumber };
  if (first === 0 && lengthByte === 0) return { ...base, size: 2, length: 0, endOfContents: true };
  if (lengthByte === 0x80) return { ...base, size: pos, length: undefined, endOfContents: false };
  if (lengthByte === 0xff) throw new BerShapeError('reserved length');
  if (lengthByte < 0x80) return { ...base, size: pos, length: lengthByte, endOfContents: false };
  const count = lengthByte & 0x7f;
  if (count > 4) throw new BerShapeError('length too large');
  if (pos + count > data.length) return undefined;
  let length = 0;
  for (let i = 0; i < count; i++) length = length * 256 + (data[pos++] as number);
  return { ...base, size: pos, length, endOfContents: false };
}
