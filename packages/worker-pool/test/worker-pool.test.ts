// The pool on its own, with a worker that echoes, spins or exits: workers are reused, replaced after a job over its
// time or a worker's death, and waiting for a free one can be bounded.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Worker } from 'node:worker_threads';
import { type JobSpec, startWorkerPool } from '../src/worker-pool.ts';

class PoolFailure extends Error {}

type Reply = { type: 'echo'; threadId: number };

const job = (message: string, limitMs = 5000): JobSpec<number | 'timed out', Reply> => ({
  limitMs,
  start: (worker) => worker.postMessage(message),
  onReply: (reply, end) => end({ value: reply.threadId, keep: true }),
  onTimeout: () => ({ value: 'timed out' }),
});

describe('worker pool', () => {
  const pool = startWorkerPool({
    size: 1,
    workerUrl: new URL('./echo-worker.ts', import.meta.url),
    failure: (message) => new PoolFailure(message),
    name: 'the echo worker',
  });
  after(() => pool.close());
  const runOne = async (message: string, limitMs?: number) => pool.run(await pool.acquire(), job(message, limitMs));

  it('keeps a worker for the next job', async () => {
    const first = await runOne('echo');
    assert.equal(await runOne('echo'), first);
  });

  it('ends a job over its time as the job says and replaces its worker', async () => {
    const before = await runOne('echo');
    assert.equal(await runOne('spin', 100), 'timed out');
    const after = await runOne('echo');
    assert.notEqual(after, before);
  });

  it('ends the job of a worker that died with the failure error, and the next job gets a new worker', async () => {
    const before = await runOne('echo');
    await assert.rejects(
      runOne('exit'),
      (err: Error) => err instanceof PoolFailure && /exit code 70/.test(err.message),
    );
    assert.notEqual(await runOne('echo'), before);
  });

  it('gives no worker when none is free within the wait, and the released one to who waits', async () => {
    const busy: Worker = await pool.acquire();
    assert.equal(await pool.acquireWithin(50), undefined);
    const waiting = pool.acquire();
    const done = pool.run(busy, job('echo'));
    const next = await waiting;
    assert.equal(next, busy);
    await done;
    await pool.run(next, job('echo'));
  });
});

describe('a closed worker pool', () => {
  it('refuses jobs and fails whoever waits', async () => {
    const pool = startWorkerPool({
      size: 1,
      workerUrl: new URL('./echo-worker.ts', import.meta.url),
      failure: (message) => new PoolFailure(message),
      name: 'the echo worker',
    });
    await pool.acquire();
    const waiting = assert.rejects(pool.acquire(), PoolFailure);
    await pool.close();
    await waiting;
    await assert.rejects(pool.acquire(), /the echo workers are closed/);
  });
});
