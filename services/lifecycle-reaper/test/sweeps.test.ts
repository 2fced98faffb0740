// The reaper's sweeps against the real database: expiry and retention follow the injected clock and remove only
// what is due; two reapers at once do each sweep's work once; the operator's dry run changes nothing; metrics.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadConfig } from '@smgw/config';
import { createLogger } from '@smgw/observability';
import { KEY_FILE_TEMPORARIES } from '@smgw/secrets';
import { freePort, type ServiceProcess, serviceProcess, waitFor } from '@smgw/testing';
import { reaperSpec } from '../src/config.ts';
import { runSweeps, type SweepReport } from '../src/run-sweeps.ts';
import { startReaper } from '../src/service.ts';
import { withSweepLock } from '../src/sweep-lock.ts';
import { DAY_MS, World } from './world.ts';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const run = promisify(execFile);

const removed = (reports: SweepReport[], sweep: string) =>
  reports.filter((r) => r.sweep === sweep).reduce((sum, r) => sum + r.items, 0);

describe('a sweep at an injected time', () => {
  let world: World;
  before(async () => {
    world = await World.create();
  });
  after(() => world.drop());

  it('purges expired quarantine, finished blobs and dead tokens, and leaves what is referenced, unfinished or live', async () => {
    const delivered = await world.message('delivered');
    const pending = await world.message('pending');
    const expiresIn30Days = await world.quarantined(30 * DAY_MS);
    const expiresIn60Days = await world.quarantined(60 * DAY_MS);
    const liveToken = await world.token(100 * DAY_MS);
    const expiredToken = await world.token(-DAY_MS);
    const revokedToken = await world.token(100 * DAY_MS, DAY_MS);

    const today = await runSweeps(world.reaperDeps(), { now: new Date() });
    assert.deepEqual(
      today.filter((r) => r.outcome !== 'done' || r.items !== 0),
      [],
      'nothing is due yet',
    );

    const in40Days = await runSweeps(world.reaperDeps(), { now: new Date(Date.now() + 40 * DAY_MS) });
    assert.ok(in40Days.every((r) => r.outcome === 'done'));
    assert.equal(removed(in40Days, 'quarantine'), 1);
    assert.equal(await world.exists('quarantine', 'message_id', expiresIn30Days), false);
    assert.equal(await world.exists('quarantine', 'message_id', expiresIn60Days), true);
    // The delivered message is past its retention, and so is the one whose quarantine entry just expired.
    assert.equal(removed(in40Days, 'message-blobs'), 2);
    assert.equal(await world.exists('blobs', 'message_id', delivered.id), false);
    assert.equal(await world.exists('blobs', 'message_id', expiresIn30Days), false);
    assert.equal(await world.exists('blobs', 'message_id', pending.id), true, 'an unfinished message keeps its blob');
    assert.equal(await world.exists('blobs', 'message_id', expiresIn60Days), true, 'an open entry keeps its blob');
    assert.equal(removed(in40Days, 'activation-tokens'), 2);
    assert.equal(await world.exists('mailbox_tokens', 'id', liveToken), true, 'a live token is never removed');
    assert.equal(await world.exists('mailbox_tokens', 'id', expiredToken), false);
    assert.equal(await world.exists('mailbox_tokens', 'id', revokedToken), false);

    const again = await runSweeps(world.reaperDeps(), { now: new Date(Date.now() + 40 * DAY_MS) });
    assert.ok(
      again.every((r) => r.outcome === 'done' && r.items === 0),
      'a second round finds nothing more',
    );
  });
});

