// The INSTREAM body, shared by the one-shot client and the session pool: chunks of <uint32 BE length><bytes>, sent
// with socket backpressure, then a zero length. Also the checks of the scan options both take.
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { ClamdError } from './errors.ts';
import { printable } from './reply.ts';

/**
 * What to scan: a stream (read once), or a function that opens the same bytes again on every call. Only with a
 * function can the pool repeat a scan on a fresh connection when clamd had closed a reused one.
 */
export type ScanSource = Readable | (() => Readable);

export interface CommandOptions {
  /** Everything (waiting for a session, connect, upload, scan, reply) must be done within this many milliseconds. */
  deadlineMs: number;
}

export interface ScanOptions extends CommandOptions {
  /** A longer stream is not scanned: CLAMD_LIMIT_EXCEEDED (keep it at or below clamd's StreamMaxLength). */
  maxBytes: number;
  /** Bytes per INSTREAM chunk (default 64 KiB). */
  chunkBytes?: number;
}

export interface UploadLimits {
  maxBytes: number;
  chunkBytes: number;
}

const DEFAULT_CHUNK_BYTES = 64 * 1024;
/** A clamd reply is one short line; anything longer is garbage. */
export const MAX_REPLY_BYTES = 4096;
/** The zero-length chunk that ends an INSTREAM body. */
const END_OF_STREAM = Buffer.alloc(4);

/** The upload limits of `options`, or CLAMD_INVALID_OPTIONS. */
export function checkScanOptions(options: ScanOptions): UploadLimits {
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > 2 ** 31) {
    throw new ClamdError('CLAMD_INVALID_OPTIONS', `chunkBytes must be a positive integer, not ${chunkBytes}`);
  }
  if (!(options.maxBytes >= 0)) {
    throw new ClamdError('CLAMD_INVALID_OPTIONS', `maxBytes must be a non-negative number, not ${options.maxBytes}`);
  }
  checkDeadline(options.deadlineMs);
  return { maxBytes: options.maxBytes, chunkBytes };
}

export function checkDeadline(deadlineMs: number): void {
  if (!(deadlineMs > 0)) {
    throw new ClamdError('CLAMD_INVALID_OPTIONS', `deadlineMs must be positive, not ${deadlineMs}`);
  }
}

/**
 * Sends the INSTREAM body of `source` (after `leading`, the command, when given). `onBodySent` runs just before the
 * zero-length end chunk is handed to the socket: a verdict that arrives earlier is for bytes clamd did not all see.
 * Frames are gathered (FrameBatch) and handed to the socket together: a small message was eight writes (command, a
 * length and the bytes per piece, the end), and on a virtual machine each write is an expensive system call.
 */
