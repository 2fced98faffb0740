// Whether mail from the internet needs the encrypt stage (issue 12). Encrypt opens encrypted mail and harvests keys
// and certificates; for plain mail it only says `plain` and passes it on, which cost a queue hop, a blob read and its
// CPU. So the header block and the first 64 KiB of the body are read along while the message streams into the blob
// store (the very bytes encrypt would read from the blob, Received header included) and judged by @smgw/crypto's
// inboundCryptoWork, the predicate encrypt itself decides with. Mail with nothing for encrypt skips it.
// Whatever is unsure keeps the hop (encrypt still handles plain mail as it always did): a header block that did not
// end within MAX_HEADER_BYTES, lines in it that are no header fields, a second Content-Type or
// Content-Transfer-Encoding, a Content-Type that is not a plain `type/subtype`, any S/MIME or PGP media type encrypt
// would not act on, a text/plain body longer than the 64 KiB looked at.
import { BODY_HEAD_BYTES, encryptStageReasons, inboundCryptoWork } from '@smgw/crypto/inbound-crypto-work';
import {
  findHeaderEnd,
  type HeaderEnd,
  type HeaderField,
  headerValue,
  MAX_HEADER_BYTES,
  parseHeaderFields,
} from '@smgw/mime';

/** The start of a message as stored: its header block and the first BODY_HEAD_BYTES of its body. */
export interface MessageHead {
  /** The header block up to its last line's line break; undefined when it did not end within MAX_HEADER_BYTES. */
  headerBlock: Buffer | undefined;
  bodyHead: Buffer;
}

/**
 * The message bytes passed on unchanged; `seen` is told the message's head once BODY_HEAD_BYTES of the body went by
 * (or the message ended). Holds at most the header block and BODY_HEAD_BYTES (MAX_HEADER_BYTES + BODY_HEAD_BYTES)
 * plus one chunk, and copies each byte once, however the message is cut into chunks.
 */
export async function* withMessageHead(
  source: AsyncIterable<Uint8Array>,
  seen: (head: MessageHead) => void,
): AsyncGenerator<Uint8Array> {
  let chunks: Buffer[] | undefined = [];
  let length = 0;
  let end: HeaderEnd | undefined;
  const report = () => {
    if (chunks === undefined) return;
    seen(headOf(Buffer.concat(chunks), end));
    chunks = undefined;
  };
  for await (const chunk of source) {
    if (chunks !== undefined && chunk.length > 0) {
      const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
      // An empty line that ends in this chunk starts at most two bytes before it.
      const before = Math.min(2, length);
      const window = before > 0 ? Buffer.concat([lastBytes(chunks, before), bytes]) : bytes;
      end ??= emptyLineIn(window, length - before);
      chunks.push(bytes);
      length += bytes.length;
      if (end ? length - end.bodyStart >= BODY_HEAD_BYTES : length > MAX_HEADER_BYTES) report();
    }
    yield chunk;
  }
  report();
}

/**
 * The first empty line in `window`, which starts at `windowStart` of the message, by @smgw/mime's findHeaderEnd rule:
 * LF or CRLF at the very start, else LF LF or LF CR LF.
 */
function emptyLineIn(window: Buffer, windowStart: number): HeaderEnd | undefined {
  if (windowStart === 0) {
    const atStart = findHeaderEnd(window.subarray(0, 2));
    if (atStart?.headerLength === 0) return atStart;
  }
  const lfLf = window.indexOf('\n\n');
  const lfCrLf = window.indexOf('\n\r\n');
  const at = lfLf === -1 ? lfCrLf : lfCrLf === -1 ? lfLf : Math.min(lfLf, lfCrLf);
  if (at === -1) return undefined;
  const blankLength = at === lfLf ? 1 : 2;
  return { headerLength: windowStart + at + 1, bodyStart: windowStart + at + 1 + blankLength };
}

/** The last `count` bytes of `chunks`. */
function lastBytes(chunks: readonly Buffer[], count: number): Buffer {
  const tail: Buffer[] = [];
  let needed = count;
  for (let i = chunks.length - 1; i >= 0 && needed > 0; i--) {
    const chunk = chunks[i] as Buffer;
    tail.unshift(chunk.subarray(Math.max(0, chunk.length - needed)));
    needed -= Math.min(needed, chunk.length);
  }
  return Buffer.concat(tail);
}

function headOf(collected: Buffer, end: HeaderEnd | undefined): MessageHead {
  if (!end || end.headerLength > MAX_HEADER_BYTES) return { headerBlock: undefined, bodyHead: Buffer.alloc(0) };
  return {
    headerBlock: collected.subarray(0, end.headerLength),
    bodyHead: collected.subarray(end.bodyStart, end.bodyStart + BODY_HEAD_BYTES),
  };
}

/**
 * Why the message must pass the encrypt stage, as names for the trace (never content); empty when it is plain and
 * skips it. `head` undefined: it was not read.
 */
export function encryptHopReasons(head: MessageHead | undefined): string[] {
  if (!head?.headerBlock) return ['header-unread'];
  const text = head.headerBlock.toString('latin1');
  const fields = parseHeaderFields(text);
  if (fieldLineCount(text) !== fields.length) return ['header-lines-not-fields'];
  const unclear = unclearContentFields(fields);
  if (unclear) return [unclear];
  const reasons = encryptStageReasons(inboundCryptoWork(fields, head.bodyHead));
  // An S/MIME or OpenPGP media type encrypt would not act on (no smime-type, an unknown one): not ours to judge.
  const contentType = headerValue(fields, 'content-type') ?? '';
  if (reasons.length === 0 && CRYPTO_MEDIA_TYPE.test(contentType)) return ['crypto-media-type'];
  return reasons;
}

/** Lines that start a field (the first line, and every line not folded onto the one before). */
function fieldLineCount(headerBlock: string): number {
  return headerBlock.split(/\r?\n/).filter((line, i) => line !== '' && (i === 0 || !/^[ \t]/.test(line))).length;
}

/** A media type as RFC 6838 names it (restricted-name), then parameters or nothing. */
const PLAIN_CONTENT_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*[ \t]*(;|$)/i;
/** Media types of S/MIME and OpenPGP: such mail goes to encrypt even where the predicate finds nothing to do. */
const CRYPTO_MEDIA_TYPE = /^(application\/(x-)?pkcs7-|application\/pgp|multipart\/(encrypted|signed))/i;

/** What makes the Content-* fields unsure to read, or undefined when they read plainly. */
function unclearContentFields(fields: readonly HeaderField[]): string | undefined {
  const count = (key: string) => fields.filter((f) => f.key === key).length;
  if (count('content-type') > 1 || count('content-transfer-encoding') > 1) return 'content-field-repeated';
  const contentType = headerValue(fields, 'content-type');
  if (contentType !== undefined && !PLAIN_CONTENT_TYPE.test(contentType)) return 'content-type-unclear';
  return undefined;
}
