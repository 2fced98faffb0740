// A pool of clamd sessions (IDSESSION), so that a scan does not pay for a connection of its own: same contract and
// same strict verdicts as the one-shot scanStream in client.ts. A session serves one scan at a time; idle ones are
// kept up to maxSessions and ended by us after idleCloseMs, long before clamd's own ReadTimeout (120 s) would.
import type { Readable } from 'node:stream';
import { type ClamdTarget, resolveTarget } from './client.ts';
import { ClamdError } from './errors.ts';
import type { ScanVerdict } from './reply.ts';
import { ClamdSession } from './session.ts';
import { checkScanOptions, type ScanOptions, type ScanSource, type UploadLimits } from './upload.ts';

export interface ClamdPoolOptions {
  /** Sessions open at most, busy and idle together; a scan beyond that waits for one (within its deadline). */
  maxSessions: number;
  /** An idle session is ended (zEND) after this many milliseconds (default 10 s). */
  idleCloseMs?: number;
  /**
   * A session is ended when it comes back after this many milliseconds since it was opened (default 60 s), so that
   * connections are spread anew over the clamd instances behind one address (a scaled-up or restarted one gets its
   * share) even when the load never lets a session idle.
   */
  maxSessionAgeMs?: number;
  /** The clock, for tests. */
  now?: () => number;
}

export interface ClamdPoolStats {
  /** Sessions open now (busy + idle). */
  sessions: number;
  busy: number;
  idle: number;
  /** Scans waiting for a session. */
  waiting: number;
  /** TCP connections opened since the pool was made. */
  connectionsOpened: number;
  /** Scans that ran on a session that had served a scan before. */
  reusedScans: number;
  /** Scans repeated on a fresh connection because clamd had closed the reused one before answering. */
  retriedScans: number;
}

export interface ClamdPool {
  /**
   * Like the one-shot scanStream: clean only for an exact `stream: OK`, infected for `stream: <name> FOUND`, a
   * ClamdError for everything else. The deadline covers waiting for a session, upload and reply. Pass a function
   * that opens the message to let a scan that met a session clamd had closed meanwhile run again on a fresh one.
   */
  scanStream(source: ScanSource, options: ScanOptions): Promise<ScanVerdict>;
  stats(): ClamdPoolStats;
  /** Takes no new scans, lets the running ones finish, then ends every session. */
  close(): Promise<void>;
}

const DEFAULT_IDLE_CLOSE_MS = 10_000;
const DEFAULT_MAX_SESSION_AGE_MS = 60_000;

interface IdleSession {
  session: ClamdSession;
  timer: NodeJS.Timeout;
}

interface Waiter {
  resolve(session: ClamdSession): void;
  onAbort(): void;
}

