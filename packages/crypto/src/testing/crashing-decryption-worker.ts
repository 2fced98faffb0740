// The real decryption worker, except that it dies (exit code 70) on a message holding the word CRASH: how the pool
// and its callers meet a worker that crashes or runs out of memory. For tests only: `@smgw/crypto/testing`
// (CRASHING_DECRYPTION_WORKER as startDecryptionWorkers' workerUrl).
import { parentPort } from 'node:worker_threads';

parentPort?.on('message', (message: { type: string; bytes?: Uint8Array }) => {
  if (message.type === 'chunk' && Buffer.from(message.bytes ?? []).includes('CRASH')) process.exit(70);
});
await import('../decryption-workers/decryption-worker.ts');
