// The worker thread of decryption-workers.ts: one decryption at a time. The ciphertext arrives in chunks ('start',
// 'chunk'…, 'end'), the decrypted entity goes back transferred, not copied. Nothing here logs: keys and content
// stay in this isolate's memory only, as they stayed in the main thread's before.
import { parentPort } from 'node:worker_threads';
import { errorShape, READY } from '@smgw/worker-pool';
import { decryptPgpMime } from '../openpgp/decrypt-pgp-mime.ts';
import { openEnveloped } from '../smime/decrypt-enveloped.ts';
import type { DecryptionJob, FromWorker, ToWorker } from './decryption-workers.ts';

const port = parentPort;
if (!port) throw new Error('decryption-worker.ts runs as a worker thread only');

let job: DecryptionJob | undefined;
let chunks: Uint8Array[] = [];

port.on('message', (message: ToWorker) => {
  if (message.type === 'start') {
    job = message.job;
    chunks = [];
    return;
  }
  if (message.type === 'chunk') {
    chunks.push(message.bytes);
    return;
  }
  const given = job;
  const ciphertext = chunks.length === 1 ? asBuffer(chunks[0] as Uint8Array) : Buffer.concat(chunks);
  job = undefined;
  chunks = [];
  if (!given) {
    reply({ type: 'failed', error: { name: 'Error', message: 'no decryption was started' } });
    return;
  }
  decrypt(given, ciphertext).then(
    ({ entity, authenticated, decryptedWith }) => {
      const own = ownedBytes(entity);
      reply({ type: 'done', entity: own, authenticated, ...(decryptedWith ? { decryptedWith } : {}) }, [
        own.buffer as ArrayBuffer,
      ]);
    },
    (error: unknown) => reply({ type: 'failed', error: errorShape(error) }),
  );
});
reply(READY);

async function decrypt(
  job: DecryptionJob,
  message: Buffer,
): Promise<{ entity: Buffer; authenticated: boolean; decryptedWith?: string }> {
  if (job.form === 'smime') return openEnveloped({ message, keys: job.keys, maxBytes: job.maxBytes });
  const opened = await decryptPgpMime({
    message,
    privateKeys: job.privateKeys,
    now: job.now,
    maxBytes: job.maxBytes,
  });
  // openpgp refuses content without MDC or AEAD (allowUnauthenticatedMessages is false by default, never set here).
  return { entity: opened.entity, authenticated: true, decryptedWith: opened.decryptedWith };
}

function reply(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(message, transfer);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** `bytes` alone in its memory, so that memory can be transferred (a small Buffer shares Node's pool). */
function ownedBytes(bytes: Buffer): Uint8Array {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes;
  return new Uint8Array(bytes);
}