export function createClamdPool(options: ClamdTarget & ClamdPoolOptions): ClamdPool {
  const { host, port } = resolveTarget(options);
  const { maxSessions } = options;
  const idleCloseMs = options.idleCloseMs ?? DEFAULT_IDLE_CLOSE_MS;
  const maxSessionAgeMs = options.maxSessionAgeMs ?? DEFAULT_MAX_SESSION_AGE_MS;
  const now = options.now ?? Date.now;
  if (!Number.isInteger(maxSessions) || maxSessions < 1) {
    throw new ClamdError('CLAMD_INVALID_OPTIONS', `maxSessions must be a positive integer, not ${maxSessions}`);
  }
  for (const [name, value] of [
    ['idleCloseMs', idleCloseMs],
    ['maxSessionAgeMs', maxSessionAgeMs],
  ] as const) {
    if (!(value > 0)) throw new ClamdError('CLAMD_INVALID_OPTIONS', `${name} must be positive, not ${value}`);
  }

  /** Most recently used last: reuse takes the warmest, the others idle out. */
  const idle: IdleSession[] = [];
  const busy = new Set<ClamdSession>();
  const waiters: Waiter[] = [];
  let closing = false;
  let inFlight = 0;
  const drained: (() => void)[] = [];
  const counts = { connectionsOpened: 0, reusedScans: 0, retriedScans: 0 };
  const openedAt = new WeakMap<ClamdSession, number>();

  const openSession = (): ClamdSession => {
    const session = new ClamdSession(host, port, forgetIdle);
    openedAt.set(session, now());
    counts.connectionsOpened++;
    busy.add(session);
    session.busy = true;
    return session;
  };

  /** A session that died on its own: only an idle one is ours to drop (a busy one's scan sees the error). */
  function forgetIdle(session: ClamdSession): void {
    const at = idle.findIndex((entry) => entry.session === session);
    if (at < 0) return;
    const [entry] = idle.splice(at, 1);
    if (entry) clearTimeout(entry.timer);
    serveWaiters();
  }

  const takeIdle = (): ClamdSession | undefined => {
    for (let entry = idle.pop(); entry; entry = idle.pop()) {
      clearTimeout(entry.timer);
      if (!entry.session.usable) {
        entry.session.destroy();
        continue;
      }
      busy.add(entry.session);
      entry.session.busy = true;
      return entry.session;
    }
    return undefined;
  };

  const acquire = (signal: AbortSignal): Promise<ClamdSession> => {
    const warm = takeIdle();
    if (warm) return Promise.resolve(warm);
    if (busy.size + idle.length < maxSessions) return Promise.resolve(openSession());
    return new Promise<ClamdSession>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (session) => {
          signal.removeEventListener('abort', waiter.onAbort);
          resolve(session);
        },
        onAbort: () => {
          const at = waiters.indexOf(waiter);
          if (at >= 0) waiters.splice(at, 1);
          reject(signal.reason);
        },
      };
      waiters.push(waiter);
      signal.addEventListener('abort', waiter.onAbort, { once: true });
    });
  };

  /** Opens sessions for waiting scans while there is room. */
  function serveWaiters(): void {
    while (waiters.length > 0 && busy.size + idle.length < maxSessions) {
      waiters.shift()?.resolve(openSession());
    }
  }

  /** A session whose scan got a verdict: to a waiting scan, else idle (or ended, when too old or closing). */
  const giveBack = (session: ClamdSession): void => {
    busy.delete(session);
    if (!session.usable) {
      session.destroy();
      serveWaiters();
      return;
    }
    if (now() - (openedAt.get(session) ?? 0) >= maxSessionAgeMs) {
      session.end();
      serveWaiters();
      return;
    }
    const waiter = waiters.shift();
    if (waiter) {
      busy.add(session);
      waiter.resolve(session);
      return;
    }
    if (closing) {
      session.end();
      return;
    }
    session.busy = false;
    const entry: IdleSession = {
      session,
      timer: setTimeout(() => {
        const at = idle.indexOf(entry);
        if (at >= 0) idle.splice(at, 1);
        session.end();
      }, idleCloseMs),
    };
    entry.timer.unref();
    idle.push(entry);
  };

  /** After any error or unexpected reply: the session is never used again. */
  const discard = (session: ClamdSession): void => {
    busy.delete(session);
    session.destroy();
    serveWaiters();
  };

  /** A fresh connection in the place of a dead one, without letting a waiting scan take the slot in between. */
  const replace = (session: ClamdSession): ClamdSession => {
    busy.delete(session);
    session.destroy();
    return openSession();
  };

  const scanOn = async (
    session: ClamdSession,
    source: ScanSource,
    limits: UploadLimits,
    signal: AbortSignal,
  ): Promise<ScanVerdict> => {
    let stream: Readable;
    try {
      stream = typeof source === 'function' ? source() : source;
    } catch (err) {
      throw new ClamdError('CLAMD_SOURCE_FAILED', `opening the stream to scan failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
    try {
      return await session.scan(stream, limits, signal);
    } finally {
      if (!stream.readableEnded) stream.destroy();
    }
  };

  return {
    async scanStream(source, scanOptions) {
      const limits = checkScanOptions(scanOptions);
      if (closing) {
        // A programming error: the owner closes the pool only after its last scan.
        throw new ClamdError('CLAMD_INVALID_OPTIONS', 'the clamd session pool is closed');
      }
      inFlight++;
      const deadline = new AbortController();
      const timer = setTimeout(() => {
        deadline.abort(
          new ClamdError(
            'CLAMD_TIMEOUT',
            `clamd ${host}:${port} did not answer INSTREAM within ${scanOptions.deadlineMs} ms`,
          ),
        );
      }, scanOptions.deadlineMs);
      let session: ClamdSession | undefined;
      try {
        session = await acquire(deadline.signal);
        const reused = session.commandsSent > 0;
        if (reused) counts.reusedScans++;
        let verdict: ScanVerdict;
        try {
          verdict = await scanOn(session, source, limits, deadline.signal);
        } catch (err) {
          // clamd closed this session while it idled (a restart, a reload, its timeout) and we wrote into the
          // closed socket: nothing was scanned. Once more on a fresh connection, if the message can be read again.
          const closedMeanwhile = err instanceof ClamdError && err.code === 'CLAMD_CONNECTION_LOST';
          if (!(reused && closedMeanwhile && typeof source === 'function')) throw err;
          counts.retriedScans++;
          session = replace(session);
          verdict = await scanOn(session, source, limits, deadline.signal);
        }
        giveBack(session);
        return verdict;
      } catch (err) {
        if (session) discard(session);
        throw err;
      } finally {
        clearTimeout(timer);
        inFlight--;
        if (inFlight === 0) for (const done of drained.splice(0)) done();
      }
    },

    stats() {
      return {
        sessions: busy.size + idle.length,
        busy: busy.size,
        idle: idle.length,
        waiting: waiters.length,
        ...counts,
      };
    },

    async close() {
      closing = true;
      for (const entry of idle.splice(0)) {
        clearTimeout(entry.timer);
        entry.session.end();
      }
      if (inFlight > 0) await new Promise<void>((resolve) => drained.push(resolve));
    },
  };
}
