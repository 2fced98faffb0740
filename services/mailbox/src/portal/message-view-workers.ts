// The message page's parse and sanitise (message-view.ts) in worker threads with a time limit, as inbound decryption
// runs (@smgw/crypto decryption-workers). A stored message is up to the quota's 30 MB and sanitising 4 MB of plain
// HTML takes seconds of CPU: on the portal's one event loop, a few clients opening such a message again and again
// kept logins and everyone else's pages waiting. A worker over its time is terminated and replaced; the page shows
// what it has (the text part, or the original to download). Workers live long (one starts in ~0.3 s of CPU) and are
// started when first needed; the message goes to the worker transferred, the view comes back as a structured clone.
import { Worker } from 'node:worker_threads';
import { MimeStructureError } from '../mime-structure.ts';
import type { MessageView } from './message-view.ts';

/**
 * What a view came to in its time: the whole view, the view without its HTML (parsed in time, not sanitised), or
 * nothing (not parsed in time, or no worker free in time: the wait has its own limit of the same length).
 */
export type ViewOutcome =
  | { done: MessageView }
  | { timedOut: 'sanitising'; view: MessageView }
  | { timedOut: 'parsing' | 'waiting' };

/** The worker died (crashed, ran out of memory) or could not start: not the message's fault, the page is a 500. */
export class MessageViewWorkerError extends Error {
  readonly code = 'PORTAL_VIEW_WORKER_FAILED';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MessageViewWorkerError';
  }
}

export interface MessageViewWorkers {
  /**
   * `raw` read as readMessageView reads it, in a worker, within the time limit. Rejects with the parse's error
   * (MimeStructureError, mailparser's) or MessageViewWorkerError.
   */
  view(raw: Buffer): Promise<ViewOutcome>;
  /** Terminates every worker; views under way or waiting reject with MessageViewWorkerError. */
  close(): Promise<void>;
}

export interface MessageViewWorkersOptions {
  /** Workers at most; a view waits for a free one. */
  size: number;
  /** A view's time in its worker, and again at most for the wait for a free worker. */
  timeLimitMs: number;
  /** The worker's module (tests give one that crashes or spins); default message-view-worker.ts. */
  workerUrl?: URL;
}

/** Main thread → worker: the message, in memory of its own, transferred. */
export type ToViewWorker = { raw: Uint8Array };

/** Worker → main thread. */
export type FromViewWorker =
  | { type: 'ready' }
  | { type: 'parsed'; view: MessageView }
  | { type: 'done'; view: MessageView }
  | { type: 'failed'; error: { name: string; code?: string; message: string } };

const WORKER_URL = new URL('./message-view-worker.ts', import.meta.url);

interface Waiting {
  take(worker: Worker): void;
  fail(error: Error): void;
}

export function startMessageViewWorkers(options: MessageViewWorkersOptions): MessageViewWorkers {
  if (!(Number.isInteger(options.size) && options.size >= 1)) throw new RangeError('size must be a positive integer');
  if (!(options.timeLimitMs > 0)) throw new RangeError('timeLimitMs must be positive');
  const workerUrl = options.workerUrl ?? WORKER_URL;
  const idle: Worker[] = [];
  const alive = new Set<Worker>();
  const waiting: Waiting[] = [];
  let closed = false;

  /** A started worker, ready for its first view; the pool forgets it when it exits, however. */
  function spawn(): Promise<Worker> {
    const worker = new Worker(workerUrl);
    alive.add(worker);
    worker.once('exit', () => {
      alive.delete(worker);
      const at = idle.indexOf(worker);
      if (at >= 0) idle.splice(at, 1);
    });
    return new Promise<Worker>((resolve, reject) => {
      const onMessage = (message: FromViewWorker) => {
        if (message.type !== 'ready') return;
        done();
        resolve(worker);
      };
      const onError = (error: Error) => {
        done();
        reject(new MessageViewWorkerError(`the message view worker did not start: ${error.message}`, { cause: error }));
      };
      const onExit = (code: number) => {
        done();
        reject(new MessageViewWorkerError(`the message view worker stopped while starting (exit code ${code})`));
      };
      const done = () => {
        worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      };
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    });
  }

  /** A worker for the next view, or undefined when none was free within the time limit. */
  async function acquire(): Promise<Worker | undefined> {
    if (closed) throw new MessageViewWorkerError('the message view workers are closed');
    const free = idle.pop();
    if (free) {
      free.ref();
      return free;
    }
    if (alive.size < options.size) return spawn();
    return new Promise<Worker | undefined>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.splice(waiting.indexOf(entry), 1);
        resolve(undefined);
      }, options.timeLimitMs);
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
      waiting.push(entry);
    });
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

  function run(worker: Worker, raw: Buffer): Promise<ViewOutcome> {
    return new Promise<ViewOutcome>((resolve, reject) => {
      let settled = false;
      let parsed: MessageView | undefined;
      const finish = (outcome: { error: Error; keep?: boolean } | { view: ViewOutcome; keep: boolean }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        worker.off('message', onMessage).off('error', onError).off('exit', onExit);
        if (outcome.keep) release(worker);
        else discard(worker);
        if ('view' in outcome) resolve(outcome.view);
        else reject(outcome.error);
      };
      const timer = setTimeout(() => {
        finish({
          view: parsed ? { timedOut: 'sanitising', view: { ...parsed, htmlTimedOut: true } } : { timedOut: 'parsing' },
          keep: false,
        });
      }, options.timeLimitMs);
      const onMessage = (reply: FromViewWorker) => {
        if (reply.type === 'parsed') parsed = reply.view;
        else if (reply.type === 'done') finish({ view: { done: reply.view }, keep: true });
        // The message could not be read; the worker is fine.
        else if (reply.type === 'failed') finish({ error: rebuiltError(reply.error), keep: true });
      };
      const onError = (error: Error) =>
        finish({
          error: new MessageViewWorkerError(`the message view worker failed: ${error.message}`, { cause: error }),
        });
      const onExit = (code: number) =>
        finish({ error: new MessageViewWorkerError(`the message view worker stopped (exit code ${code})`) });
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
      // A copy of its own to transfer: `raw` may share memory with other buffers, and the caller keeps it.
      const copy = new Uint8Array(raw);
      const message: ToViewWorker = { raw: copy };
      worker.postMessage(message, [copy.buffer]);
    });
  }

  return {
    async view(raw) {
      const worker = await acquire();
      if (!worker) return { timedOut: 'waiting' };
      return run(worker, raw);
    },
    async close() {
      closed = true;
      for (const { fail } of waiting.splice(0)) fail(new MessageViewWorkerError('the message view workers are closed'));
      idle.length = 0;
      await Promise.all([...alive].map((worker) => worker.terminate()));
      alive.clear();
    },
  };
}

/** The worker's error as the class the page handles (MimeStructureError), or an Error with its code. */
function rebuiltError(shape: { name: string; code?: string; message: string }): Error {
  if (shape.code === 'MAILBOX_MIME_TOO_COMPLEX') return new MimeStructureError(shape.message);
  return Object.assign(new Error(shape.message), shape.code ? { code: shape.code } : {});
}
