// A worker for the pool's tests: answers 'echo' with its thread id, spins on 'spin' until terminated, exits on 'exit'.
import { parentPort, threadId } from 'node:worker_threads';
import { READY } from '../src/worker-pool.ts';

const port = parentPort;
if (!port) throw new Error('a worker thread only');
port.on('message', (job: string) => {
  if (job === 'exit') process.exit(70);
  if (job === 'spin') for (;;);
  port.postMessage({ type: 'echo', threadId });
});
port.postMessage(READY);
