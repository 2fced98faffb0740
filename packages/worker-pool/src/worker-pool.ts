// Long-lived worker threads for work a stranger can make slow (inbound decryption, a portal message's parse and
// sanitise): one job per worker at a time, each job under a time limit past which its worker is terminated and
// replaced, so the service's event loop and its other work go on. Workers are started when first needed (starting one
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

export interface JobSpec<T, Reply> {
  /** The job's time in its worker; past it the worker is terminated and the job ends as `onTimeout` says. */
  limitMs: number;
  /** Posts the job to the worker; `end` ends it early (e.g. its input could not be read), `ended` tells whether it has. */
  start(worker: Worker, end: (outcome: JobEnd<T>) => void, ended: () => boolean): void;
  /** A message of the worker: `end` the job with it, or wait for more. */
  onReply(reply: Reply, end: (outcome: JobEnd<T>) => void): void;
  /** How a job over its time ends (its worker is replaced). */
  onTimeout(): { value: T } | { error: Error };
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
        const end = (outcome: JobEnd<T>) => {
          if (ended) return;
          ended = true;
          clearTimeout(timer);
          worker.off('message', onMessage).off('error', onError).off('exit', onExit);
          if (outcome.keep) release(worker);
          else discard(worker);
          if ('value' in outcome) resolve(outcome.value);
          else reject(outcome.error);
        };
        const timer = setTimeout(() => end({ ...job.onTimeout(), keep: false }), job.limitMs);
        const onMessage = (reply: Reply) => job.onReply(reply, end);
        const onError = (error: Error) =>
          end({ error: failure(`${name} failed: ${error.message}`, error), keep: false });
        const onExit = (code: number) => end({ error: failure(`${name} stopped (exit code ${code})`), keep: false });
        worker.on('message', onMessage).on('error', onError).on('exit', onExit);
        job.start(worker, end, () => ended);
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
