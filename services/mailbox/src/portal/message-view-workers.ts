// The message page's parse and sanitise (message-view.ts), an attachment download's parse and the reply form's quote
// (reply-context.ts) in worker threads with a limit of CPU time, as inbound decryption runs (@smgw/crypto
// decryption-workers). A stored message is up to the quota's 30 MB and sanitising 4 MB of plain HTML takes seconds of
// CPU: on the portal's one event loop, a few clients opening such a message again and again kept logins and everyone
// else's pages waiting. A worker over its CPU time (or, stuck, over @smgw/worker-pool's wall-clock backstop: several
// times that) is terminated and replaced; the page shows what it has (the text part, or the original to download).
// CPU, not the clock: a loaded pod makes an honest view slower by the clock, not more work. Workers live long (one
// starts in ~0.3 s of CPU) and are started when first needed; the message goes to the worker transferred, the view
// comes back as a structured clone, an attachment's bytes transferred. The three jobs share the workers (one bound on
// the portal's parsing CPU and memory; each worker has mailparser loaded already) and the limit.
import { type ErrorShape, type JobEnd, type READY, startWorkerPool } from '@smgw/worker-pool';
import { MimeStructureError } from '../mime-structure.ts';
import type { AttachmentContent, MessageAttachment, MessageView } from './message-view.ts';
import type { QuoteSource } from './reply-context.ts';

/**
 * What a view came to in its time: the whole view, the view without its HTML (parsed in time, not sanitised), or
 * nothing (not parsed in time, or no worker free in time: the wait has its own limit of the same length).
 */
export type ViewOutcome =
  | { done: MessageView }
  | { timedOut: 'sanitising'; view: MessageView }
  | { timedOut: 'parsing' | 'waiting' };

/** What an attachment or a quote came to in its time (no partial result: either it is there or it is not). */
export type JobOutcome<T> = { done: T } | { timedOut: 'parsing' | 'waiting' };

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
   * `raw` read as readMessageView reads it, in a worker, within the CPU limit. Rejects with the parse's error
   * (MimeStructureError, mailparser's) or MessageViewWorkerError.
   */
  view(raw: Buffer): Promise<ViewOutcome>;
  /**
   * The attachment at `index` as readMessageAttachment reads it (undefined: there is none), its bytes transferred
   * back. `raw` is handed over: when it holds its memory alone it is transferred, not copied, and is empty afterwards.
   */
  attachment(raw: Buffer, index: number): Promise<JobOutcome<AttachmentContent | undefined>>;
  /** What the reply form quotes of `raw` (readQuoteSource; undefined: nothing to quote). */
  quote(raw: Buffer): Promise<JobOutcome<QuoteSource | undefined>>;
  /** Terminates every worker; views under way or waiting reject with MessageViewWorkerError. */
  close(): Promise<void>;
}

export interface MessageViewWorkersOptions {
  /** Workers at most; a view waits for a free one. */
  size: number;
  /**
   * A view's CPU time in its worker thread (the clock stops it at WALL_CLOCK_BACKSTOP_FACTOR times that), and by
   * the clock at most as long again for the wait for a free worker.
   */
  cpuLimitMs: number;
  /** The worker's module (tests give one that crashes or spins); default message-view-worker.ts. */
  workerUrl?: URL;
}

/** What a worker is asked to make of a message. */
export type ViewJob = { job: 'view' } | { job: 'attachment'; index: number } | { job: 'quote' };

/** Main thread → worker: the job and the message, in memory of its own, transferred. */
export type ToViewWorker = ViewJob & { raw: Uint8Array };

/** Worker → main thread; an attachment's content in memory of its own, transferred. */
export type FromViewWorker =
  | typeof READY
  | { type: 'parsed'; view: MessageView }
  | { type: 'done'; view: MessageView }
  | { type: 'attachment'; attachment: (MessageAttachment & { content: Uint8Array }) | undefined }
  | { type: 'quote'; quote: QuoteSource | undefined }
  | { type: 'failed'; error: ErrorShape };

