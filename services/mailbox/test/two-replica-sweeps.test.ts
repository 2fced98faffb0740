// Two mailbox replicas sweeping at once send each due mail once. The link mail of an operator's resend is marked
// by an audit row (markResentLinkMailed), not by a change to the token row the sweep locks (FOR UPDATE SKIP LOCKED):
// a sweep whose statement took its snapshot before the other replica committed, and reaches the token after that
// commit, finds the row unlocked and unchanged, and its NOT EXISTS on mailbox_audit still reads the old snapshot. It
// sent the link mail a second time until lockNextDueResentLinkMail read "still due" again after the lock.
//
// The interleaving is forced, not timed: mailbox_audit is put behind a view (this test's own schema only) whose
// filter waits on an advisory lock the test holds, for connections of "replica B" only. Replica B's lock query then
// has its snapshot and waits inside the statement; replica A sends and commits; the lock is released; B goes on.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createPool, type Pool, withTransaction } from '@smgw/db';
import type { Envelope } from '@smgw/envelope';
import {
  ensureActivationToken,
  ensureMailbox,
  type MailboxKeyStore,
  requestActivationResend,
} from '@smgw/mailbox-store';
import { createTestDatabase, type TestDatabase, waitFor } from '@smgw/testing';
import { sendDuePinMails } from '../src/pin-mail-sweep.ts';
import { sendDueResentLinkMails } from '../src/resent-link-mails.ts';
import { type SweepWorld, sweepWorld } from './sweep-world.ts';

const HOUR = 3_600_000;

describe('two replicas sweeping at once', () => {
  let db: TestDatabase;
  let poolB: Pool;
  let mailboxKeys: MailboxKeyStore;
  let published: Envelope[];
  let deps: SweepWorld['deps'];
  const gateKey = randomInt(1, 2 ** 31 - 1);

  before(async () => {
    db = await createTestDatabase();
    poolB = createPool({ url: db.url, schema: db.schema, applicationName: 'replica-b', max: 2 });
    ({ mailboxKeys, published, deps } = await sweepWorld(db));
    // The gate: reading mailbox_audit waits on the test's advisory lock, for replica B's connections only.
    await db.pool.query(`
      alter table mailbox_audit rename to mailbox_audit_rows;
      create function test_replica_b_gate() returns boolean language plpgsql volatile as $$
      begin
        if current_setting('application_name') = 'replica-b' then
          perform pg_advisory_xact_lock_shared(${gateKey});
        end if;
        return true;
      end $$ cost 0.0001; -- cheapest: evaluated before the other quals on each audit row read
      create view mailbox_audit as select * from mailbox_audit_rows where test_replica_b_gate();`);
  });
  after(async () => {
    await poolB?.end();
    await db?.drop();
  });

  /** A mailbox with its activation token of `t0` (PIN mail due an hour later). */
  async function mailboxWithToken(address: string, t0: Date) {
    const { mailbox } = await ensureMailbox(db.pool, address, mailboxKeys);
    await ensureActivationToken(db.pool, {
      mailbox,
      keys: mailboxKeys,
      now: t0,
      lifetimeMs: 24 * HOUR,
      pinDelayMs: HOUR,
    });
    return mailbox;
  }

  /**
   * Replica B's sweep starts first: its locking statement takes its snapshot and then waits at the gate. Replica A's
   * sweep runs to its commit meanwhile; then the gate opens and B goes on. Returns what each sent.
   */
  async function sweepsMeeting(sweep: (pool: Pool) => Promise<number>): Promise<{ a: number; b: number }> {
    const gate = await db.pool.connect();
    let byB: Promise<number> | undefined;
    let a: number;
    try {
      await gate.query('select pg_advisory_lock($1)', [gateKey]);
      byB = sweep(poolB);
      await waitFor('replica B at the gate', async () => {
        const { rows } = await db.pool.query(
          `select 1 from pg_locks l join pg_stat_activity a on a.pid = l.pid
            where a.application_name = 'replica-b' and l.locktype = 'advisory' and not l.granted`,
        );
        return rows.length > 0;
      });
      a = await sweep(db.pool);
    } finally {
      await gate.query('select pg_advisory_unlock($1)', [gateKey]).catch(() => {});
      gate.release();
    }
    return { a, b: await byB };
  }

  it('sends the link mail of one resend once, even when two replicas sweep at the same time', async () => {
    const t0 = new Date('2026-03-01T10:00:00Z');
    const address = 'doppelt@buerger.example';
    const mailbox = await mailboxWithToken(address, t0);
    const t1 = new Date(t0.getTime() + HOUR);
    await withTransaction(db.pool, (client) =>
      requestActivationResend(client, {
        mailbox,
        keys: mailboxKeys,
        now: t1,
        lifetimeMs: 24 * HOUR,
        pinDelayMs: HOUR,
        actor: 'admin:ops',
      }),
    );

    // Replica A's sweep sends the link mail and commits its mark while B's waits at the gate.
    const sentBy = await sweepsMeeting((pool) => sendDueResentLinkMails(deps(t1, pool)));
    assert.equal(sentBy.a, 1);

    const mails = published.filter((e) => e.recipients.includes(address));
    const marks = await db.pool.query(
      `select count(*)::int as n from mailbox_audit_rows where event = 'mailbox.activation-link-mailed'`,
    );
    assert.deepEqual(
      { mails: mails.length, sentByB: sentBy.b, marks: marks.rows[0].n },
      { mails: 1, sentByB: 0, marks: 1 },
      'one resend, one link mail',
    );
  });

  // The PIN mail's mark is an update of the locked token row itself (markPinMailSent): PostgreSQL re-checks the row.
  it('sends a PIN mail once under the same interleaving', async () => {
    const t0 = new Date('2026-03-02T10:00:00Z');
    const address = 'pin-kontrolle@buerger.example';
    const mailbox = await mailboxWithToken(address, t0);
    const t1 = new Date(t0.getTime() + HOUR);
    // An audit row of this mailbox, so that the sweep's NOT EXISTS reads one (and meets the gate).
    await db.pool.query(
      `insert into mailbox_audit_rows (mailbox_id, address, event, actor, at) values ($1, $2, 'test.filler', 'test', $3)`,
      [mailbox.id, address, t0],
    );
    const sentBy = await sweepsMeeting((pool) => sendDuePinMails(deps(t1, pool)));
    assert.deepEqual(sentBy, { a: 1, b: 0 });
    assert.equal(published.filter((e) => e.recipients.includes(address)).length, 1);
  });
});
