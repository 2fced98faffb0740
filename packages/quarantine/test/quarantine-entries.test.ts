import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Direction, type Envelope, newMessageId } from '@smgw/envelope';
import { createTestDatabase, envelopeFixture, type TestDatabase } from '@smgw/testing';
import { recordMessage } from '@smgw/trace';
import {
  findQuarantineEntry,
  getQuarantineEntry,
  INBOUND_NOTICE_CLIENTS,
  inboundNoticeClientsSince,
  insertQuarantineEntry,
  listQuarantine,
  markQuarantineReleased,
  siblingHasNotice,
} from '../src/index.ts';

const NOW = new Date('2026-06-01T12:00:00Z');
const DAY = 86_400_000;

function envelopeOf(direction: Direction, id = newMessageId()): Envelope {
  return envelopeFixture({ id, direction, receivedAt: NOW.toISOString() });
}

describe('quarantine entries', () => {
  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
  });

  async function quarantine(envelope: Envelope, notice?: Envelope): Promise<string | undefined> {
    await recordMessage(db.pool, envelope);
    return insertQuarantineEntry(db.pool, {
      envelope,
      verdict: 'infected',
      finding: 'Eicar-Signature',
      detail: 'clamd (test)',
      quarantinedAt: NOW,
      expiresAt: new Date(NOW.getTime() + 30 * DAY),
      notices: notice ? [notice] : [],
    });
  }

  it('records one entry per envelope and finds it again with its notice', async () => {
    const envelope = envelopeOf('inbound');
    const notice = { ...envelopeOf('internal'), itinerary: ['deliver' as const] };
    const id = await quarantine(envelope, notice);
    assert.ok(id);
    assert.equal(await quarantine(envelope), undefined, 'the same envelope again adds nothing');
    assert.deepEqual(await findQuarantineEntry(db.pool, envelope), { quarantineId: id, notices: [notice] });
    assert.equal(await findQuarantineEntry(db.pool, envelopeOf('inbound')), undefined);
  });

  it('reads an entry stored with one notice envelope (before notices went per agency domain) as a list of one', async () => {
    const envelope = envelopeOf('inbound');
    const notice = { ...envelopeOf('internal'), itinerary: ['deliver' as const] };
    const id = await quarantine(envelope);
    await db.pool.query('update quarantine set notice_envelope = $2 where id = $1', [id, JSON.stringify(notice)]);
    assert.deepEqual(await findQuarantineEntry(db.pool, envelope), { quarantineId: id, notices: [notice] });
  });

  it('tells whether another envelope of the same message holds the notice already', async () => {
    const internal = envelopeOf('internal');
    const outbound = envelopeOf('outbound', internal.id);
    assert.equal(await siblingHasNotice(db.pool, outbound), false);
    await quarantine(internal, { ...envelopeOf('internal'), itinerary: ['deliver'] });
    assert.equal(await siblingHasNotice(db.pool, outbound), true);
    assert.equal(await siblingHasNotice(db.pool, internal), false, 'its own entry is no sibling');
  });

  it('releases an open entry once and shows it released', async () => {
    const envelope = envelopeOf('outbound');
    const id = (await quarantine(envelope)) as string;
    const release = { id, operator: 'ops', reason: 'sender confirmed', at: NOW };
    const released = await markQuarantineReleased(db.pool, release);
    assert.equal(released?.entry.releasedBy, 'ops');
    assert.equal(released?.entry.releaseReason, 'sender confirmed');
    assert.equal(released?.entry.releasedAt, NOW.toISOString());
    assert.deepEqual(released?.storedEnvelope, envelope);
    assert.equal(await markQuarantineReleased(db.pool, release), undefined, 'a second release gets nothing');
    assert.deepEqual(await getQuarantineEntry(db.pool, id), released?.entry);
    assert.equal(await markQuarantineReleased(db.pool, { ...release, id: newMessageId() }), undefined);
  });

  it('lists entries newest first by state and direction, a page at a time', async () => {
    const portal = [];
    for (let i = 0; i < 3; i++) portal.push((await quarantine(envelopeOf('portal'))) as string);
    await markQuarantineReleased(db.pool, { id: portal[0] as string, operator: 'ops', at: NOW });
    const ids = (entries: { id: string }[]) => entries.map((e) => e.id);
    const open = await listQuarantine(db.pool, { state: 'open', direction: 'portal', limit: 10 });
    assert.deepEqual(ids(open), [portal[2], portal[1]]);
    const released = await listQuarantine(db.pool, { state: 'released', direction: 'portal', limit: 10 });
    assert.deepEqual(ids(released), [portal[0]]);
    const all = await listQuarantine(db.pool, { state: 'all', direction: 'portal', limit: 2 });
    assert.deepEqual(ids(all), [portal[2], portal[1]]);
    const next = await listQuarantine(db.pool, { state: 'all', direction: 'portal', limit: 2, before: portal[1] });
    assert.deepEqual(ids(next), [portal[0]]);
    assert.deepEqual(open[0]?.recipients, ['eingang@behoerde.example']);
    assert.equal(open[0]?.mailFrom, 'absender@extern.example');
  });
  it('counts the notices of an hour from the entries that hold one, through their own index, not every entry', async () => {
    const told = envelopeOf('inbound');
    const notice = envelopeFixture({ direction: 'outbound', recipients: ['postmaster@behoerde.example'] });
    await quarantine(told, notice);
    await quarantine(envelopeOf('inbound')); // withheld: no notice
    const since = new Date(NOW.getTime() - 3_600_000);
    assert.equal((await inboundNoticeClientsSince(db.pool, 'postmaster@behoerde.example', since)).length, 1);
    assert.equal((await inboundNoticeClientsSince(db.pool, 'other@behoerde.example', since)).length, 0);
    // As on a table of a stranger's flood (where a sequential scan would cost): the planner can answer from the index.
    const client = await db.pool.connect();
    try {
      await client.query('set enable_seqscan = off');
      const plan = await client.query(`explain ${INBOUND_NOTICE_CLIENTS}`, [since, '[]']);
      const text = plan.rows.map((row: Record<string, string>) => Object.values(row)[0]).join('\n');
      assert.match(text, /quarantine_inbound_notices_idx/);
    } finally {
      await client.query('reset enable_seqscan');
      client.release();
    }
  });
});
