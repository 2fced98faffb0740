// The real message view worker (views, attachments, quotes), except for messages holding a marker: STALL-BEFORE-PARSE spins before parsing,
// STALL-AFTER-PARSE spins once the parsed view is sent (before sanitising), CRASH-THE-WORKER exits (code 70). How the
// pool and the page meet a view that runs out of its time at either stage, and a worker that dies, deterministically.
import { parentPort, type Transferable } from 'node:worker_threads';
import type { FromViewWorker, ToViewWorker } from '../src/portal/message-view-workers.ts';

const port = parentPort;
if (!port) throw new Error('a worker thread only');

/** Until the worker is terminated (a busy loop: the time limit's timer is the main thread's). */
function spin(): void {
  const until = Number.POSITIVE_INFINITY;
  while (Date.now() < until);
}

let stallAfterParse = false;
// Registered before the real worker's listener, so it sees each message first.
port.on('message', (message: ToViewWorker) => {
  const raw = Buffer.from(message.raw.buffer, message.raw.byteOffset, message.raw.byteLength);
  if (raw.includes('CRASH-THE-WORKER')) process.exit(70);
  if (raw.includes('STALL-BEFORE-PARSE')) spin();
  stallAfterParse = raw.includes('STALL-AFTER-PARSE');
});
const post = port.postMessage.bind(port);
port.postMessage = (message: FromViewWorker, transfer?: readonly Transferable[]) => {
  post(message, transfer);
  if (message.type === 'parsed' && stallAfterParse) spin();
};
await import('../src/portal/message-view-worker.ts');
