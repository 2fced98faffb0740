// The pool on its own, with a worker that echoes, spins, waits, works or exits: workers are reused, replaced after a
// job over its CPU limit (or its wall-clock backstop) or a worker's death, and waiting for a free one can be bounded.
// The limit is the worker thread's CPU time: a job that waits, or is slowed by a loaded machine, is not cut at it.
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { after, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import {
  cpuMicrosBetween,
  cpuReadingIntervalMs,
  type JobLimit,
  type JobSpec,
  startWorkerPool,
} from '../src/worker-pool.ts';

class PoolFailure extends Error {}

type Reply = { type: 'echo'; threadId: number };

const job = (
  message: string,
  cpuLimitMs = 5000,
  more: Partial<JobSpec<number | `over ${JobLimit}`, Reply>> = {},
): JobSpec<number | `over ${JobLimit}`, Reply> => ({
  cpuLimitMs,
  start: (worker) => worker.postMessage(message),
  onReply: (reply, end) => end({ value: reply.threadId, keep: true }),
  onTimeout: (limit) => ({ value: `over ${limit}` }),
  ...more,
});

describe('worker pool', () => {
  const pool = startWorkerPool({
    size: 1,
    workerUrl: new URL('./echo-worker.ts', import.meta.url),
    failure: (message) => new PoolFailure(message),
    name: 'the echo worker',
  });
  after(() => pool.close());
  const runOne = async (message: string, cpuLimitMs?: number, more?: Parameters<typeof job>[2]) =>
    pool.run(await pool.acquire(), job(message, cpuLimitMs, more));

  it('keeps a worker for the next job', async () => {
    const first = await runOne('echo');
    assert.equal(await runOne('echo'), first);
  });

  it('ends a job over its CPU limit as the job says and replaces its worker, though it never yields', async () => {
    const before = await runOne('echo');
    assert.equal(await runOne('spin', 100, { wallLimitMs: 60_000 }), 'over cpu');
    const after = await runOne('echo');
    assert.notEqual(after, before);
  });

  it('does not count time the worker waits: a job blocked 600 ms is not cut at a CPU limit of 100 ms', async () => {
    const before = await runOne('echo');
    const started = performance.now();
    // By the clock, as the limit was before, this job was over it six times.
    assert.equal(await runOne('wait:600', 100, { wallLimitMs: 60_000 }), before);
    assert.ok(performance.now() - started >= 600);
  });

  it('stops a job that waits past its wall-clock backstop', async () => {
    const before = await runOne('echo');
    assert.equal(await runOne('wait:10000', 5000, { wallLimitMs: 200 }), 'over wall');
    assert.notEqual(await runOne('echo'), before);
  });

  it("tells the CPU time the job took in its worker, read at the job's end", async () => {
    let told: number[] = [];
    await runOne('work:150', 5000, { onCpuUsed: (ms) => told.push(ms) });
    assert.equal(told.length, 1);
    assert.ok((told[0] ?? 0) >= 150 && (told[0] ?? 0) < 400, `${told[0]} ms`);
    told = [];
    assert.equal(await runOne('spin', 200, { onCpuUsed: (ms) => told.push(ms) }), 'over cpu');
    assert.ok((told[0] ?? 0) >= 200, `${told[0]} ms`);
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

describe('a worker pool on a loaded machine (busy sibling threads on every core)', () => {
  it('lets a job finish whose CPU is within its limit, though by the clock it took longer than the limit', async () => {
    const pool = startWorkerPool({
      size: 1,
      workerUrl: new URL('./echo-worker.ts', import.meta.url),
      failure: (message) => new PoolFailure(message),
      name: 'the echo worker',
    });
    // Started before the load: starting a worker is not what is measured.
    const worker = await pool.acquire();
    const siblings = Array.from({ length: 2 * availableParallelism() }, () => new Worker('for (;;);', { eval: true }));
    try {
      let cpuMs = 0;
      const started = performance.now();
      const answer = await pool.run(
        worker,
        job('work:300', 450, { wallLimitMs: 60_000, onCpuUsed: (ms) => (cpuMs = ms) }),
      );
      const wallMs = performance.now() - started;
      assert.equal(typeof answer, 'number', String(answer));
      assert.ok(cpuMs >= 300 && cpuMs < 450, `${cpuMs} ms of CPU`);
      // The siblings took the cores: by the clock the job ran past the limit that its CPU stayed within.
      assert.ok(wallMs > 450, `${Math.round(wallMs)} ms by the clock`);
    } finally {
      await Promise.all(siblings.map((sibling) => sibling.terminate()));
      await pool.close();
    }
  });
});

describe('reading CPU time', () => {
  it('adds user and system time between two readings', () => {
    assert.equal(cpuMicrosBetween({ user: 1000, system: 500 }, { user: 4000, system: 700 }), 3200);
  });

  it('reads a job about ten times within its limit, not more often than every 5 ms nor less than every 100 ms', () => {
    assert.deepEqual([20, 100, 500, 1000, 30_000].map(cpuReadingIntervalMs), [5, 10, 50, 100, 100]);
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
