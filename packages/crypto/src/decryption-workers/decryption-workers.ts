// Inbound decryption in worker threads with a limit of CPU time. openpgp reads partial body lengths of 1 byte at about
// 1 s of CPU per MB, and the packets inside the encrypted data cannot be looked at before decrypting: a stranger's
// message to an agency key held an encrypt consumer for many seconds per recipient key and layer. A worker over its
// CPU time (or, stuck, over the pool's wall-clock backstop: several times that) is terminated
// (DecryptionTimeLimitError); the event loop, the other messages and the service go on. CPU, not the clock: on a
// loaded pod an honest 50 MB message took 8 s by the clock for the same work. Workers live long
// (starting one, with openpgp and mailparser loaded, costs ~0.7 s of CPU and ~45 MB) and are started when first needed.
// The private keys go to the worker by postMessage: a worker thread is in this process, as the main thread's copy is.
import type { Readable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import { type ErrorShape, type READY, startWorkerPool, WALL_CLOCK_BACKSTOP_FACTOR } from '@smgw/worker-pool';
import { PgpError, type PgpErrorCode } from '../openpgp/errors.ts';
import type { ArmoredPrivateKey } from '../openpgp/private-keys.ts';
import { SmimeError, type SmimeErrorCode } from '../smime/errors.ts';

/** One layer to open: OpenPGP (PGP/MIME or inline, decryptPgpMime) or S/MIME (decryptEnveloped), with its keys. */
export type DecryptionJob =
  | { form: 'pgp'; privateKeys: ArmoredPrivateKey[]; now: Date; maxBytes: number }
  | {
      form: 'smime';
      keys: Array<{ certificate: Uint8Array | string; privateKey: Uint8Array | string }>;
      maxBytes: number;
    };

export interface DecryptedLayer {
  entity: Buffer;
  /**
   * Something vouches that the content is the one encrypted: OpenPGP's MDC or AEAD (openpgp refuses content
   * without), S/MIME AuthEnvelopedData. False for S/MIME EnvelopedData (AES-CBC, 3DES), which has no integrity.
   */
  authenticated: boolean;
  /** OpenPGP: the fingerprint of the key that opened it. */
  decryptedWith?: string;
}

/** CPU time left for a message's decryptions; each one takes the CPU its worker thread used (also when it failed). */
export interface DecryptionBudget {
  remainingCpuMs: number;
}

/** The decryption ran out of its CPU time, its worker was terminated: the same bytes would again (no retry helps). */
export class DecryptionTimeLimitError extends Error {
  readonly code = 'DECRYPTION_TIME_LIMIT';
  constructor(message: string) {
    super(message);
    this.name = 'DecryptionTimeLimitError';
  }
}

/** The worker died (crashed, ran out of memory, was stopped) or could not start: not the message's fault, retry. */
export class DecryptionWorkerError extends Error {
  readonly code = 'DECRYPTION_WORKER_FAILED';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DecryptionWorkerError';
  }
}

export interface DecryptionWorkers {
  /**
   * `message` (streamed to the worker chunk by chunk) opened by `job` in a worker, within `budget.remainingCpuMs` of
   * the worker thread's CPU time (a wait for a free worker, or for a CPU on a loaded machine, does not count).
   * Rejects with the job's PgpError/SmimeError, DecryptionTimeLimitError, DecryptionWorkerError, or the error
   * reading `message`.
   */
  decrypt(message: Readable | Buffer, job: DecryptionJob, budget: DecryptionBudget): Promise<DecryptedLayer>;
  /** Terminates every worker; decryptions under way or waiting reject with DecryptionWorkerError. */
  close(): Promise<void>;
}

export interface DecryptionWorkersOptions {
  /** Workers at most; a decryption waits for a free one (its CPU time counts from when it gets one). */
  size: number;
  /** The worker's module (tests give one that can crash); default decryption-worker.ts. */
  workerUrl?: URL;
}

/** A decryption is stopped by the clock after this many times its CPU limit (a backstop: it should never wait). */
export const DECRYPTION_WALL_CLOCK_FACTOR = WALL_CLOCK_BACKSTOP_FACTOR;

/** Main thread → worker. */
export type ToWorker = { type: 'start'; job: DecryptionJob } | { type: 'chunk'; bytes: Uint8Array } | { type: 'end' };