export async function uploadChunks(
  socket: Socket,
  source: Readable,
  limits: UploadLimits,
  onBodySent: () => void,
  leading?: Buffer,
): Promise<void> {
  const batch = new FrameBatch(socket);
  if (leading) batch.add(leading);
  let total = 0;
  try {
    for await (const piece of source) {
      const bytes = asBuffer(piece);
      total += bytes.length;
      if (total > limits.maxBytes) {
        throw new ClamdError('CLAMD_LIMIT_EXCEEDED', `stream longer than ${limits.maxBytes} bytes: not scanned`);
      }
      for (let offset = 0; offset < bytes.length; offset += limits.chunkBytes) {
        const chunk = bytes.subarray(offset, offset + limits.chunkBytes);
        const header = Buffer.alloc(4);
        header.writeUInt32BE(chunk.length, 0);
        // The length and the bytes as two frames of one batch: no concatenated copy.
        batch.add(header);
        batch.add(chunk);
        await batch.room();
      }
    }
    onBodySent();
    batch.add(END_OF_STREAM);
    await batch.flush();
  } catch (err) {
    batch.discard();
    if (err instanceof ClamdError) throw err;
    if (socket.destroyed) throw new ClamdError('CLAMD_CONNECTION_LOST', 'connection closed during upload');
    throw new ClamdError('CLAMD_SOURCE_FAILED', `reading the stream to scan failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Bytes gathered before they are handed to the socket without waiting for the source's next piece. */
const BATCH_BYTES = 64 * 1024;

/**
 * Frames handed to the socket together, corked (one writev): when BATCH_BYTES are gathered, at the end, or when the
 * source pauses (the next turn of the event loop), so that a slow source is not held back. Backpressure: `room()`
 * waits while the socket is above its high-water mark.
 */
class FrameBatch {
  private frames: Buffer[] = [];
  private bytes = 0;
  private scheduled: NodeJS.Immediate | undefined;
  private draining: Promise<void> | undefined;
  private readonly socket: Socket;
  constructor(socket: Socket) {
    this.socket = socket;
  }

  add(frame: Buffer): void {
    this.frames.push(frame);
    this.bytes += frame.length;
    this.scheduled ??= setImmediate(() => this.send());
  }

  /** Sends a full batch; resolves once the socket takes more, rejects once it is gone. */
  async room(): Promise<void> {
    if (this.bytes >= BATCH_BYTES) {
      await this.readFirst();
      this.send();
    }
    if (this.draining) await this.draining;
    this.checkSocket();
  }

  /** Sends what is gathered; resolves once the socket takes more, rejects once it is gone. */
  async flush(): Promise<void> {
    await this.readFirst();
    this.checkSocket();
    this.send();
    if (this.draining) await this.draining;
  }

  /**
   * One turn of the event loop just before a write, so that what clamd sent is read first. clamd answers at once and
   * closes when a stream goes over its StreamMaxLength; a write after that close fails (EPIPE) and Node drops the
   * socket with the answer unread, so a message over the limit came back as a lost connection (retried until parked)
   * instead of CLAMD_LIMIT_EXCEEDED (quarantined). The gap between the read and the write is now only the write; before,
   * it held the work of producing the next pieces (a Transform, the SignedData hint), and the answer lost that race
   * most of the time.
   */
  private async readFirst(): Promise<void> {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** Drops what is gathered (the upload failed). */
  discard(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    this.frames = [];
    this.bytes = 0;
  }

  private checkSocket(): void {
    if (this.socket.destroyed || !this.socket.writable) {
      throw new ClamdError('CLAMD_CONNECTION_LOST', 'connection closed during upload');
    }
  }

  private send(): void {
    const { socket, frames } = this;
    this.discard();
    if (frames.length === 0 || socket.destroyed || !socket.writable) return;
    let room = true;
    socket.cork();
    for (const frame of frames) room = socket.write(frame);
    socket.uncork();
    if (room || this.draining) return;
    this.draining = new Promise((resolve) => {
      const done = () => {
        socket.off('drain', done);
        socket.off('close', done);
        this.draining = undefined;
        resolve();
      };
      socket.once('drain', done);
      socket.once('close', done);
    });
  }
}

/** The bytes of a stream piece without copying them (a string is encoded). */
function asBuffer(piece: unknown): Buffer {
  if (Buffer.isBuffer(piece)) return piece;
  if (typeof piece === 'string') return Buffer.from(piece);
  if (piece instanceof Uint8Array) return Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
  throw new TypeError('the stream to scan yielded something that is not bytes');
}

/**
 * Collects a reply up to its NUL. `push` returns the reply text (NUL and a trailing newline removed) once complete,
 * undefined while incomplete; it throws CLAMD_BAD_REPLY for an over-long line and, when `nothingAfter`, for bytes
 * after the NUL (in a session only one command is outstanding, so there is nothing else clamd may send).
 */
export class ReplyReader {
  private readonly parts: Buffer[] = [];
  private bytes = 0;
  private readonly nothingAfter: boolean;
  constructor(nothingAfter: boolean) {
    this.nothingAfter = nothingAfter;
  }

  get receivedAny(): boolean {
    return this.bytes > 0;
  }

  push(data: Buffer): string | undefined {
    this.parts.push(data);
    this.bytes += data.length;
    const all = Buffer.concat(this.parts, this.bytes);
    const nul = all.indexOf(0);
    if (nul < 0) {
      if (this.bytes > MAX_REPLY_BYTES) {
        throw new ClamdError('CLAMD_BAD_REPLY', `clamd reply longer than ${MAX_REPLY_BYTES} bytes without an end`);
      }
      return undefined;
    }
    const reply = all.subarray(0, nul).toString('utf8').replace(/\n$/, '');
    if (this.nothingAfter && nul + 1 < all.length) {
      throw new ClamdError('CLAMD_BAD_REPLY', `clamd sent ${all.length - nul - 1} bytes after its reply`, { reply });
    }
    return reply;
  }

  /** The error for a connection that ended before the reply was complete. */
  lost(why: string, cause?: Error): ClamdError {
    const partial = Buffer.concat(this.parts, this.bytes).toString('utf8');
    if (partial.length > 0) {
      return new ClamdError('CLAMD_BAD_REPLY', `clamd reply ended without its NUL (${why}): ${printable(partial)}`, {
        reply: partial,
        cause,
      });
    }
    return new ClamdError('CLAMD_CONNECTION_LOST', `connection to clamd lost before a reply (${why})`, { cause });
  }
}
