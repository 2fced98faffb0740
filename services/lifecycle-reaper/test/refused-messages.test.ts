// Messages ingest answered 451 for (the broker refused every envelope): collected with their blobs after
// SMGW_REFUSED_MESSAGE_GRACE, but never one a stage recorded anything of (its envelope was enqueued after all, the
// confirm was lost), one with a recipient no longer pending, or one with a part that was published.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { getTrace, recordEvent, setRecipientState } from '@smgw/trace';
import { runSweeps, type SweepReport } from '../src/run-sweeps.ts';
import { DAY_MS, World } from './world.ts';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const sweep = (reports: SweepReport[]) => reports.find((r) => r.sweep === 'refused-messages');

describe('the refused-messages sweep', () => {
  let world: World;
  before(async () => {
    world = await World.create();
  });
  after(() => world.drop());

  /** What ingest leaves when the broker refuses: the message, its blob, message.received and message.refused. */
  async function refused(
    publishedDirections: string[] = [],
    enqueued: 'none' | 'unknown' | 'some' = publishedDirections.length > 0 ? 'some' : 'none',
  ): Promise<{ id: string; blobRef: string }> {
    const { id, blob } = await world.message('pending');
    await recordEvent(world.db.pool, id, { stage: 'ingest', event: 'message.received', outcome: 'next' });
    await recordEvent(world.db.pool, id, {
      stage: 'ingest',
      event: 'message.refused',
      outcome: 'retry',
      code: 'MQ_PUBLISH_CHANNEL_CLOSED',
      data: { publishedDirections, enqueued },
    });
    return { id, blobRef: blob.ref };
  }

  it('collects the trace and blob of a refused message after the grace, and nothing that went on', async () => {
    const abandoned = await refused();
    // The confirm was lost but the envelope was enqueued: scan took it (and deliver delivered it).
    const wentOn = await refused();
    await recordEvent(world.db.pool, wentOn.id, { stage: 'scan', event: 'message.scanned', outcome: 'next' });
    const delivered = await refused();
    await setRecipientState(world.db.pool, delivered.id, ['r@behoerde.example'], 'delivered');
    const halfPublished = await refused(['internal']);
    // The channel closed before the confirm: the envelope may sit in a queue longer than any grace.
    const maybeQueued = await refused([], 'unknown');
    const claimed = await refused();
    await world.db.pool.query(
      `insert into deliveries (message_id, recipient, state) values ($1, 'r@behoerde.example', 'sending')`,
      [claimed.id],
    );

    assert.equal(sweep(await runSweeps(world.reaperDeps(), { now: new Date() }))?.items, 0, 'not within the grace');
    assert.ok(await getTrace(world.db.pool, abandoned.id));

    const later = new Date(Date.now() + 2 * DAY_MS);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [CLI, '--once', '--dry-run', '--as-of', later.toISOString()],
      { env: { ...process.env, ...world.env, SMGW_LOG_LEVEL: 'silent' } },
    );
    assert.match(stdout, /^refused-messages +would collect 1 \(1 blobs, 500 bytes\)$/m);
    assert.ok(await getTrace(world.db.pool, abandoned.id), 'the dry run changed nothing');

    const report = sweep(await runSweeps(world.reaperDeps(), { now: later }));
    assert.deepEqual(report, { sweep: 'refused-messages', outcome: 'done', items: 1, note: '(1 blobs, 500 bytes)' });
    assert.equal(await getTrace(world.db.pool, abandoned.id), undefined);
    assert.equal(await world.exists('blobs', 'id', abandoned.blobRef), false);
    for (const kept of [wentOn, delivered, halfPublished, maybeQueued, claimed]) {
      assert.ok(await getTrace(world.db.pool, kept.id), `${kept.id} kept`);
      assert.ok(await world.exists('blobs', 'id', kept.blobRef), `${kept.id}'s blob kept`);
    }
    assert.equal(sweep(await runSweeps(world.reaperDeps(), { now: later }))?.items, 0, 'idempotent');
  });
});
