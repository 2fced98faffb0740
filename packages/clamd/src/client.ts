// A small clamd client: one TCP connection per command, z-commands (NUL-terminated replies), INSTREAM upload with
// socket backpressure, and one deadline that covers connect, upload and scan. clamdjs is not used: it judges
// replies by substring, its timeout does nothing and it resolves on limit errors (LIBRARY-NOTES.md §3).
// For many scans, pool.ts keeps clamd sessions (IDSESSION) open instead; PING and VERSION stay one-shot.
import { connect, type Socket } from 'node:net';
import { ClamdError } from './errors.ts';
import { parseScanReply, printable, type ScanVerdict } from './reply.ts';
import {
  type CommandOptions,
  checkDeadline,
  checkScanOptions,
  ReplyReader,
  type ScanOptions,
  type ScanSource,
  uploadChunks,
} from './upload.ts';

export type { CommandOptions, ScanOptions, ScanSource } from './upload.ts';

/** Where clamd listens: `tcp://host:port`, or host and port. */
export type ClamdTarget = { url: string } | { host: string; port: number };

/**
 * Streams `source` to clamd (zINSTREAM) on a connection of its own and returns its verdict: clean only for an exact
 * `stream: OK`, infected for `stream: <name> FOUND`. Everything else rejects with a ClamdError, which always means
 * "not scanned". The source is read once (a function is called once); on failure it is destroyed.
 */
export async function scanStream(source: ScanSource, options: ClamdTarget & ScanOptions): Promise<ScanVerdict> {
  const limits = checkScanOptions(options);
  const stream = typeof source === 'function' ? source() : source;
  try {
    const { reply, bodySent } = await runCommand(options, 'INSTREAM', options.deadlineMs, (socket, onBodySent) =>
      uploadChunks(socket, stream, limits, onBodySent),
    );
    return verdictOf(reply, bodySent);
  } finally {
    if (!stream.readableEnded) stream.destroy();
  }
}

/**
 * The verdict of an INSTREAM reply. A verdict that came before the whole body was sent is not one: clamd answers
 * only after the zero-length chunk, so that is a broken or hostile peer (an early ERROR, such as the size limit,
 * stays what it is).
 */
export function verdictOf(reply: string, bodySent: boolean): ScanVerdict {
  const verdict = parseScanReply(reply);
  if (!bodySent) {
    throw new ClamdError('CLAMD_BAD_REPLY', `clamd answered before the stream was sent: ${printable(reply)}`, {
      reply,
    });
  }
  return verdict;
}

/** Resolves when clamd answers zPING with PONG; rejects with a ClamdError otherwise. */
export async function ping(options: ClamdTarget & Partial<CommandOptions>): Promise<void> {
  const { reply } = await runCommand(options, 'PING', options.deadlineMs ?? 2000);
  if (reply !== 'PONG') {
    throw new ClamdError('CLAMD_BAD_REPLY', `clamd answered PING with ${printable(reply)}`, { reply });
  }
}

/** clamd's version line, e.g. "ClamAV 1.0.7/27.../...". */
export async function version(options: ClamdTarget & Partial<CommandOptions>): Promise<string> {
  const { reply } = await runCommand(options, 'VERSION', options.deadlineMs ?? 2000);
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

type Upload = (socket: Socket, onBodySent: () => void) => Promise<void>;

/** Sends `z<command>\0` (then the upload, if any) and resolves with the reply up to its NUL. */
function runCommand(
  target: ClamdTarget,
  command: string,
  deadlineMs: number,
  upload?: Upload,
): Promise<{ reply: string; bodySent: boolean }> {
  const { host, port } = resolveTarget(target);
  try {
    checkDeadline(deadlineMs);
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const reader = new ReplyReader(false);
    let connected = false;
    let bodySent = false;
    let settled = false;

    const finish = (error: ClamdError | undefined, reply?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve({ reply: reply ?? '', bodySent });
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
      upload(socket, () => {
        bodySent = true;
      }).then(
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
      let reply: string | undefined;
      try {
        reply = reader.push(data);
      } catch (err) {
        finish(err as ClamdError);
        return;
      }
      if (reply !== undefined) finish(undefined, reply);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) {
        finish(
          new ClamdError('CLAMD_UNREACHABLE', `cannot connect to clamd ${host}:${port}: ${err.code ?? err.message}`, {
            cause: err,
          }),
        );
      } else {
        finish(reader.lost(`${err.code ?? err.message}`, err));
      }
    });
    socket.on('close', () => {
      finish(
        connected
          ? reader.lost('closed')
          : new ClamdError('CLAMD_UNREACHABLE', `cannot connect to clamd ${host}:${port}`),
      );
    });
  });
}
