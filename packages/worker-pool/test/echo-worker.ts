// A worker for the pool's tests: answers 'echo' with its thread id, spins on 'spin' until terminated, exits on 'exit';
// 'wait:<ms>' blocks the thread that long without using CPU (Atomics.wait), 'work:<ms>' spins until the thread has
// used that much CPU; both then answer as 'echo' does.
import { parentPort, threadId } from 'node:worker_threads';
import { cpuMicrosBetween, READY } from '../src/worker-pool.ts';

const port = parentPort;
if (!port) throw new Error('a worker thread only');
port.on('message', (job: string) => {
  if (job === 'exit') process.exit(70);
  if (job === 'spin') for (;;);
  const [kind, ms] = job.split(':');
  if (kind === 'wait') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(ms));
  if (kind === 'work') {
    const before = process.threadCpuUsage();
    while (cpuMicrosBetween(before, process.threadCpuUsage()) < Number(ms) * 1000);
  }
  port.postMessage({ type: 'echo', threadId });
});
port.postMessage(READY);
