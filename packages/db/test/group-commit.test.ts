// Group commit: what arrives while a write runs shares the next write; nobody hears before their own write is done,
// and one item's failure is only its own.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { groupCommits } from '../src/group-commit.ts';

/** A write that records each call's items and finishes only when the test says so. */
function heldWrites(fails: (items: string[]) => boolean = () => false) {
  const calls: { items: string[]; finish: () => void }[] = [];
  const write = (items: string[]) =>
    new Promise<void>((resolve, reject) => {
      calls.push({ items, finish: () => (fails(items) ? reject(new Error(`bad ${items.join(',')}`)) : resolve()) });
    });
  return { calls, write };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('groupCommits', () => {
  it('writes a lone item at once, and the items that came meanwhile together in the next write', async () => {
    const { calls, write } = heldWrites();
    const record = groupCommits(write, { maxBatch: 10 });
    const settled: string[] = [];
    const track = (item: string) => record(item).then(() => settled.push(item));

    const first = track('a');
    await tick();
    assert.deepEqual(
      calls.map((c) => c.items),
      [['a']],
    );
    const rest = ['b', 'c', 'd'].map(track);
    await tick();
    assert.equal(calls.length, 1, 'nothing else is written while the first write runs');
    assert.deepEqual(settled, [], 'and nobody hears before the commit that holds their item');

    calls[0]?.finish();
    await first;
    await tick();
    assert.deepEqual(
      calls.map((c) => c.items),
      [['a'], ['b', 'c', 'd']],
    );
    assert.deepEqual(settled, ['a']);
    calls[1]?.finish();
    await Promise.all(rest);
    assert.deepEqual(settled, ['a', 'b', 'c', 'd']);
  });

  it('puts at most maxBatch items in one write', async () => {
    const { calls, write } = heldWrites();
    const record = groupCommits(write, { maxBatch: 2 });
    const all = ['a', 'b', 'c', 'd', 'e'].map((item) => record(item));
    for (let i = 0; i < 3; i++) {
      await tick();
      calls[i]?.finish();
    }
    await Promise.all(all);
    assert.deepEqual(
      calls.map((c) => c.items),
      [['a'], ['b', 'c'], ['d', 'e']],
    );
  });

  it('writes the items of a failed batch again one by one: only the bad one fails', async () => {
    const { calls, write } = heldWrites((items) => items.includes('bad'));
    const record = groupCommits(write, { maxBatch: 10 });
    const first = record('a');
    await tick();
    const outcomes = ['b', 'bad', 'c'].map((item) =>
      record(item).then(
        () => `${item} ok`,
        (err: Error) => `${item} ${err.message}`,
      ),
    );
    calls[0]?.finish();
    await first;
    await tick();
    calls[1]?.finish(); // b, bad, c together: fails
    await tick();
    await tick();
    assert.deepEqual(
      calls.slice(2).map((c) => c.items),
      [['b'], ['bad'], ['c']],
    );
    for (const call of calls.slice(2)) call.finish();
    assert.deepEqual(await Promise.all(outcomes), ['b ok', 'bad bad bad', 'c ok']);
  });

  it('goes on after a failure: the next items are written as before', async () => {
    const { calls, write } = heldWrites((items) => items.includes('x'));
    const record = groupCommits(write, { maxBatch: 10 });
    const failed = record('x').catch((err: Error) => err.message);
    await tick();
    calls[0]?.finish();
    assert.equal(await failed, 'bad x');
    const next = record('y');
    await tick();
    calls[1]?.finish();
    await next;
    assert.deepEqual(
      calls.map((c) => c.items),
      [['x'], ['y']],
    );
  });

  it('refuses a batch size that is not a positive integer', () => {
    assert.throws(() => groupCommits(async () => {}, { maxBatch: 0 }), RangeError);
  });
});
