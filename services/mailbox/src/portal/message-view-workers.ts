// The message page's parse and sanitise (message-view.ts) in worker threads with a time limit, as inbound decryption
// runs (@smgw/crypto decryption-workers). A stored message is up to the quota's 30 MB and sanitising 4 MB of plain
// HTML takes seconds of CPU: on the portal's one event loop, a few clients opening such a message again and again
// kept logins and everyone else's pages waiting. A worker over its time is terminated and replaced; the page shows
// what it has (the text part, or the original to download). Workers live long (one starts in ~0.3 s of CPU) and are
// started when first needed; the message goes to the worker transferred, the view comes back as a structured clone.
import type { Worker } from 'node:worker_threads';
import { type ErrorShape, type READY, startWorkerPool } from '@smgw/worker-pool';
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
  | typeof READY
  | { type: 'parsed'; view: MessageView }
  | { type: 'done'; view: MessageView }
  | { type: 'failed'; error: ErrorShape };

const WORKER_URL = new URL('./message-view-worker.ts', import.meta.url);

export function startMessageViewWorkers(options: MessageViewWorkersOptions): MessageViewWorkers {
  if (!(options.timeLimitMs > 0)) throw new RangeError('timeLimitMs must be positive');
  const pool = startWorkerPool({
    size: options.size,
    workerUrl: options.workerUrl ?? WORKER_URL,
    failure: (message, cause) => new MessageViewWorkerError(message, cause ? { cause } : undefined),
    name: 'the message view worker',
  });

  function viewIn(worker: Worker, raw: Buffer): Promise<ViewOutcome> {
    let parsed: MessageView | undefined;
    return pool.run<ViewOutcome, FromViewWorker>(worker, {
      limitMs: options.timeLimitMs,
      start(worker) {
        // A copy of its own to transfer: `raw` may share memory with other buffers, and the caller keeps it.
        const copy = new Uint8Array(raw);
        const message: ToViewWorker = { raw: copy };
        worker.postMessage(message, [copy.buffer]);
      },
      onReply(reply, end) {
        if (reply.type === 'parsed') parsed = reply.view;
        else if (reply.type === 'done') end({ value: { done: reply.view }, keep: true });
        // The message could not be read; the worker is fine.
        else if (reply.type === 'failed') end({ error: rebuiltError(reply.error), keep: true });
      },
      onTimeout: () => ({
        value: parsed ? { timedOut: 'sanitising', view: { ...parsed, htmlTimedOut: true } } : { timedOut: 'parsing' },
      }),
    });
  }

  return {
    async view(raw) {
      // The wait for a free worker has its own limit of the same length.
      const worker = await pool.acquireWithin(options.timeLimitMs);
      if (!worker) return { timedOut: 'waiting' };
      return viewIn(worker, raw);
    },
    close: () => pool.close(),
  };
}

/** The worker's error as the class the page handles (MimeStructureError), or an Error with its code. */
function rebuiltError(shape: ErrorShape): Error {
  if (shape.code === 'MAILBOX_MIME_TOO_COMPLEX') return new MimeStructureError(shape.message);
  return Object.assign(new Error(shape.message), shape.code ? { code: shape.code } : {});
}
