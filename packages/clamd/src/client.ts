// A small clamd client: one TCP connection per command, z-commands (NUL-terminated replies), INSTREAM upload with
// socket backpressure, and one deadline that covers connect, upload and scan. clamdjs is not used: it judges
// replies by substring, its timeout does nothing and it resolves on limit errors (LIBRARY-NOTES.md §3).
import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { ClamdError } from './errors.ts';
import { parseScanReply, printable, type ScanVerdict } from './reply.ts';

/** Where clamd listens: `tcp://host:port`, or host and port. */
export type ClamdTarget = { url: string } | { host: string; port: number };

export interface CommandOptions {
  /** Everything (connect, upload, scan, reply) must be done within this many milliseconds. */
  deadlineMs: number;
}

export interface ScanOptions extends CommandOptions {
  /** A longer stream is not scanned: CLAMD_LIMIT_EXCEEDED (keep it at or below clamd's StreamMaxLength). */
  maxBytes: number;
  /** Bytes per INSTREAM chunk (default 64 KiB). */
  chunkBytes?: number;
}

const DEFAULT_CHUNK_BYTES = 64 * 1024;
/** A clamd reply is one short line; anything longer is garbage. */
const MAX_REPLY_BYTES = 4096;

/**
 * Streams `source` to clamd (zINSTREAM) and returns its verdict: clean only for an exact `stream: OK`, infected for
 * `stream: <name> FOUND`. Everything else rejects with a ClamdError, which always means "not scanned".
 * The source is read once; on failure it is destroyed.
 */
export async function scanStream(source: Readable, options: ClamdTarget & ScanOptions): Promise<ScanVerdict> {
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > 2 ** 31) {
    throw new ClamdError('CLAMD_INVALID_OPTIONS', `chunkBytes must be a positive integer, not ${chunkBytes}`);
  }
  if (!(options.maxBytes >= 0)) {
    throw new ClamdError('CLAMD_INVALID_OPTIONS', `maxBytes must be a non-negative number, not ${options.maxBytes}`);
  }
  try {
    const reply = await runCommand(options, 'INSTREAM', options.deadlineMs, (socket) =>
      uploadChunks(socket, source, options.maxBytes, chunkBytes),
    );
    return parseScanReply(reply);
  } finally {
    if (!source.readableEnded) source.destroy();
  }
}

/** Resolves when clamd answers zPING with PONG; rejects with a ClamdError otherwise. */
export async function ping(options: ClamdTarget & Partial<CommandOptions>): Promise<void> {
  const reply = await runCommand(options, 'PING', options.deadlineMs ?? 2000);
  if (reply !== 'PONG') {
    throw new ClamdError('CLAMD_BAD_REPLY', `clamd answered PING with ${printable(reply)}`, { reply });
  }
}

/** clamd's version line, e.g. "ClamAV 1.0.7/27.../...". */
export async function version(options: ClamdTarget & Partial<CommandOptions>): Promise<string> {
  const reply = await runCommand(options, 'VERSION', options.deadlineMs ?? 2000);
  if (!/^ClamAV \S/.test(reply)) {
    throw new ClamdError('CLAMD_BAD_REPLY', `clamd answered VERSION with ${printable(reply)}`, { reply });
  }
  return reply;
}

export function resolveTarget(target: ClamdTarget): { host: string; port: number } {
  if ('host' in target) return { host: target.host, port: target.port };
  let url: URL;
  try {
    url = new URL(target.url);
  } catch {
    throw new ClamdError('CLAMD_INVALID_OPTIONS', `not a URL: ${target.url}`);
  }
  const port = Number(url.port);
  if (url.protocol !== 'tcp:' || !url.hostname || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ClamdError('CLAMD_INVALID_OPTIONS', `clamd URL must be tcp://host:port, not ${target.url}`);
  }
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port };
}

type Upload = (socket: Socket) => Promise<void>;

