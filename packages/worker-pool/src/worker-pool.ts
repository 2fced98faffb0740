// Long-lived worker threads for work a stranger can make slow (inbound decryption, a portal message's parse and
// sanitise): one job per worker at a time, each job under a limit of its worker thread's CPU time past which its worker
// is terminated and replaced, so the service's event loop and its other work go on. The limit counts CPU, not the
// clock: on a loaded machine an honest large message takes longer by the clock for the same work, and the limit is
// there to stop work without end, not a slow pod. A wall-clock backstop (several times the CPU limit) stops a job
// that waits instead of working, which these jobs never should. Workers are started when first needed (starting one
// loads its modules: tenths of a second of CPU and tens of MB) and kept; an idle one does not keep the process alive.
// What a job sends and how it ends is its caller's (JobSpec); the pool only hands out, takes back and replaces workers.
import { Worker } from 'node:worker_threads';

/** What a worker posts once it is ready for its first job. */
export const READY = { type: 'ready' } as const;

/** An error as it crosses from a worker: its class name, stable code and words (never content or keys). */
export interface ErrorShape {
  name: string;
  code?: string;
  message: string;
}

export function errorShape(error: unknown): ErrorShape {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const code = (error as { code?: unknown }).code;
  return { name: error.name, message: error.message, ...(typeof code === 'string' ? { code } : {}) };
}

/** How a job ends: with its value or error; `keep` when the worker is fine for the next job (else it is replaced). */
export type JobEnd<T> = ({ value: T } | { error: Error }) & { keep: boolean };

/** Which limit a job ran over: its worker thread's CPU time, or the wall-clock backstop. */
export type JobLimit = 'cpu' | 'wall';

/** The wall-clock backstop of a job when it names none: this many times its CPU limit. */
export const WALL_CLOCK_BACKSTOP_FACTOR = 5;

export interface JobSpec<T, Reply> {
  /**
   * The CPU time (user and system, ms) the job may take in its worker thread; past it the worker is terminated and
   * the job ends as `onTimeout('cpu')` says. Time the thread waits (for its input, or for a CPU on a loaded machine)
   * does not count.
   */
  cpuLimitMs: number;
  /**
   * The job's time by the clock at most, default WALL_CLOCK_BACKSTOP_FACTOR × cpuLimitMs: past it the worker is
   * terminated and the job ends as `onTimeout('wall')` says. Also what stops a worker held in one long native call,
   * whose CPU time cannot be read until it returns.
   */
  wallLimitMs?: number;
  /** Posts the job to the worker; `end` ends it early (e.g. its input could not be read), `ended` tells whether it has. */
  start(worker: Worker, end: (outcome: JobEnd<T>) => void, ended: () => boolean): void;
  /** A message of the worker: `end` the job with it, or wait for more. */
  onReply(reply: Reply, end: (outcome: JobEnd<T>) => void): void;
  /** How a job over its CPU limit or its wall-clock backstop ends (its worker is replaced). */
  onTimeout(limit: JobLimit): { value: T } | { error: Error };
  /**
   * Told the CPU time (ms) the job took in its worker thread, however it ended, before its promise settles: read once
   * more at its end when it ended by itself, else the last reading (for a budget over several jobs).
   */
  onCpuUsed?(cpuMs: number): void;
}

export interface WorkerPool {
  /** A worker for one job: an idle one, a new one while fewer than `size` live, else the next released one. */
  acquire(): Promise<Worker>;
  /** The same, or undefined when none was free within `waitMs`. */
  acquireWithin(waitMs: number): Promise<Worker | undefined>;
  /** Runs one job on an acquired worker, which goes back to the pool (or is replaced) when the job ends. */
  run<T, Reply>(worker: Worker, job: JobSpec<T, Reply>): Promise<T>;
  /** Terminates every worker; jobs under way or waiting reject with the pool's failure error. */
  close(): Promise<void>;
}

export interface StartWorkerPoolOptions {
  /** Workers at most. */
  size: number;
  /** The worker's module; it posts READY when it is ready for jobs. */
  workerUrl: URL;
  /** The error for a worker that died, could not start, or a pool that is closed (not the job's fault: retry). */
  failure: (message: string, cause?: Error) => Error;
  /** Names the worker in those errors ("the decryption worker"). */
  name: string;
}

/**
 * The CPU time (µs) a thread used from `before` to `after`, two readings of process.threadCpuUsage() in it or of
 * worker.cpuUsage() from outside (the same numbers: µs of user and of system time).
 */
export function cpuMicrosBetween(before: NodeJS.CpuUsage, after: NodeJS.CpuUsage): number {
  return after.user - before.user + (after.system - before.system);
}

/**
 * How often a job's CPU is read: a tenth of its limit, between 5 and 100 ms. A job may overrun its limit by about
 * this much before it is stopped; each reading costs the worker an interrupt and the main thread a promise.
 */
export function cpuReadingIntervalMs(cpuLimitMs: number): number {
  return Math.min(100, Math.max(5, cpuLimitMs / 10));
}

interface Waiting {
  take(worker: Worker): void;
  fail(error: Error): void;
}