describe('blob contents in files (SMGW_BLOB_DIR)', () => {
  let world: World;
  before(async () => {
    world = await World.create({ blobs: 'files' });
  });
  after(() => world.drop());

  it('a dry run unlinks nothing; a run unlinks the files of purged blobs and sweeps old leftovers of cut-short writes', async () => {
    const dir = world.blobDir ?? assert.fail('the world keeps blobs in files');
    const delivered = await world.message('delivered');
    const pending = await world.message('pending');
    const fileOf = (ref: string) => join(dir, ref.slice(0, 2), ref);
    assert.ok(existsSync(fileOf(delivered.blob.ref)));
    const leftover = join(dir, 'tmp', randomUUID());
    writeFileSync(leftover, 'cut short');
    const aDayAgo = new Date(Date.now() - DAY_MS);
    utimesSync(leftover, aDayAgo, aDayAgo);
    const in40Days = new Date(Date.now() + 40 * DAY_MS);

    const dry = await runSweeps(world.reaperDeps(), { now: in40Days, dryRun: true });
    assert.equal(removed(dry, 'message-blobs'), 1);
    assert.equal(removed(dry, 'blob-file-leftovers'), 1);
    assert.ok(existsSync(fileOf(delivered.blob.ref)), 'a dry run unlinks no file');
    assert.ok(existsSync(leftover));

    const real = await runSweeps(world.reaperDeps(), { now: in40Days });
    assert.ok(real.every((r) => r.outcome === 'done'));
    assert.equal(removed(real, 'message-blobs'), 1);
    assert.equal(await world.exists('blobs', 'message_id', delivered.id), false);
    assert.equal(existsSync(fileOf(delivered.blob.ref)), false);
    assert.ok(existsSync(fileOf(pending.blob.ref)), 'an unfinished message keeps its file');
    assert.equal(removed(real, 'blob-file-leftovers'), 1);
    assert.equal(existsSync(leftover), false);
  });

  it('sweeps what a crash left of key files after the grace, in both key folders and beside the keys; a dry run counts', async () => {
    const keys = world.db.keys.keyStoreDir;
    const mailboxKeys = join(keys, 'mailboxes');
    const aDayAgo = new Date(Date.now() - DAY_MS);
    const leftover = (path: string, old: boolean) => {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, 'a sealed key');
      if (old) utimesSync(path, aDayAgo, aDayAgo);
      return path;
    };
    const old = [
      leftover(join(keys, KEY_FILE_TEMPORARIES, '20310801-aaaa.kek.0123456789ab.tmp'), true),
      leftover(join(mailboxKeys, KEY_FILE_TEMPORARIES, `${randomUUID()}.key.0123456789ab.tmp`), true),
      // Where writes before the temporaries' own folder left them.
      leftover(join(keys, '.20310801-bbbb.kek.ba9876543210.tmp'), true),
    ];
    const fresh = leftover(join(keys, KEY_FILE_TEMPORARIES, '20310801-cccc.kek.0123456789ab.tmp'), false);
    const notOurs = leftover(join(keys, '.notes.tmp'), true);

    const dry = await runSweeps(world.reaperDeps(), { now: new Date(), dryRun: true });
    assert.equal(removed(dry, 'key-file-leftovers'), 3);
    for (const path of [...old, fresh, notOurs]) assert.ok(existsSync(path), `a dry run keeps ${path}`);

    const real = await runSweeps(world.reaperDeps(), { now: new Date() });
    assert.equal(removed(real, 'key-file-leftovers'), 3);
    for (const path of old) assert.equal(existsSync(path), false, path);
    assert.ok(existsSync(fresh), 'a write that may still be going on is left alone');
    assert.ok(existsSync(notOurs), 'a file that is not a key file temporary is left alone');
  });

  it('a reaper without the folder fails the purge and deletes no row whose file would stay behind', async () => {
    const delivered = await world.message('delivered');
    const reports = await runSweeps(world.reaperDeps({ blobDir: undefined, blobFiles: undefined }), {
      now: new Date(Date.now() + 40 * DAY_MS),
    });
    assert.equal(reports.find((r) => r.sweep === 'message-blobs')?.outcome, 'failed');
    assert.equal(await world.exists('blobs', 'message_id', delivered.id), true);
  });
});

describe('two reapers at once', () => {
  let world: World;
  before(async () => {
    world = await World.create();
  });
  after(() => world.drop());

  it('skips a sweep whose lock another reaper holds, for as long as it holds it', async () => {
    await world.quarantined(-DAY_MS);
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let holding = () => {};
    const holds = new Promise<void>((resolve) => {
      holding = resolve;
    });
    const other = withSweepLock(world.db.pool, 'quarantine', async () => {
      holding();
      await held;
    });
    await holds;
    const reports = await runSweeps(world.reaperDeps(), { now: new Date() });
    assert.deepEqual(
      reports.find((r) => r.sweep === 'quarantine'),
      { sweep: 'quarantine', outcome: 'locked', items: 0 },
    );
    assert.ok(reports.filter((r) => r.sweep !== 'quarantine').every((r) => r.outcome === 'done'));
    assert.equal((await world.counts()).quarantine, 1, 'the held sweep did not run');
    release();
    await other;
    const afterwards = await runSweeps(world.reaperDeps(), { now: new Date() });
    assert.equal(removed(afterwards, 'quarantine'), 1);
  });

  it('do the work of each sweep once between them', async () => {
    for (let i = 0; i < 5; i++) await world.quarantined(-DAY_MS);
    for (let i = 0; i < 3; i++) await world.token(-10 * DAY_MS);
    const [a, b] = await Promise.all([
      runSweeps(world.reaperDeps(), { now: new Date() }),
      runSweeps(world.reaperDeps(), { now: new Date() }),
    ]);
    const both = [...a, ...b];
    assert.ok(both.every((r) => r.outcome !== 'failed'));
    assert.equal(removed(both, 'quarantine'), 5);
    assert.equal(removed(both, 'activation-tokens'), 3);
    assert.equal((await world.counts()).quarantine, 0);
  });
});

