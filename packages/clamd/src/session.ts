// One clamd connection in IDSESSION mode (clamd(8)): `zIDSESSION\0` once, then commands whose replies carry the
// request number, "<n>: stream: OK". We keep exactly one command outstanding, so every reply must carry the number
// of the command just sent and nothing may arrive in between. Anything unexpected ends the session.
import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { verdictOf } from './client.ts';
import { ClamdError } from './errors.ts';
import { type ScanVerdict, unprefixSessionReply } from './reply.ts';
import { ReplyReader, type UploadLimits, uploadChunks } from './upload.ts';

const INSTREAM_COMMAND = Buffer.from('zINSTREAM\0', 'latin1');

interface ActiveCommand {
  onData(data: Buffer): void;
  onLost(why: string, cause?: Error): void;
}

export class ClamdSession {
  readonly host: string;
  readonly port: number;
  private readonly socket: Socket;
  private connected = false;
  /** The connection ended, broke or was given up: never used again. */
  private dead = false;
  private nextId = 1;
  private active: ActiveCommand | undefined;
  /** Called once when the session dies on its own (clamd closed it, or sent something unasked). */
  private readonly onDeath: (session: ClamdSession) => void;

  constructor(host: string, port: number, onDeath: (session: ClamdSession) => void) {
    this.host = host;
    this.port = port;
    this.onDeath = onDeath;
    this.socket = connect({ host, port });
    this.socket.setNoDelay(true);
    // Written before the connect completes (Node queues it); clamd does not answer IDSESSION.
    this.socket.write('zIDSESSION\0');
    this.socket.on('connect', () => {
      this.connected = true;
    });
    this.socket.on('data', (data: Buffer) => {
      if (this.active) this.active.onData(data);
      // clamd has nothing to say to an idle session but "COMMAND READ TIMED OUT" before it closes it.
      else this.die();
    });
    this.socket.on('end', () => {
      // clamd closed its side (its ReadTimeout, a restart): an active command learns it from 'close'.
      if (!this.active) this.die();
    });
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      this.active?.onLost(err.code ?? err.message, err);
      this.die();
    });
    this.socket.on('close', () => {
      this.active?.onLost('closed');
      this.die();
    });
  }

  /** Commands sent on this connection so far: after the first, the connection is a reused one. */
  get commandsSent(): number {
    return this.nextId - 1;
  }

  get usable(): boolean {
    return !this.dead && !this.socket.destroyed && this.socket.writable;
  }

  /** Keeps the process alive only while a command is outstanding. */
  set busy(busy: boolean) {
    if (busy) this.socket.ref();
    else this.socket.unref();
  }

  /**
   * zINSTREAM of `source` and its verdict. Rejects with a ClamdError (and destroys the session) for everything
   * else, and with `signal.reason` when `signal` aborts. Does not destroy `source`.
   */
  scan(source: Readable, limits: UploadLimits, signal: AbortSignal): Promise<ScanVerdict> {
    if (this.active) return Promise.reject(new Error('a clamd session runs one command at a time'));
    if (!this.usable) {
      return Promise.reject(new ClamdError('CLAMD_CONNECTION_LOST', 'the clamd session was closed before the scan'));
    }
    const id = this.nextId++;
    const reader = new ReplyReader(true);
    let bodySent = false;
    return new Promise<ScanVerdict>((resolve, reject) => {
      let settled = false;
      const finish = (error: unknown, verdict?: ScanVerdict) => {
        if (settled) return;
        settled = true;
        this.active = undefined;
        signal.removeEventListener('abort', onAbort);
        if (verdict && !error) {
          resolve(verdict);
          return;
        }
        this.destroy();
        reject(error);
      };
      const onAbort = () => finish(signal.reason);
      if (signal.aborted) {
        finish(signal.reason);
        return;
      }
      signal.addEventListener('abort', onAbort);

      this.active = {
        onData: (data) => {
          try {
            const reply = reader.push(data);
            if (reply !== undefined) finish(undefined, verdictOf(unprefixSessionReply(reply, id), bodySent));
          } catch (err) {
            finish(err);
          }
        },
        onLost: (why, cause) => {
          finish(
            this.connected
              ? reader.lost(why, cause)
              : new ClamdError('CLAMD_UNREACHABLE', `cannot connect to clamd ${this.host}:${this.port}: ${why}`, {
                  cause,
                }),
          );
        },
      };
      // The command goes out with the first bytes of the stream, in one write.
      uploadChunks(
        this.socket,
        source,
        limits,
        () => {
          bodySent = true;
        },
        INSTREAM_COMMAND,
      ).catch((err: unknown) => {
        // clamd may stop reading and answer early (StreamMaxLength): give its reply a moment to win.
        if (err instanceof ClamdError && err.code !== 'CLAMD_CONNECTION_LOST') finish(err);
      });
    });
  }

  /** Ends the session politely (zEND); clamd closes the connection. */
  end(): void {
    if (this.dead) return;
    this.dead = true;
    this.socket.end('zEND\0');
    // clamd closes at once; should it not, do not wait for it.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  destroy(): void {
    this.dead = true;
    this.socket.destroy();
  }

  private die(): void {
    const wasAlive = !this.dead;
    this.destroy();
    if (wasAlive) this.onDeath(this);
  }
}