/** Sends `z<command>\0` (then the upload, if any) and resolves with the reply up to its NUL. */
function runCommand(target: ClamdTarget, command: string, deadlineMs: number, upload?: Upload): Promise<string> {
  const { host, port } = resolveTarget(target);
  if (!(deadlineMs > 0)) {
    return Promise.reject(new ClamdError('CLAMD_INVALID_OPTIONS', `deadlineMs must be positive, not ${deadlineMs}`));
  }
  return new Promise<string>((resolve, reject) => {
    const socket = connect({ host, port });
    const received: Buffer[] = [];
    let receivedBytes = 0;
    let connected = false;
    let settled = false;

    const finish = (error: ClamdError | undefined, reply?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(reply ?? '');
    };
    const timer = setTimeout(() => {
      finish(
        new ClamdError('CLAMD_TIMEOUT', `clamd ${host}:${port} did not answer ${command} within ${deadlineMs} ms`),
      );
    }, deadlineMs);

    socket.on('connect', () => {
      connected = true;
      socket.setNoDelay(true);
      socket.write(`z${command}\0`);
      if (!upload) return;
      upload(socket).then(
        () => {
          // All sent: the reply (or EOF) decides.
        },
        (err: unknown) => {
          // clamd may stop reading and answer early (StreamMaxLength): give its reply a moment to win.
          if (err instanceof ClamdError && err.code !== 'CLAMD_CONNECTION_LOST') finish(err);
        },
      );
    });
    socket.on('data', (data: Buffer) => {
      received.push(data);
      receivedBytes += data.length;
      const all = Buffer.concat(received, receivedBytes);
      const nul = all.indexOf(0);
      if (nul >= 0) {
        finish(undefined, all.subarray(0, nul).toString('utf8').replace(/\n$/, ''));
      } else if (receivedBytes > MAX_REPLY_BYTES) {
        finish(new ClamdError('CLAMD_BAD_REPLY', `clamd reply longer than ${MAX_REPLY_BYTES} bytes without an end`));
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) {
        finish(
          new ClamdError('CLAMD_UNREACHABLE', `cannot connect to clamd ${host}:${port}: ${err.code ?? err.message}`, {
            cause: err,
          }),
        );
      } else {
        finish(lostOrTruncated(received, `${err.code ?? err.message}`, err));
      }
    });
    socket.on('close', () => {
      finish(
        connected
          ? lostOrTruncated(received, 'closed')
          : new ClamdError('CLAMD_UNREACHABLE', `cannot connect to clamd ${host}:${port}`),
      );
    });
  });
}

function lostOrTruncated(received: Buffer[], why: string, cause?: Error): ClamdError {
  const partial = Buffer.concat(received).toString('utf8');
  if (partial.length > 0) {
    return new ClamdError('CLAMD_BAD_REPLY', `clamd reply ended without its NUL (${why}): ${printable(partial)}`, {
      reply: partial,
      cause,
    });
  }
  return new ClamdError('CLAMD_CONNECTION_LOST', `connection to clamd lost before a reply (${why})`, { cause });
}

/** INSTREAM body: chunks of <uint32 BE length><bytes>, then a zero length. Waits for 'drain' when the socket is full. */
async function uploadChunks(socket: Socket, source: Readable, maxBytes: number, chunkBytes: number): Promise<void> {
  let total = 0;
  try {
    for await (const piece of source) {
      const bytes = asBuffer(piece);
      total += bytes.length;
      if (total > maxBytes) {
        throw new ClamdError('CLAMD_LIMIT_EXCEEDED', `stream longer than ${maxBytes} bytes: not scanned`);
      }
      for (let offset = 0; offset < bytes.length; offset += chunkBytes) {
        const chunk = bytes.subarray(offset, offset + chunkBytes);
        const header = Buffer.alloc(4);
        header.writeUInt32BE(chunk.length, 0);
        // Two writes instead of a concatenated copy.
        await write(socket, header);
        await write(socket, chunk);
      }
    }
  } catch (err) {
    if (err instanceof ClamdError) throw err;
    if (socket.destroyed) throw new ClamdError('CLAMD_CONNECTION_LOST', 'connection closed during upload');
    throw new ClamdError('CLAMD_SOURCE_FAILED', `reading the stream to scan failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
  await write(socket, Buffer.alloc(4));
}

/** The bytes of a stream piece without copying them (a string is encoded). */
function asBuffer(piece: unknown): Buffer {
  if (Buffer.isBuffer(piece)) return piece;
  if (typeof piece === 'string') return Buffer.from(piece);
  if (piece instanceof Uint8Array) return Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
  throw new TypeError('the stream to scan yielded something that is not bytes');
}

function write(socket: Socket, data: Buffer): Promise<void> {
  if (socket.destroyed || !socket.writable) {
    return Promise.reject(new ClamdError('CLAMD_CONNECTION_LOST', 'connection closed during upload'));
  }
  if (socket.write(data)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      socket.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      socket.off('drain', onDrain);
      reject(new ClamdError('CLAMD_CONNECTION_LOST', 'connection closed during upload'));
    };
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}
