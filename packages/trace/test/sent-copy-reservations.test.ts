// The trace's side of a portal message's Sent-copy reservation: which messages still hold one past a cut-off, a claim
// that only one of two transactions gets, and a trace retention that keeps a message while its reservation is open.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { withTransaction } from '@smgw/db';
import { newMessageId } from '@smgw/envelope';
import { createTestDatabase, envelopeFixture, type TestDatabase, waitFor } from '@smgw/testing';
import {
  claimAbandonedSentCopy,
  getTrace,
  listAbandonedSentCopies,
  purgeFinishedTraces,
  recordEvent,
  recordMessage,
  recordSentCopyAbandoned,
  setRecipientState,
} from '../src/index.ts';

const AT = new Date('2026-06-01T12:00:00Z');
const LATER = new Date('2026-06-10T12:00:00Z');
const MAILBOX = 'c0ffee00-0000-4000-8000-000000000001';

describe('Sent-copy reservations in the trace', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
  });

  /** A message recorded at `at` with `message.submitted` of `stage` carrying `data` (the portal's: mailbox, size). */
  async function submitted(
    at: Date,
    options: { stage?: string; data?: Record<string, unknown>; size?: number } = {},
  ): Promise<string> {
    const id = newMessageId(at.getTime());
    await recordMessage(
      db.pool,
      envelopeFixture({
        id,
        direction: 'portal',
        receivedAt: at.toISOString(),
        blob: { ref: 'c'.repeat(64), sha256: 'c'.repeat(64), size: options.size ?? 100 },
      }),
    );
    await recordEvent(db.pool, id, {
      stage: options.stage ?? 'portal',
      event: 'message.submitted',
      outcome: 'next',
      data: options.data ?? { mailboxId: MAILBOX, size: options.size ?? 100 },
      at,
    });
    return id;
  }

  const stored = (id: string) =>
    recordEvent(db.pool, id, { stage: 'portal', event: 'message.sent-copy-stored', outcome: 'next', at: AT });

  const abandon = (id: string) =>
    withTransaction(db.pool, async (client) => {
      const copy = await claimAbandonedSentCopy(client, id, LATER);
      if (copy) await recordSentCopyAbandoned(client, copy, { stage: 'test', reason: 'test', data: {}, at: LATER });
      return copy;
    });

  it('lists the portal messages recorded before the cut-off whose reservation is open, oldest first', async () => {
    const second = await submitted(new Date(AT.getTime() + 1000), { size: 2000 });
    const first = await submitted(AT, { size: 1000 });
    const withCopy = await submitted(AT);
    await stored(withCopy);
    const closed = await submitted(AT);
    assert.ok(await abandon(closed));
    const tooYoung = await submitted(LATER);
    const notPortal = await submitted(AT, { stage: 'ingest' });
    // An event that is not what the portal writes: no mailbox to give back to, the message row's size.
    const odd = await submitted(new Date(AT.getTime() + 2000), { data: { mailboxId: 7, size: 'many' }, size: 333 });

    const listed = await listAbandonedSentCopies(db.pool, LATER, 10);
    assert.deepEqual(listed, [
      { messageId: first, mailboxId: MAILBOX, bytes: 1000, submittedAt: AT },
      { messageId: second, mailboxId: MAILBOX, bytes: 2000, submittedAt: new Date(AT.getTime() + 1000) },
      { messageId: odd, mailboxId: undefined, bytes: 333, submittedAt: new Date(AT.getTime() + 2000) },
    ]);
    for (const id of [withCopy, closed, tooYoung, notPortal]) {
      assert.ok(!listed.some((c) => c.messageId === id), id);
    }
    assert.deepEqual(
      (await listAbandonedSentCopies(db.pool, LATER, 1)).map((c) => c.messageId),
      [first],
    );
    await assert.rejects(listAbandonedSentCopies(db.pool, LATER, 0), RangeError);
    for (const id of [first, second, odd]) assert.ok(await abandon(id));
    assert.deepEqual(await listAbandonedSentCopies(db.pool, LATER, 10), []);
  });

  it('gives a claim to one transaction: the second waits for the first and then finds it closed', async () => {
    const id = await submitted(AT);
    const first = await db.pool.connect();
    try {
      await first.query('begin');
      const copy = await claimAbandonedSentCopy(first, id, LATER);
      assert.ok(copy);
      await recordSentCopyAbandoned(first, copy, { stage: 'test', reason: 'test', data: {}, at: LATER });
      const second = abandon(id);
      await waitFor('the second claim to wait for the message row', async () => {
        const { rows } = await db.pool.query(
          `select 1 from pg_locks l join pg_stat_activity a on a.pid = l.pid
            where not l.granted and a.query ilike '%from messages where id%for no key update%'`,
        );
        return rows.length > 0 || undefined;
      });
      await first.query('commit');
      assert.equal(await second, undefined);
    } finally {
      first.release();
    }
    const events = (await getTrace(db.pool, id))?.events.filter((e) => e.event === 'message.sent-copy-abandoned');
    assert.equal(events?.length, 1);
  });

  it('finds nothing to claim for a copy stored, a message younger than the cut-off, or an unknown message', async () => {
    const withCopy = await submitted(AT);
    await stored(withCopy);
    const young = await submitted(LATER);
    for (const id of [withCopy, young, newMessageId()]) assert.equal(await abandon(id), undefined, id);
  });

  it('keeps the trace of a finished portal message while its reservation is open, whatever the retention', async () => {
    const open = await submitted(AT);
    const withCopy = await submitted(AT);
    await stored(withCopy);
    const closed = await submitted(AT);
    await abandon(closed);
    for (const id of [open, withCopy, closed]) {
      await setRecipientState(db.pool, id, ['eingang@behoerde.example'], 'delivered');
    }
    await purgeFinishedTraces(db.pool, LATER);
    assert.ok(await getTrace(db.pool, open), 'open: kept');
    assert.equal(await getTrace(db.pool, withCopy), undefined, 'copy stored (and gone since): finished');
    assert.equal(await getTrace(db.pool, closed), undefined, 'given back: finished');
    await abandon(open);
    await purgeFinishedTraces(db.pool, LATER);
    assert.equal(await getTrace(db.pool, open), undefined);
  });
});
