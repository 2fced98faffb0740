// Messages ingest answered 451 for (the broker refused every envelope): collected with their blobs after
// SMGW_REFUSED_MESSAGE_GRACE, but never one a stage recorded anything of (its envelope was enqueued after all, the
// confirm was lost), one with a recipient no longer pending, or one with a part that was published.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DRAFT_MAX_AGE_MS } from '@smgw/mailbox-store';
import { getTrace, recordEvent, setRecipientState } from '@smgw/trace';
import { runSweeps, type SweepReport } from '../src/run-sweeps.ts';
import { SENT_COPY_RELEASE_MARGIN_MS } from '../src/sweeps.ts';
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

// A portal user's message whose publish the broker refused: the user was told "not sent" and may send the form again
// while the draft lives (it resumes from the message's record). Once no draft can, the message is as abandoned as one
// ingest answered 451 for, and its content (what the citizen wrote) must not stay in the blob store for ever: no other
// sweep takes a message whose recipients stay pending. Never one that may have been enqueued: a lost confirm, a resend
// after the refusal that was not refused itself, or one a stage recorded anything of.
describe('the refused-messages sweep and portal messages', () => {
  let world: World;
  before(async () => {
    world = await World.create();
  });
  after(() => world.drop());

  const resubmitted = (id: string, at: Date) =>
    recordEvent(world.db.pool, id, { stage: 'portal', event: 'message.resubmitted', outcome: 'next', at });
  const blobsOf = async (id: string) =>
    (await world.db.pool.query('select 1 from blobs where message_id = $1', [id])).rowCount ?? 0;

  it('collects the trace and blob of one refused at every publish once its draft is dead, and nothing that may have gone', async () => {
    const mailbox = await world.activeMailbox();
    const at = new Date();
    const content = (text: string) => Buffer.from(`Subject: Antrag\r\n\r\n${text}\r\n`);
    const abandoned = await world.portalMessage(mailbox, {
      bytes: 0,
      at,
      refused: 'nacked',
      content: content('meine Steuernummer'),
    });
    // Sent again, refused again: every attempt surely refused.
    const refusedTwice = await world.portalMessage(mailbox, { bytes: 0, at, refused: 'nacked', content: content('a') });
    await resubmitted(refusedTwice, at);
    await world.portalRefusal(refusedTwice, 'nacked', at);
    // The confirm was lost: the envelope may wait in smgw.scan.
    const maybeQueued = await world.portalMessage(mailbox, { bytes: 0, at, refused: true, content: content('b') });
    // Sent again after the refusal, and that publish was not refused (confirmed; its copy could not be kept).
    const resent = await world.portalMessage(mailbox, { bytes: 0, at, refused: 'nacked', content: content('c') });
    await resubmitted(resent, at);
    // Refused, but scan took it after all.
    const scanned = await world.portalMessage(mailbox, { bytes: 0, at, refused: 'nacked', content: content('d') });
    await recordEvent(world.db.pool, scanned, { stage: 'scan', event: 'message.scanned', outcome: 'next' });
    const kept = [maybeQueued, resent, scanned];

    const draftAlive = new Date(at.getTime() + DRAFT_MAX_AGE_MS);
    assert.equal(sweep(await runSweeps(world.reaperDeps(), { now: draftAlive }))?.items, 0, 'the draft may resume');
    assert.ok(await getTrace(world.db.pool, abandoned));

    const draftDead = new Date(at.getTime() + DRAFT_MAX_AGE_MS + SENT_COPY_RELEASE_MARGIN_MS + 60_000);
    const report = sweep(await runSweeps(world.reaperDeps(), { now: draftDead }));
    assert.equal(report?.items, 2);
    for (const gone of [abandoned, refusedTwice]) {
      assert.equal(await getTrace(world.db.pool, gone), undefined, `${gone}'s trace collected`);
      assert.equal(await blobsOf(gone), 0, `${gone}'s blob collected`);
    }
    for (const id of kept) {
      assert.ok(await getTrace(world.db.pool, id), `${id} kept`);
      assert.equal(await blobsOf(id), 1, `${id}'s blob kept`);
    }
    assert.equal(await world.usage(mailbox.id), 0, 'every reservation given back, once');
    const muchLater = new Date(at.getTime() + 400 * DAY_MS);
    assert.equal(sweep(await runSweeps(world.reaperDeps(), { now: muchLater }))?.items, 0);
    for (const id of kept) assert.equal(await blobsOf(id), 1, `${id}'s blob still kept`);
  });
});