/** Worker → main thread. */
export type FromWorker =
  | typeof READY
  | { type: 'done'; entity: Uint8Array; authenticated: boolean; decryptedWith?: string }
  | { type: 'failed'; error: ErrorShape };

const WORKER_URL = new URL('./decryption-worker.ts', import.meta.url);

export function startDecryptionWorkers(options: DecryptionWorkersOptions): DecryptionWorkers {
  const pool = startWorkerPool({
    size: options.size,
    workerUrl: options.workerUrl ?? WORKER_URL,
    failure: (message, cause) => new DecryptionWorkerError(message, cause ? { cause } : undefined),
    name: 'the decryption worker',
  });

  function decryptIn(worker: Worker, message: Readable | Buffer, job: DecryptionJob, budget: DecryptionBudget) {
    const cpuLimitMs = budget.remainingCpuMs;
    // Stopped by the clock: the same bytes would be again, so the message's budget is spent.
    let stuck = false;
    const seconds = Math.round(cpuLimitMs) / 1000;
    return pool.run<DecryptedLayer, FromWorker>(worker, {
      cpuLimitMs,
      start(worker, end, ended) {
        post(worker, { type: 'start', job });
        sendChunks(worker, message, ended).then(
          () => {
            if (!ended()) post(worker, { type: 'end' });
          },
          // Reading the ciphertext failed (blob store): the worker holds half a message and is not used again.
          (error: unknown) => end({ error: error instanceof Error ? error : new Error(String(error)), keep: false }),
        );
      },
      onReply(reply, end) {
        if (reply.type === 'done') {
          const { entity, authenticated, decryptedWith } = reply;
          const layer = { entity: Buffer.from(entity.buffer, entity.byteOffset, entity.byteLength), authenticated };
          end({ value: decryptedWith ? { ...layer, decryptedWith } : layer, keep: true });
        } else if (reply.type === 'failed') {
          // The job failed, the worker is fine.
          end({ error: rebuiltError(reply.error), keep: true });
        }
      },
      onTimeout: (limit) => {
        stuck = limit === 'wall';
        return {
          error: new DecryptionTimeLimitError(
            limit === 'cpu'
              ? `the decryption used more than ${seconds} s of CPU and was stopped`
              : `the decryption took ${DECRYPTION_WALL_CLOCK_FACTOR} times its ${seconds} s of CPU by the clock, stopped`,
          ),
        };
      },
      onCpuUsed(cpuMs) {
        budget.remainingCpuMs = stuck ? 0 : budget.remainingCpuMs - cpuMs;
      },
    });
  }

  return {
    async decrypt(message, job, budget) {
      let worker: Worker;
      try {
        if (budget.remainingCpuMs <= 0) {
          throw new DecryptionTimeLimitError('the CPU time for this message was used up before this decryption');
        }
        worker = await pool.acquire();
      } catch (error) {
        if (!Buffer.isBuffer(message)) message.destroy();
        throw error;
      }
      return decryptIn(worker, message, job, budget);
    },
    close: () => pool.close(),
  };
}

/**
 * The ciphertext to the worker in the chunks it is read in, each copied into memory of its own and transferred (a
 * chunk may share memory with others, or be held by a cache): the main thread holds one chunk at a time. Stops when
 * `stopped()` (the worker was given up).
 */
async function sendChunks(worker: Worker, message: Readable | Buffer, stopped: () => boolean): Promise<void> {
  if (Buffer.isBuffer(message)) {
    const copy = new Uint8Array(message);
    post(worker, { type: 'chunk', bytes: copy }, [copy.buffer]);
    return;
  }
  try {
    for await (const chunk of message as AsyncIterable<Uint8Array>) {
      if (stopped()) break;
      const copy = new Uint8Array(chunk);
      post(worker, { type: 'chunk', bytes: copy }, [copy.buffer]);
    }
  } finally {
    message.destroy();
  }
}

function post(worker: Worker, message: ToWorker, transfer: ArrayBuffer[] = []): void {
  worker.postMessage(message, transfer);
}

/** The worker's error as the class the caller handles (PgpError, SmimeError), or an Error with its code. */
function rebuiltError(shape: ErrorShape): Error {
  if (shape.name === 'PgpError' && shape.code) return new PgpError(shape.code as PgpErrorCode, shape.message);
  if (shape.name === 'SmimeError' && shape.code) return new SmimeError(shape.code as SmimeErrorCode, shape.message);
  return Object.assign(new Error(shape.message), shape.code ? { code: shape.code } : {});
}
