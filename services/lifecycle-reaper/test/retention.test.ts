// Trace retention and parked envelopes against the real PostgreSQL, at injected times; the operator's dry run of
// the new sweeps changes nothing; a reaper killed (SIGKILL) in the middle of a large trace purge finishes on the next
// run.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { newMessageId } from '@smgw/envelope';
import { envelopeFixture, waitFor } from '@smgw/testing';
import { getTrace, recordMessage, recordParkedAt, setRecipientState } from '@smgw/trace';
import { runSweeps, type SweepReport } from '../src/run-sweeps.ts';
import { DAY_MS, World } from './world.ts';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const done = (reports: SweepReport[], sweep: string) => reports.find((r) => r.sweep === sweep);

describe('trace retention and parked envelopes', () => {
  let world: World;
  before(async () => {
    world = await World.create();
  });
  after(() => world.drop());

  /** A message recorded `daysAgo` days ago with one recipient in `state` (and no blob left). */
  const traced = async (state: 'delivered' | 'pending' | 'deferred' | 'bounced', daysAgo: number) => {
    const id = newMessageId();
    const receivedAt = new Date(Date.now() - daysAgo * DAY_MS).toISOString();
    await recordMessage(world.db.pool, envelopeFixture({ id, receivedAt, recipients: ['r@behoerde.example'] }));
    if (state !== 'pending') await setRecipientState(world.db.pool, id, ['r@behoerde.example'], state);
    return id;
  };

  it('removes the trace of finished messages after SMGW_TRACE_RETENTION, never of unfinished, parked or mailbox ones', async () => {
    const old = await traced('delivered', 100);
    const bounced = await traced('bounced', 100);
    const recent = await traced('delivered', 10);
    const inFlight = await traced('deferred', 100);
    const parked = await traced('pending', 100);
    await recordParkedAt(world.db.pool, 'encrypt')(envelopeFixture({ id: parked }), 'ENCRYPT_FAILED', 'no key');
    const { messageIds } = await world.mailbox('postfach@buerger.example', [{ from: 'a@b.example', text: 'x' }]);
    await world.db.pool.query("update messages set received_at = now() - interval '100 days' where id = $1", [
      messageIds[0],
    ]);

    const reports = await runSweeps(world.reaperDeps(), { now: new Date() });
    assert.equal(done(reports, 'traces')?.items, 2);
    assert.equal(await getTrace(world.db.pool, old), undefined);
    assert.equal(await getTrace(world.db.pool, bounced), undefined);
    for (const kept of [recent, inFlight, parked, messageIds[0] ?? '']) {
      assert.ok(await getTrace(world.db.pool, kept), `${kept} kept`);
    }
    assert.equal(done(await runSweeps(world.reaperDeps(), { now: new Date() }), 'traces')?.items, 0);
  });

  it('reports parked envelopes (gauge, log line with ids); remove gives them up only after SMGW_PARKED_RETENTION', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = captureLog(lines);
    const report = await runSweeps(world.reaperDeps({ log }), { now: new Date() });
    assert.match(done(report, 'parked')?.note ?? '', /^\(1 parked, oldest since /);
    const line = lines.find((l) => l.code === 'REAPER_PARKED_ENVELOPES');
    assert.equal(line?.count, 1);
    const listed = (line?.messageIds ?? []) as string[];
    assert.equal(listed.length, 1);

    const remove = world.reaperDeps({ parkedAction: 'remove' });
    assert.equal(done(await runSweeps(remove, { now: new Date() }), 'parked')?.items, 0, 'not before 30 days');
    const later = await runSweeps(remove, { now: new Date(Date.now() + 31 * DAY_MS) });
    assert.equal(done(later, 'parked')?.items, 1);
    const parkedId = listed[0] ?? '';
    const trace = await getTrace(world.db.pool, parkedId);
    assert.equal(trace?.recipients[0]?.state, 'bounced');
    assert.equal(trace?.events.at(-1)?.event, 'envelope.expired');
    assert.match(done(await runSweeps(remove, { now: new Date() }), 'parked')?.note ?? '', /^\(0 parked\)/);
  });
});

