// A message's MIME structure without decoding a body: which leaf parts there are and which of them a reader gets as
// attachments (the same rule mailparser applies, so the folder list counts what the message page lists). Bounded:
// too many parts, too deep a nesting or too large a part header end the walk with MimeStructureError. A message whose
// top header names no parts is its own one leaf: its body is not walked.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { findHeaderEndWithin } from '@smgw/mime';
import { Splitter } from '@zone-eu/mailsplit';

export interface MimeLimits {
  /** Nested multiparts and embedded messages. */
  maxDepth: number;
  /** MIME nodes in all. */
  maxParts: number;
  /** One part's header block. */
  maxHeaderBytes: number;
}

export const MIME_LIMITS: MimeLimits = { maxDepth: 32, maxParts: 500, maxHeaderBytes: 256 * 1024 };

export class MimeStructureError extends Error {
  readonly code = 'MAILBOX_MIME_TOO_COMPLEX';
}

export interface MimeLeaf {
  contentType: string;
  disposition: 'inline' | 'attachment';
  filename: string | undefined;
  isAttachment: boolean;
}

// mailparser's text types (message/delivery-status is folded into the text unless kept).
const TEXT_TYPES = ['text/plain', 'text/html', 'message/delivery-status'];

/** mailparser's rule (createNode): unknown dispositions are attachments, so are non-text parts without one. */
export function classifyLeaf(
  contentType: string,
  disposition: string | false,
): Pick<MimeLeaf, 'disposition' | 'isAttachment'> {
  const normalised =
    disposition === 'inline' || (!disposition && TEXT_TYPES.includes(contentType)) ? 'inline' : 'attachment';
  return { disposition: normalised, isAttachment: !TEXT_TYPES.includes(contentType) || normalised !== 'inline' };
}

interface SplitterNode {
  type: 'node';
  root: boolean;
  parentNode: SplitterNode | false;
  contentType: string | false;
  disposition: string | false;
  filename: string | false;
  multipart: string | false;
  messageNode?: boolean;
}

function depthOf(node: SplitterNode): number {
  let depth = 0;
  for (let parent = node.parentNode; parent; parent = parent.parentNode) depth++;
  return depth;
}

/**
 * The leaf parts of `raw` in order. `onLeaf` sees each as it is found, so a caller keeps what was found before a
 * limit stopped the walk.
 *
 * The top header is read first, alone: when it names no parts (neither a multipart nor a message mailsplit opens), the
 * message is that one leaf and its body is never split into lines. mailsplit visits every line of a body: a text/plain
 * message of 31 MB of bare line feeds cost the mailbox stage's arrival 1.7 s of CPU for a summary of its header.
 */
export async function readMimeLeaves(
  raw: Buffer,
  limits: MimeLimits = MIME_LIMITS,
  onLeaf?: (leaf: MimeLeaf) => void,
): Promise<MimeLeaf[]> {
  const header = findHeaderEndWithin(raw, limits.maxHeaderBytes);
  if (header && header.bodyStart < raw.length) {
    const top = await splitLeaves(raw.subarray(0, header.bodyStart), limits);
    if (top.root && !top.root.multipart && !top.root.messageNode) {
      for (const leaf of top.leaves) onLeaf?.(leaf);
      return top.leaves;
    }
  }
  return (await splitLeaves(raw, limits, onLeaf)).leaves;
}

/** The leaves mailsplit finds in `bytes`, and its root node. */
async function splitLeaves(
  bytes: Buffer,
  limits: MimeLimits,
  onLeaf?: (leaf: MimeLeaf) => void,
): Promise<{ root: SplitterNode | undefined; leaves: MimeLeaf[] }> {
  const leaves: MimeLeaf[] = [];
  let root: SplitterNode | undefined;
  // mailsplit counts nodes itself too (maxChildNodes); the depth it does not bound.
  const splitter = new Splitter({ maxHeadSize: limits.maxHeaderBytes, maxChildNodes: limits.maxParts });
  let parts = 0;
  const collect = async (source: AsyncIterable<{ type: string }>) => {
    for await (const chunk of source) {
      if (chunk.type !== 'node') continue;
      const node = chunk as unknown as SplitterNode;
      if (node.root) root = node;
      parts++;
      if (parts > limits.maxParts) throw new MimeStructureError(`more than ${limits.maxParts} MIME parts`);
      if (depthOf(node) > limits.maxDepth)
        throw new MimeStructureError(`MIME parts nested deeper than ${limits.maxDepth}`);
      if (node.multipart || node.messageNode) continue;
      // As mailparser: a root without Content-Type is text; a part without one is not (so an attachment).
      const contentType = node.contentType || (node.root ? 'text/plain' : '');
      const leaf: MimeLeaf = {
        contentType: contentType || 'application/octet-stream',
        ...classifyLeaf(contentType, node.disposition),
        filename: node.filename || undefined,
      };
      leaves.push(leaf);
      onLeaf?.(leaf);
    }
  };
  try {
    await pipeline(Readable.from([bytes]), splitter, collect);
  } catch (err) {
    if (err instanceof MimeStructureError) throw err;
    if ((err as { code?: string }).code === 'EMAXLEN') throw new MimeStructureError((err as Error).message);
    throw err;
  }
  return { root, leaves };
}