const WORKER_URL = new URL('./message-view-worker.ts', import.meta.url);

export function startMessageViewWorkers(options: MessageViewWorkersOptions): MessageViewWorkers {
  if (!(options.cpuLimitMs > 0)) throw new RangeError('cpuLimitMs must be positive');
  const pool = startWorkerPool({
    size: options.size,
    workerUrl: options.workerUrl ?? WORKER_URL,
    failure: (message, cause) => new MessageViewWorkerError(message, cause ? { cause } : undefined),
    name: 'the message view worker',
  });

  /**
   * One job on a worker, within the CPU limit; the wait for a free worker has its own limit of the same length.
   * `handOver`: the caller is done with `raw`, so memory it holds alone is transferred rather than copied.
   */
  async function runJob<T>(
    raw: Buffer,
    job: ViewJob,
    handOver: boolean,
    onReply: (reply: FromViewWorker, end: (outcome: JobEnd<T>) => void) => void,
    onTimeout: () => T,
  ): Promise<T | { timedOut: 'waiting' }> {
    const worker = await pool.acquireWithin(options.cpuLimitMs);
    if (!worker) return { timedOut: 'waiting' };
    return pool.run<T, FromViewWorker>(worker, {
      cpuLimitMs: options.cpuLimitMs,
      start(worker) {
        // Else a copy of its own to transfer: `raw` may share memory with other buffers, or the caller keeps it.
        const bytes = handOver && ownsItsMemory(raw) ? new Uint8Array(raw.buffer) : new Uint8Array(raw);
        const message: ToViewWorker = { ...job, raw: bytes };
        worker.postMessage(message, [bytes.buffer]);
      },
      onReply(reply, end) {
        // The message could not be read; the worker is fine.
        if (reply.type === 'failed') end({ error: rebuiltError(reply.error), keep: true });
        else onReply(reply, end);
      },
      onTimeout: () => ({ value: onTimeout() }),
    });
  }

  return {
    view(raw) {
      let parsed: MessageView | undefined;
      return runJob<ViewOutcome>(
        raw,
        { job: 'view' },
        false,
        (reply, end) => {
          if (reply.type === 'parsed') parsed = reply.view;
          else if (reply.type === 'done') end({ value: { done: reply.view }, keep: true });
        },
        () => (parsed ? { timedOut: 'sanitising', view: { ...parsed, htmlTimedOut: true } } : { timedOut: 'parsing' }),
      );
    },
    attachment(raw, index) {
      return runJob<JobOutcome<AttachmentContent | undefined>>(
        raw,
        { job: 'attachment', index },
        true,
        (reply, end) => {
          if (reply.type !== 'attachment') return;
          const found = reply.attachment;
          const content =
            found && Buffer.from(found.content.buffer, found.content.byteOffset, found.content.byteLength);
          end({ value: { done: found && content ? { ...found, content } : undefined }, keep: true });
        },
        () => ({ timedOut: 'parsing' }),
      );
    },
    quote(raw) {
      return runJob<JobOutcome<QuoteSource | undefined>>(
        raw,
        { job: 'quote' },
        false,
        (reply, end) => {
          if (reply.type === 'quote') end({ value: { done: reply.quote }, keep: true });
        },
        () => ({ timedOut: 'parsing' }),
      );
    },
    close: () => pool.close(),
  };
}

/** Whether `bytes` is the whole of its memory (not a slice of Node's shared pool or of a larger buffer). */
export function ownsItsMemory(bytes: Uint8Array): bytes is Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
}

/** The worker's error as the class the page handles (MimeStructureError), or an Error with its code. */
function rebuiltError(shape: ErrorShape): Error {
  if (shape.code === 'MAILBOX_MIME_TOO_COMPLEX') return new MimeStructureError(shape.message);
  return Object.assign(new Error(shape.message), shape.code ? { code: shape.code } : {});
}