describe('the operator command and the service', () => {
  let world: World;
  before(async () => {
    world = await World.create();
  });
  after(() => world.drop());

  const cli = (...args: string[]) =>
    run(process.execPath, [CLI, ...args], { env: { ...process.env, ...world.env, SMGW_LOG_LEVEL: 'silent' } });

  it('--once --dry-run prints what it would remove and changes nothing', async () => {
    await world.quarantined(-DAY_MS);
    await world.quarantined(-DAY_MS);
    await world.token(-10 * DAY_MS);
    const before = await world.counts();
    const { stdout } = await cli('--once', '--dry-run');
    assert.match(stdout, /^dry run as of /);
    assert.match(stdout, /^quarantine +would remove 2$/m);
    assert.match(stdout, /^message-blobs +would remove 0$/m);
    assert.match(stdout, /^activation-tokens +would remove 1$/m);
    assert.deepEqual(await world.counts(), before);
  });

  it('--as-of with --dry-run acts as if it were then; without --dry-run it needs SMGW_DEV_CLOCK=1', async () => {
    const asOf = new Date(Date.now() + 40 * DAY_MS).toISOString();
    const before = await world.counts();
    const { stdout } = await cli('--once', '--dry-run', '--as-of', asOf);
    assert.match(stdout, /^quarantine +would remove 2$/m);
    assert.match(stdout, /^message-blobs +would remove 2$/m);
    await assert.rejects(cli('--once', '--as-of', asOf), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 2);
      assert.match(err.stderr, /REAPER_AS_OF_NEEDS_DEV_CLOCK/);
      return true;
    });
    assert.deepEqual(await world.counts(), before);
  });

  it('the service sweeps at start and exports duration, last success and items per sweep', async () => {
    const config = loadConfig(reaperSpec, { ...world.env, SMGW_HEALTH_PORT: '0', SMGW_REAPER_INTERVAL: '1h' });
    const reaper = await startReaper(config, createLogger('lifecycle-reaper-test', 'silent'));
    try {
      await reaper.idle();
      const metrics = await (await fetch(`http://127.0.0.1:${reaper.healthPort}/metrics`)).text();
      assert.match(metrics, /^smgw_reaper_items_total\{[^}]*sweep="quarantine"[^}]*\} 2$/m);
      assert.match(metrics, /^smgw_reaper_last_success_timestamp_seconds\{[^}]*sweep="keks"[^}]*\} \d+/m);
      assert.match(metrics, /^smgw_reaper_sweep_seconds_count\{[^}]*sweep="message-blobs"[^}]*\} 1$/m);
      assert.equal((await world.counts()).quarantine, 0);
    } finally {
      await reaper.stop();
    }
  });
});

describe('two reaper processes on one database', () => {
  let world: World;
  before(async () => {
    world = await World.create();
  });
  after(() => world.drop());

  it('start, remove each expired entry once between them, and stop on SIGTERM', async () => {
    for (let i = 0; i < 3; i++) await world.quarantined(-DAY_MS);
    const env = { ...world.env, SMGW_REAPER_INTERVAL: '1h' };
    const reapers = [
      serviceProcess('lifecycle-reaper', env, await freePort()),
      serviceProcess('lifecycle-reaper', env, await freePort()),
    ];
    try {
      await Promise.all(reapers.map((r) => r.start()));
      const removedBy = (reaper: ServiceProcess) => reaper.metric('smgw_reaper_items_total', { sweep: 'quarantine' });
      await waitFor('the expired entries to be removed', async () => (await world.counts()).quarantine === 0);
      await waitFor('the removals to be counted once', async () => {
        const counted = await Promise.all(reapers.map(removedBy));
        return counted.reduce((sum, n) => sum + n, 0) === 3;
      });
    } finally {
      await Promise.all(reapers.map((r) => r.stop()));
    }
    for (const r of reapers) assert.equal(r.child?.exitCode, 0, r.output.join(''));
  });
});
