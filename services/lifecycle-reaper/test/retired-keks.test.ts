// The records of retired KEKs (retired_keks, migration 022) against the real database: one is needed only while a
// master key rotation that may have read the KEK's file before the retirement deleted it is still running; afterwards
// it protects nothing and goes (the retired-keks sweep), once the file is gone and no rotation runs.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { rotateMasterKey } from '@smgw/blob-store';
import { runSweeps, type SweepReport } from '../src/run-sweeps.ts';
import { DAY_MS, World } from './world.ts';

const removed = (reports: SweepReport[], sweep: string) =>
  reports.filter((r) => r.sweep === sweep).reduce((sum, r) => sum + r.items, 0);

describe('records of retired KEKs', () => {
  let world: World;
  before(async () => {
    world = await World.create();
  });
  after(() => world.drop());

  const recorded = async () =>
    (await world.db.pool.query<{ id: string }>('select id from retired_keks order by id')).rows.map((r) => r.id);

  it('go once the KEK file is gone and no rotation runs; kept while the file is still there; a dry run keeps them', async () => {
    const old = await world.keyStore.current(new Date(Date.now() - 10 * DAY_MS));
    const live = await world.keyStore.current(new Date());
    // A retirement midway: recorded, its file not deleted yet (the live KEK stands in for it).
    await world.db.pool.query('insert into retired_keks (id) values ($1)', [live.id]);

    const dry = await runSweeps(world.reaperDeps(), { now: new Date(), dryRun: true });
    assert.equal(removed(dry, 'retired-keks'), 0, 'in a dry run no KEK is retired, so its record stays');
    assert.deepEqual(await recorded(), [live.id]);

    const round = await runSweeps(world.reaperDeps(), { now: new Date() });
    assert.ok(
      round.every((r) => r.outcome === 'done'),
      JSON.stringify(round),
    );
    assert.equal(removed(round, 'keks'), 1, 'the old KEK is retired');
    assert.ok(!(await world.keyStore.list()).some((k) => k.id === old.id));
    assert.equal(removed(round, 'retired-keks'), 1, 'its record goes in the same round');
    assert.deepEqual(await recorded(), [live.id], 'a record whose KEK file is still there stays');

    await world.db.pool.query('delete from retired_keks');
  });

  it('stay while a master key rotation runs, and go after it', async () => {
    const older = await world.keyStore.current(new Date(Date.now() - 20 * DAY_MS));
    let pausedOnce = false;
    let resume: () => void = () => {};
    let paused: () => void = () => {};
    const isPaused = new Promise<void>((resolve) => {
      paused = resolve;
    });
    // The rotation stops before its first write (the others go on), as one may that has read a file the retirement is about to delete.
    const rotation = rotateMasterKey({
      pool: world.db.pool,
      keyStoreDir: world.db.keys.keyStoreDir,
      from: world.db.keys.masterKey,
      to: randomBytes(32),
      beforeWrite: () => {
        if (pausedOnce) return Promise.resolve();
        pausedOnce = true;
        paused();
        return new Promise<void>((resolve) => {
          resume = resolve;
        });
      },
    });
    await isPaused;
    const during = await runSweeps(world.reaperDeps(), { now: new Date() });
    assert.equal(removed(during, 'keks'), 1, 'the older KEK is retired meanwhile');
    assert.equal(removed(during, 'retired-keks'), 0, 'its record stays while the rotation runs');
    assert.match(during.find((r) => r.sweep === 'retired-keks')?.note ?? '', /rotation/);
    assert.deepEqual(await recorded(), [older.id]);
    resume();
    await rotation;
    assert.ok(!(await world.keyStore.list()).some((k) => k.id === older.id), 'the rotation did not bring it back');

    const afterwards = await runSweeps(world.reaperDeps(), { now: new Date() });
    assert.equal(removed(afterwards, 'retired-keks'), 1);
    assert.deepEqual(await recorded(), []);
  });
});
