// A value read once and kept while no change was heard: the rules caches of the key directory rely on.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readUntilChanged } from '../src/index.ts';

describe('readUntilChanged', () => {
  it('reads once while nothing changes, again after a notice, every time while not listening', async () => {
    const changes = { listening: true, generation: 1 };
    let reads = 0;
    const value = readUntilChanged(changes, async () => ++reads);
    assert.equal(await value(), 1);
    assert.equal(await value(), 1);
    changes.generation += 1;
    assert.equal(await value(), 2);
    assert.equal(await value(), 2);
    changes.listening = false;
    assert.equal(await value(), 3);
    assert.equal(await value(), 4);
    changes.listening = true;
    changes.generation += 1;
    assert.equal(await value(), 5);
  });

  it('lets callers asking during a read share it, and keeps nothing read while a notice arrived', async () => {
    const changes = { listening: true, generation: 1 };
    let reads = 0;
    let release: () => void = () => {};
    const value = readUntilChanged(
      changes,
      () =>
        new Promise<number>((resolve) => {
          reads += 1;
          const n = reads;
          release = () => resolve(n);
        }),
    );
    const [a, b] = [value(), value()];
    changes.generation += 1; // a notice while the read is under way
    release();
    assert.deepEqual(await Promise.all([a, b]), [1, 1]);
    const c = value();
    release();
    assert.equal(await c, 2, 'the read during the notice was not kept');
    assert.equal(await value(), 2);
  });

  it('keeps no failure: the next caller reads again', async () => {
    const changes = { listening: true, generation: 1 };
    let reads = 0;
    const value = readUntilChanged(changes, async () => {
      reads += 1;
      if (reads === 1) throw new Error('database down');
      return reads;
    });
    await assert.rejects(value(), /database down/);
    assert.equal(await value(), 2);
    assert.equal(await value(), 2);
  });

  it('reads again once what it keeps is older than maxAgeMs, even without a notice', async () => {
    const changes = { listening: true, generation: 1 };
    let clock = 0;
    let reads = 0;
    const value = readUntilChanged(changes, async () => ++reads, { maxAgeMs: 60_000, now: () => clock });
    assert.equal(await value(), 1);
    clock = 59_999;
    assert.equal(await value(), 1);
    clock = 60_000;
    assert.equal(await value(), 2);
    assert.equal(await value(), 2);
  });
});
