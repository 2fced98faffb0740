// Keeps track of whether clamd answers (for /readyz and a gauge) and of its version (named in every verdict): scan's
// and ingest's (which scans small messages itself) alike.
import { type ClamdTarget, ping, version } from './client.ts';

/** What the watch logs to (a pino logger fits): only when clamd goes down or comes back. */
export interface ClamdWatchLog {
  warn(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
}

export interface ClamdWatch {
  /** PINGs clamd now; true when it answered PONG. Refreshes the version when clamd came back. */
  check(): Promise<boolean>;
  /** "clamd <version>" as last seen, or "clamd" before clamd ever answered VERSION. */
  engine(): string;
}

export function watchClamd(target: ClamdTarget, log: ClamdWatchLog, onChange: (up: boolean) => void): ClamdWatch {
  let up: boolean | undefined;
  let engine = 'clamd';
  return {
    async check() {
      let now: boolean;
      try {
        await ping({ ...target, deadlineMs: 2000 });
        now = true;
      } catch (err) {
        now = false;
        // scan's messages wait for it; ingest sends everything to the scan stage meanwhile.
        if (up !== false) log.warn({ code: 'CLAMD_DOWN', err }, 'clamd does not answer PING');
      }
      if (now && up !== true) {
        engine = await version({ ...target, deadlineMs: 2000 })
          .then((v) => `clamd ${v}`)
          .catch(() => engine);
        if (up === false) log.info({ code: 'CLAMD_UP', engine }, 'clamd answers again');
      }
      if (now !== up) onChange(now);
      up = now;
      return now;
    },
    engine: () => engine,
  };
}