describe('the operator dry run of the new sweeps', () => {
  let world: World;
  before(async () => {
    world = await World.create();
  });
  after(() => world.drop());

  it('counts what it would do and changes nothing', async () => {
    const { mailbox } = await world.mailbox('trocken@buerger.example');
    const old = envelopeFixture({ receivedAt: new Date(Date.now() - 100 * DAY_MS).toISOString() });
    await recordMessage(world.db.pool, old);
    await setRecipientState(world.db.pool, old.id, old.recipients, 'delivered');
    const asOf = new Date(mailbox.createdAt.getTime() + 181 * DAY_MS).toISOString();
    const published = world.published.length;
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, '--once', '--dry-run', '--as-of', asOf], {
      env: { ...process.env, ...world.env, SMGW_LOG_LEVEL: 'silent' },
    });
    assert.match(stdout, /^first-warnings +would warn 1$/m);
    assert.match(stdout, /^traces +would remove 1$/m);
    const warned = await world.db.pool.query('select count(*)::int as n from mailbox_inactivity_warnings');
    assert.equal(warned.rows[0].n, 0);
    assert.equal(world.published.length, published);
    assert.equal(done(await runSweeps(world.reaperDeps(), { now: new Date() }), 'traces')?.items, 1, 'still there');
  });
});

describe('a reaper killed in the middle of a sweep', () => {
  let world: World;
  before(async () => {
    world = await World.create();
  });
  after(() => world.drop());

  it('has kept what it did, and the next run finishes the rest', async () => {
    const total = 20_000;
    // Finished messages 100 days old, written in one statement (the trace's own functions would take minutes).
    await world.db.pool.query(
      `insert into messages (id, trace_id, direction, mail_from, blob_sha256, size, received_at)
       select 'k' || i, 't' || i, 'inbound', 'a@b.example', 'x', 1, now() - interval '100 days'
         from generate_series(1, $1) as i`,
      [total],
    );
    await world.db.pool.query(
      `insert into message_recipients (message_id, recipient, state) select id, 'r@x.example', 'delivered' from messages`,
    );
    const left = async () => (await world.db.pool.query('select count(*)::int as n from messages')).rows[0].n as number;

    const child = spawn(process.execPath, [CLI, '--once'], {
      env: { ...process.env, ...world.env, SMGW_LOG_LEVEL: 'silent' },
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const seen = await waitFor(
      'the purge to be under way',
      async () => {
        const n = await left();
        return n < total ? n : undefined;
      },
      { intervalMs: 5 },
    );
    child.kill('SIGKILL');
    await exited;
    const atKill = await left();
    assert.ok(seen > 0 && atKill > 0, `killed mid-sweep (${atKill} of ${total} left)`);

    const { stdout } = await promisify(execFile)(process.execPath, [CLI, '--once'], {
      env: { ...process.env, ...world.env, SMGW_LOG_LEVEL: 'silent' },
    });
    // The killed process's last statement may still commit on the server after the kill: at most what was left.
    const removed = Number(/^traces +removed (\d+)$/m.exec(stdout)?.[1]);
    assert.ok(removed > 0 && removed <= atKill, `the next run removed ${removed} of ${atKill} left`);
    assert.equal(await left(), 0);
  });
});

/** A logger that keeps each warn/info/error object (pino's shape is more than the reaper needs). */
function captureLog(lines: Record<string, unknown>[]) {
  const keep = (obj: unknown) => {
    if (obj && typeof obj === 'object') lines.push(obj as Record<string, unknown>);
  };
  const log = { info: keep, warn: keep, error: keep, debug: () => {}, child: () => log };
  return log as unknown as import('@smgw/observability').Logger;
}
