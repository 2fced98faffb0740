// The gate around the scan stage's whole-message work: never more than its places at once, the rest in order.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createGate } from '../src/gate.ts';

describe('createGate', () => {
  it('runs at most `max` at once, the others in the order they came, also after a run that failed', async () => {
    const gate = createGate(2);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const runs = Array.from({ length: 6 }, (_, i) =>
      gate.run(async () => {
        started.push(i);
        running++;
        most = Math.max(most, running);
        await new Promise((resolve) => setImmediate(resolve));
        running--;
        if (i === 1) throw new Error('run 1 failed');
        return i;
      }),
    );
    const settled = await Promise.allSettled(runs);
    assert.equal(most, 2);
    assert.deepEqual(started, [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(
      settled.map((s) => s.status),
      ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'],
    );
    assert.equal(await gate.run(async () => 'free again'), 'free again');
  });
});
