// A portal message's Sent copy has its bytes reserved in the mailbox's usage when the message is recorded; when no
// copy is ever stored (publish unconfirmed and the form never sent again, or the portal died before the copy), the
// sent-copy-reservations sweep gives them back once no draft can resume the message, with one event in the same
// transaction: once, however many reapers run, never for a copy that was stored (late, or deleted since), never while
// the draft lives, and without error for a mailbox deleted meanwhile.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { withTransaction } from '@smgw/db';
import { DRAFT_MAX_AGE_MS, deleteMailbox, deleteTrashedMessages, trashMailboxMessage } from '@smgw/mailbox-store';
import { Registry } from '@smgw/observability';
import { waitFor } from '@smgw/testing';
import { getTrace, type MessageTrace } from '@smgw/trace';
import { reaperMetrics } from '../src/metrics.ts';
import { runSweeps, type SweepReport } from '../src/run-sweeps.ts';
import { SENT_COPY_RELEASE_MARGIN_MS, SWEEPS } from '../src/sweeps.ts';
import { DAY_MS, World } from './world.ts';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const SWEEP = 'sent-copy-reservations';
const HOUR_MS = 60 * 60_000;
const report = (reports: SweepReport[]) => reports.find((r) => r.sweep === SWEEP);
/** The first moment a draft recorded at `at` can no longer be resumed, as the sweep counts it (and a minute). */
const draftDeadAfter = (at: Date) => new Date(at.getTime() + DRAFT_MAX_AGE_MS + SENT_COPY_RELEASE_MARGIN_MS + 60_000);
const abandonedEvents = (trace: MessageTrace | undefined) =>
  (trace?.events ?? []).filter((e) => e.event === 'message.sent-copy-abandoned');