export function startWorkerPool(options: StartWorkerPoolOptions): WorkerPool {
  if (!(Number.isInteger(options.size) && options.size >= 1)) throw new RangeError('size must be a positive integer');
  const { failure, name } = options;
  const idle: Worker[] = [];
  const alive = new Set<Worker>();
  const waiting: Waiting[] = [];
  let closed = false;

  /** A started worker, ready for its first job; the pool forgets it when it exits, however. */
  function spawn(): Promise<Worker> {
    const worker = new Worker(options.workerUrl);
    alive.add(worker);
    worker.once('exit', () => {
      alive.delete(worker);
      const at = idle.indexOf(worker);
      if (at >= 0) idle.splice(at, 1);
    });
    return new Promise<Worker>((resolve, reject) => {
      const onMessage = (message: { type?: unknown }) => {
        if (message?.type !== READY.type) return;
        detach();
        resolve(worker);
      };
      const onError = (error: Error) => {
        detach();
        reject(failure(`${name} did not start: ${error.message}`, error));
      };
      const onExit = (code: number) => {
        detach();
        reject(failure(`${name} stopped while starting (exit code ${code})`));
      };
      const detach = () => worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    });
  }

  function freeWorker(): Promise<Worker> | undefined {
    if (closed) throw failure(`${name}s are closed`);
    const free = idle.pop();
    if (free) {
      free.ref();
      return Promise.resolve(free);
    }
    return alive.size < options.size ? spawn() : undefined;
  }

  function release(worker: Worker): void {
    if (closed || !alive.has(worker)) return;
    const next = waiting.shift();
    if (next) {
      next.take(worker);
      return;
    }
    // An idle worker does not keep the process alive.
    worker.unref();
    idle.push(worker);
  }

  /** A worker given up (terminated, or dead): whoever waits gets a new one in its place. */
  function discard(worker: Worker): void {
    alive.delete(worker);
    void worker.terminate();
    const next = waiting.shift();
    if (next) spawn().then(next.take, next.fail);
  }

  return {
    async acquire() {
      return freeWorker() ?? new Promise<Worker>((take, fail) => waiting.push({ take, fail }));
    },
    async acquireWithin(waitMs) {
      const free = freeWorker();
      if (free) return free;
      return new Promise<Worker | undefined>((resolve, reject) => {
        const entry: Waiting = {
          take: (worker) => {
            clearTimeout(timer);
            resolve(worker);
          },
          fail: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        };
        const timer = setTimeout(() => {
          waiting.splice(waiting.indexOf(entry), 1);
          resolve(undefined);
        }, waitMs);
        waiting.push(entry);
      });
    },
    run<T, Reply>(worker: Worker, job: JobSpec<T, Reply>) {
      return new Promise<T>((resolve, reject) => {
        let ended = false;
        // The thread's CPU time when the job was given, and what the job has used of it since (µs), last read.
        let baseline: NodeJS.CpuUsage | undefined;
        let usedMicros = 0;
        let nextReading: NodeJS.Timeout | undefined;
        const readUsed = async (): Promise<number> => {
          if (!baseline) return 0;
          const now = await worker.cpuUsage();
          usedMicros = Math.max(usedMicros, cpuMicrosBetween(baseline, now));
          return usedMicros;
        };
        const end = (outcome: JobEnd<T>) => {
          if (ended) return;
          ended = true;
          clearTimeout(backstop);
          clearTimeout(nextReading);
          worker.off('message', onMessage).off('error', onError).off('exit', onExit);
          const settle = () => {
            job.onCpuUsed?.(usedMicros / 1000);
            if (outcome.keep) release(worker);
            else discard(worker);
            if ('value' in outcome) resolve(outcome.value);
            else reject(outcome.error);
          };
          // A worker that finished is idle: its CPU is read at once (waited for a reading's interval at most, so a
          // worker that does not answer never holds the job). A terminated one keeps its last reading.
          if (outcome.keep) {
            let lateTimer: NodeJS.Timeout | undefined;
            const late = new Promise<void>((resolve) => {
              lateTimer = setTimeout(resolve, everyMs);
            });
            void Promise.race([readUsed().catch(() => {}), late]).then(() => {
              clearTimeout(lateTimer);
              settle();
            });
          } else {
            settle();
          }
        };
        // The main thread reads the worker's CPU (worker.cpuUsage() is answered by the isolate's interrupt, also
        // inside a busy loop) and terminates it past the limit: a worker in a synchronous loop needs not cooperate.
        const everyMs = cpuReadingIntervalMs(job.cpuLimitMs);
        const checkCpu = () => {
          readUsed().then(
            (used) => {
              if (ended) return;
              if (used >= job.cpuLimitMs * 1000) end({ ...job.onTimeout('cpu'), keep: false });
              else nextReading = setTimeout(checkCpu, everyMs);
            },
            // No longer running: its exit ends the job.
            () => {},
          );
        };
        const backstop = setTimeout(
          () => end({ ...job.onTimeout('wall'), keep: false }),
          job.wallLimitMs ?? job.cpuLimitMs * WALL_CLOCK_BACKSTOP_FACTOR,
        );
        const onMessage = (reply: Reply) => job.onReply(reply, end);
        const onError = (error: Error) =>
          end({ error: failure(`${name} failed: ${error.message}`, error), keep: false });
        const onExit = (code: number) => end({ error: failure(`${name} stopped (exit code ${code})`), keep: false });
        worker.on('message', onMessage).on('error', onError).on('exit', onExit);
        // The job starts once the thread's CPU before it is known, so none of the job's own is taken as before.
        worker.cpuUsage().then(
          (before) => {
            if (ended) return;
            baseline = before;
            job.start(worker, end, () => ended);
            nextReading = setTimeout(checkCpu, everyMs);
          },
          (error: Error) => end({ error: failure(`${name} stopped: ${error.message}`, error), keep: false }),
        );
      });
    },
    async close() {
      closed = true;
      for (const { fail } of waiting.splice(0)) fail(failure(`${name}s are closed`));
      idle.length = 0;
      await Promise.all([...alive].map((worker) => worker.terminate()));
      alive.clear();
    },
  };
}
