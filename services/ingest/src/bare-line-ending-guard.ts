// SMTP smuggling protection: a message whose DATA holds a CR not followed by LF, or an LF not preceded by CR, is
// refused. smtp-server ends DATA only on <CRLF>.<CRLF> but passes bare line endings through to us untouched
// (LIBRARY-NOTES.md §1), and a server after us might read `\n.\n` as the end of the message. A NUL byte is refused
// too (RFC 5321 §4.5.2 allows none in text): C-based MTAs and filters after us may end a line or a string at it and
// see a different message than the one we scanned.
import { Transform, type TransformCallback } from 'node:stream';

const CR = 0x0d;
const LF = 0x0a;
const NUL = 0x00;

export class NulByteError extends Error {
  readonly code = 'NUL_BYTE';
  readonly offset: number;
  constructor(offset: number) {
    super(`NUL byte at byte ${offset} of the message`);
    this.name = 'NulByteError';
    this.offset = offset;
  }
}

export class BareLineEndingError extends Error {
  readonly code = 'BARE_LINE_ENDING';
  /** Byte offset of the offending CR or LF in the message. */
  readonly offset: number;
  constructor(kind: 'CR' | 'LF', offset: number) {
    super(`bare ${kind} at byte ${offset} of the message`);
    this.name = 'BareLineEndingError';
    this.offset = offset;
  }
}

/**
 * Finds bare CR and bare LF across chunks. Feed it every chunk in order, then call `end()`.
 * Returns the error for the first bare line ending, or undefined while the bytes are clean.
 */
export class BareLineEndingDetector {
  private offset = 0;
  /** The previous chunk ended in CR: the next byte must be LF. */
  private pendingCR = false;

  check(chunk: Uint8Array): BareLineEndingError | NulByteError | undefined {
    if (chunk.length === 0) return undefined;
    const base = this.offset;
    this.offset += chunk.length;
    if (this.pendingCR && chunk[0] !== LF) return new BareLineEndingError('CR', base - 1);
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    const nul = buf.indexOf(NUL);
    if (nul !== -1) return new NulByteError(base + nul);
    // Every LF needs a CR right before it (possibly the last byte of the previous chunk).
    for (let i = buf.indexOf(LF); i !== -1; i = buf.indexOf(LF, i + 1)) {
      const before = i === 0 ? (this.pendingCR ? CR : undefined) : buf[i - 1];
      if (before !== CR) return new BareLineEndingError('LF', base + i);
    }
    // Every CR needs an LF right after it; a CR at the very end waits for the next chunk.
    for (let i = buf.indexOf(CR); i !== -1; i = buf.indexOf(CR, i + 1)) {
      if (i === buf.length - 1) break;
      if (buf[i + 1] !== LF) return new BareLineEndingError('CR', base + i);
    }
    this.pendingCR = buf[buf.length - 1] === CR;
    return undefined;
  }

  /** The message is complete: a CR as its very last byte is bare. */
  end(): BareLineEndingError | undefined {
    return this.pendingCR ? new BareLineEndingError('CR', this.offset - 1) : undefined;
  }
}

/** A pass-through stream that fails as soon as it sees a bare CR or LF (BareLineEndingError) or a NUL byte. */
export class BareLineEndingGuard extends Transform {
  private readonly detector = new BareLineEndingDetector();

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const error = this.detector.check(chunk);
    if (error) callback(error);
    else callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    callback(this.detector.end());
  }
}