describe('the sent-copy-reservations sweep', () => {
  let world: World;
  before(async () => {
    world = await World.create();
  });
  after(() => world.drop());

  /** The sweep alone, as a reaper round runs it (no lock: tests of what its transactions do by themselves). */
  const sweepAt = async (now: Date): Promise<number> => {
    const result = await SWEEPS[SWEEP]({ ...world.reaperDeps(), blobStore: world.store, now });
    return typeof result === 'number' ? result : result.items;
  };

  it('gives the reserved bytes of an unconfirmed publish never sent again back once its draft is dead, with one event', async () => {
    const mailbox = await world.activeMailbox();
    const { mailbox: other } = await world.mailbox(`${mailbox.id}@andere.example`, [
      { from: 'a@x.example', text: 'x' },
    ]);
    const kept = await world.usage(other.id);
    const at = new Date();
    const sent = await world.portalMessage(mailbox, { bytes: 4000, at });
    await world.sentCopy(mailbox, sent, { bytes: 4000, at });
    const unsent = await world.portalMessage(mailbox, { bytes: 12_345, at, refused: true });
    assert.equal(await world.usage(mailbox.id), 16_345, 'both reserved; one copy stored');

    for (const now of [
      at,
      new Date(at.getTime() + DRAFT_MAX_AGE_MS - 60_000),
      new Date(at.getTime() + DRAFT_MAX_AGE_MS + 60_000),
    ]) {
      assert.equal(report(await runSweeps(world.reaperDeps(), { now }))?.items, 0, `nothing at ${now.toISOString()}`);
    }
    assert.equal(await world.usage(mailbox.id), 16_345, 'the draft may still be sent again');

    const later = draftDeadAfter(at);
    const dry = await runSweeps(world.reaperDeps(), { now: later, dryRun: true });
    assert.deepEqual(report(dry), { sweep: SWEEP, outcome: 'done', items: 1, note: '(12345 bytes)' });
    assert.equal(await world.usage(mailbox.id), 16_345, 'the dry run gave nothing back');
    assert.deepEqual(abandonedEvents(await getTrace(world.db.pool, unsent)), []);

    const registry = new Registry();
    const metrics = reaperMetrics(registry);
    const reports = await runSweeps(world.reaperDeps({ metrics }), { now: later });
    assert.deepEqual(report(reports), { sweep: SWEEP, outcome: 'done', items: 1, note: '(12345 bytes)' });
    assert.equal(await world.usage(mailbox.id), 4000, 'exactly the unsent message size given back');
    assert.equal(await world.usage(other.id), kept, 'no other mailbox touched');
    const [event, ...more] = abandonedEvents(await getTrace(world.db.pool, unsent));
    assert.equal(more.length, 0);
    assert.deepEqual(event && { stage: event.stage, outcome: event.outcome, at: event.at, data: event.data }, {
      stage: 'lifecycle-reaper',
      outcome: 'done',
      at: later.toISOString(),
      data: { mailboxId: mailbox.id, bytes: 12_345, releasedBytes: 12_345, usageBytes: 4000 },
    });
    assert.deepEqual(abandonedEvents(await getTrace(world.db.pool, sent)), [], 'the stored copy keeps its bytes');
    assert.equal((await metrics.releasedReservationBytes.get()).values[0]?.value, 12_345);
    const items = (await metrics.items.get()).values.find((v) => v.labels.sweep === SWEEP);
    assert.equal(items?.value, 1);

    assert.equal(report(await runSweeps(world.reaperDeps(), { now: later }))?.items, 0, 'a second round: nothing');
    assert.equal(
      report(await runSweeps(world.reaperDeps(), { now: new Date(later.getTime() + 30 * DAY_MS) }))?.items,
      0,
    );
    assert.equal(await world.usage(mailbox.id), 4000, 'given back once');
    assert.equal(abandonedEvents(await getTrace(world.db.pool, unsent)).length, 1);
  });

  it('never gives back the bytes of a copy stored late (the form sent again) or stored and deleted by its user', async () => {
    const mailbox = await world.activeMailbox();
    const at = new Date();
    const resumed = await world.portalMessage(mailbox, { bytes: 3000, at, refused: true });
    const deleted = await world.portalMessage(mailbox, { bytes: 5000, at });
    const copy = await world.sentCopy(mailbox, deleted, { bytes: 5000, at });
    assert.equal(report(await runSweeps(world.reaperDeps(), { now: new Date(at.getTime() + DAY_MS) }))?.items, 0);
    // A day and a half later the user sends the form again: the recorded message goes, its copy takes the reservation.
    await world.sentCopy(mailbox, resumed, { bytes: 3000, at: new Date(at.getTime() + 1.5 * DAY_MS) });
    // The other copy goes to the trash and out of it: its bytes come back then, its row is gone.
    await withTransaction(world.db.pool, async (db) => {
      assert.ok(await trashMailboxMessage(db, mailbox.id, copy ?? ''));
      assert.deepEqual(await deleteTrashedMessages(db, mailbox.id), { messages: 1, bytes: 5000 });
    });
    assert.equal(await world.usage(mailbox.id), 3000);

    const later = draftDeadAfter(at);
    assert.equal(await sweepAt(later), 0);
    assert.equal(report(await runSweeps(world.reaperDeps(), { now: later }))?.items, 0);
    assert.equal(await world.usage(mailbox.id), 3000, 'nothing given back twice');
    for (const id of [resumed, deleted]) assert.deepEqual(abandonedEvents(await getTrace(world.db.pool, id)), []);
  });

  it('gives back once when two sweeps run at once, with or without their lock', async () => {
    const mailbox = await world.activeMailbox();
    const at = new Date();
    for (let i = 0; i < 5; i++) await world.portalMessage(mailbox, { bytes: 1000 + i, at, refused: i % 2 === 0 });
    const other = await world.activeMailbox();
    for (let i = 0; i < 3; i++) await world.portalMessage(other, { bytes: 700, at });
    // Without a mailbox row to wait on, the claims wait on the message's row.
    const gone = await world.activeMailbox();
    for (let i = 0; i < 4; i++) await world.portalMessage(gone, { bytes: 300, at });
    await withTransaction(world.db.pool, (c) => deleteMailbox(c, gone.id));
    const later = draftDeadAfter(at);

    // Without the sweep's lock: the transactions alone decide (a dry run, or a lock lost with its connection).
    const results = await Promise.all([sweepAt(later), sweepAt(later), sweepAt(later)]);
    assert.equal(
      results.reduce((sum, n) => sum + n, 0),
      12,
    );
    assert.equal(await world.usage(mailbox.id), 0);
    assert.equal(await world.usage(other.id), 0);
    const { rows } = await world.db.pool.query(
      `select count(*)::int as n, count(distinct message_id)::int as messages from message_events
        where event = 'message.sent-copy-abandoned' and data ->> 'mailboxId' = any($1::text[])`,
      [[mailbox.id, other.id, gone.id]],
    );
    assert.deepEqual(rows[0], { n: 12, messages: 12 });

    // Two reapers' rounds, each sweep under its lock.
    const third = await world.activeMailbox();
    for (let i = 0; i < 4; i++) await world.portalMessage(third, { bytes: 250, at });
    const rounds = await Promise.all([
      runSweeps(world.reaperDeps(), { now: later }),
      runSweeps(world.reaperDeps(), { now: later }),
    ]);
    assert.equal(
      rounds.flat().reduce((sum, r) => sum + (r.sweep === SWEEP ? r.items : 0), 0),
      4,
    );
    assert.equal(await world.usage(third.id), 0);
  });

  it('does not give back the bytes of a copy stored while it waits for the mailbox', async () => {
    const mailbox = await world.activeMailbox();
    const at = new Date();
    const id = await world.portalMessage(mailbox, { bytes: 2222, at });
    const client = await world.db.pool.connect();
    try {
      // The portal's step 5 has the mailbox row locked and the copy written, not yet committed.
      await client.query('begin');
      await world.sentCopy(mailbox, id, { bytes: 2222, at, db: client });
      const sweeping = sweepAt(draftDeadAfter(at));
      await waitFor('the sweep to wait for the mailbox row', async () => {
        const { rows } = await world.db.pool.query(
          `select 1 from pg_locks l join pg_stat_activity a on a.pid = l.pid
            where not l.granted and a.query ilike '%from mailboxes%for update%'`,
        );
        return rows.length > 0 || undefined;
      });
      await client.query('commit');
      assert.equal(await sweeping, 0);
    } finally {
      client.release();
    }
    assert.equal(await world.usage(mailbox.id), 2222, 'the copy holds its bytes');
    assert.deepEqual(abandonedEvents(await getTrace(world.db.pool, id)), []);
  });

  it('closes the reservation of a deleted mailbox without error, with nothing to give back', async () => {
    const mailbox = await world.activeMailbox();
    const at = new Date();
    const id = await world.portalMessage(mailbox, { bytes: 999, at, refused: true });
    assert.ok(await withTransaction(world.db.pool, (c) => deleteMailbox(c, mailbox.id)));
    const later = draftDeadAfter(at);
    const reports = await runSweeps(world.reaperDeps(), { now: later });
    assert.deepEqual(report(reports), { sweep: SWEEP, outcome: 'done', items: 1, note: '(0 bytes)' });
    const [event, ...more] = abandonedEvents(await getTrace(world.db.pool, id));
    assert.equal(more.length, 0);
    assert.deepEqual(event?.data, { mailboxId: mailbox.id, bytes: 999, releasedBytes: 0, usageBytes: null });
    assert.equal(report(await runSweeps(world.reaperDeps(), { now: later }))?.items, 0);
  });

  it('gives nothing back when the round fails before its event is written, and once in the next round', async () => {
    const mailbox = await world.activeMailbox();
    const at = new Date();
    const id = await world.portalMessage(mailbox, { bytes: 1500, at, refused: true });
    // The database refuses the closing event of this message (as a crash between the two statements would end it).
    await world.db.pool.query(`create function refuse_abandoned() returns trigger language plpgsql as $$
      begin raise exception 'refused for the test'; end $$`);
    await world.db.pool.query(
      `create trigger refuse_abandoned before insert on message_events for each row
         when (new.event = 'message.sent-copy-abandoned' and new.message_id = '${id}')
         execute function refuse_abandoned()`,
    );
    const later = draftDeadAfter(at);
    assert.equal(report(await runSweeps(world.reaperDeps(), { now: later }))?.outcome, 'failed');
    assert.equal(await world.usage(mailbox.id), 1500, 'the release went with the event');
    await world.db.pool.query('drop trigger refuse_abandoned on message_events');
    await world.db.pool.query('drop function refuse_abandoned()');
    assert.equal(report(await runSweeps(world.reaperDeps(), { now: later }))?.items, 1);
    assert.equal(await world.usage(mailbox.id), 0);
    assert.equal(abandonedEvents(await getTrace(world.db.pool, id)).length, 1);
  });

  it('gives back no more than the usage holds', async () => {
    const mailbox = await world.activeMailbox();
    const at = new Date();
    const id = await world.portalMessage(mailbox, { bytes: 8000, at });
    await world.db.pool.query('update mailboxes set usage_bytes = 5000 where id = $1', [mailbox.id]);
    assert.equal(await sweepAt(draftDeadAfter(at)), 1);
    assert.equal(await world.usage(mailbox.id), 0);
    assert.deepEqual(abandonedEvents(await getTrace(world.db.pool, id))[0]?.data, {
      mailboxId: mailbox.id,
      bytes: 8000,
      releasedBytes: 5000,
      usageBytes: 0,
    });
  });

  it('keeps the trace of an open reservation past SMGW_TRACE_RETENTION until it is given back, then lets it go', async () => {
    const mailbox = await world.activeMailbox();
    const at = new Date();
    // The unconfirmed publish went after all: delivered, its contents gone, its trace finished but for the copy.
    const id = await world.portalMessage(mailbox, { bytes: 600, at, refused: true });
    await world.db.pool.query(`update message_recipients set state = 'delivered' where message_id = $1`, [id]);
    const shortRetention = world.reaperDeps({ traceRetentionMs: HOUR_MS });

    const inADay = await runSweeps(shortRetention, { now: new Date(at.getTime() + DAY_MS) });
    assert.ok(await getTrace(world.db.pool, id), 'kept while the draft may be sent again');
    assert.equal(report(inADay)?.items, 0);

    const later = draftDeadAfter(at);
    const reports = await runSweeps(shortRetention, { now: later });
    assert.equal(report(reports)?.items, 1);
    assert.equal(await world.usage(mailbox.id), 0);
    assert.equal(await getTrace(world.db.pool, id), undefined, 'closed, the trace goes in the same round');
  });

  it('the operator command prints what it would release', async () => {
    const mailbox = await world.activeMailbox();
    const at = new Date();
    await world.portalMessage(mailbox, { bytes: 4321, at, refused: true });
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [CLI, '--once', '--dry-run', '--as-of', draftDeadAfter(at).toISOString()],
      { env: { ...process.env, ...world.env, SMGW_LOG_LEVEL: 'silent' } },
    );
    assert.match(stdout, /^sent-copy-reservations +would release 1 \(4321 bytes\)$/m);
    assert.equal(await world.usage(mailbox.id), 4321);
  });
});
