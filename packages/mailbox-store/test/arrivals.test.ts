// The mailbox stage's arrival transaction (recordArrival, then commitArrival: the mailbox row is locked only in the
// round trip that commits) against the real PostgreSQL: many arrivals at one mailbox near its quota, an arrival
// racing the mailbox's deletion or an operator's lock, a redelivered envelope, and hostile values for the literals.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createPool, type Pool, type PoolClient, withTransaction } from '@smgw/db';
import { createTestDatabase, type TestDatabase, waitFor } from '@smgw/testing';
import {
  type ArrivalRecorded,
  commitArrival,
  createFolderMailboxKeyStore,
  deleteMailbox,
  ensureMailbox,
  findArrival,
  findMailboxById,
  listMailboxMessages,
  lockMailbox,
  type Mailbox,
  type MailboxKeyStore,
  openMailboxKey,
  readMailboxMessage,
  recordArrival,
  sealMailboxMessage,
  setMailboxLocked,
} from '../src/index.ts';

const SIZE = 1000;

describe('mailbox arrivals', () => {
  let db: TestDatabase;
  let pool: Pool;
  let keys: MailboxKeyStore;
  before(async () => {
    db = await createTestDatabase();
    // Enough connections for the parallel arrivals (the test database's own pool is small).
    pool = createPool({ url: db.url, schema: db.schema, max: 16, applicationName: 'smgw-test-arrivals' });
    keys = createFolderMailboxKeyStore(db.keys);
  });
  after(async () => {
    await pool?.end();
    await db?.drop();
  });

  const newMailbox = async () =>
    (await ensureMailbox(pool, `m-${randomUUID().slice(0, 8)}@buerger.example`, keys)).mailbox;

  const messageId = () => `01ARRIVAL${randomUUID().replaceAll('-', '').slice(0, 17).toUpperCase()}`;

  /** What the stage does for one recipient, read `mailbox` as it was before: fits → store, else refuse. */
  async function arrive(
    mailbox: Mailbox,
    id: string,
    quotaBytes: number,
    hooks: { afterRecord?: (client: PoolClient) => Promise<void> } = {},
  ): Promise<ArrivalRecorded['kind'] | 'changed-at-commit'> {
    const fits = mailbox.usageBytes + SIZE <= quotaBytes;
    const raw = Buffer.concat([Buffer.from(`Subject: ${id}\r\n\r\n`), randomBytes(SIZE)]).subarray(0, SIZE);
    const dataKey = await openMailboxKey(keys, mailbox);
    const message = fits
      ? sealMailboxMessage({
          mailboxId: mailbox.id,
          dataKey,
          folder: 'inbox',
          messageId: id,
          recipient: mailbox.address,
          raw,
          receivedAt: new Date(),
        })
      : undefined;
    dataKey.fill(0);
    const client = await pool.connect();
    let committed = false;
    try {
      await client.query('begin');
      const arrival = {
        messageId: id,
        recipient: mailbox.address,
        mailboxId: mailbox.id,
        notices: [],
        state: mailbox.state,
        size: SIZE,
        quotaBytes,
        message,
      };
      const result = await recordArrival(client, arrival, new Date());
      if (result.kind !== 'recorded') return result.kind;
      await hooks.afterRecord?.(client);
      if (message) {
        if ((await commitArrival(client, { ...arrival, addedBytes: result.addedBytes })) === 'changed') {
          return 'changed-at-commit';
        }
      } else {
        await client.query('commit');
      }
      committed = true;
      return result.kind;
    } finally {
      if (!committed) await client.query('rollback');
      client.release();
    }
  }

  /** The stage's loop: 'changed' sends the envelope again, with the mailbox read anew. */
  async function arriveUntilDone(mailboxId: string, id: string, quotaBytes: number) {
    for (let round = 0; round < 50; round++) {
      const mailbox = await findMailboxById(pool, mailboxId);
      assert.ok(mailbox, 'the mailbox is there');
      const kind = await arrive(mailbox, id, quotaBytes);
      if (kind === 'recorded' || kind === 'redelivered') return;
    }
    assert.fail(`arrival ${id} never settled`);
  }

  const rowsOf = async (mailboxId: string) =>
    (
      await pool.query<{ n: string; bytes: string }>(
        'select count(*) as n, coalesce(sum(size), 0) as bytes from mailbox_messages where mailbox_id = $1',
        [mailboxId],
      )
    ).rows[0];

  it('lets parallel arrivals at one mailbox near its quota store what fits and refuse the rest, never over it', async () => {
    const mailbox = await newMailbox();
    const quotaBytes = 5 * SIZE + SIZE / 2; // room for five
    const ids = Array.from({ length: 12 }, messageId);
    // All read the mailbox before any commits: every one of them believes it fits.
    const first = await Promise.all(ids.map((id) => arrive(mailbox, id, quotaBytes)));
    assert.equal(first.filter((k) => k === 'recorded').length, 5);
    assert.equal(first.filter((k) => k === 'changed-at-commit').length, 7);
    // The ones told 'changed' go again, as the stage does, and are refused now.
    await Promise.all(ids.map((id) => arriveUntilDone(mailbox.id, id, quotaBytes)));

    const after = await findMailboxById(pool, mailbox.id);
    assert.equal(after?.usageBytes, 5 * SIZE);
    const rows = await rowsOf(mailbox.id);
    assert.equal(Number(rows?.n), 5);
    assert.equal(Number(rows?.bytes), 5 * SIZE);
    const outcomes = await Promise.all(ids.map((id) => findArrival(pool, id, mailbox.address)));
    assert.equal(outcomes.filter((a) => a?.outcome === 'stored').length, 5);
    assert.equal(outcomes.filter((a) => a?.outcome === 'over_quota').length, 7);
    // Each stored arrival has its message, once, and it opens under the mailbox's key.
    const listed = await listMailboxMessages(pool, mailbox.id, 'inbox');
    const stored = outcomes.filter((a) => a?.outcome === 'stored').map((a) => a?.messageId);
    assert.deepEqual(listed.map((m) => m.messageId).sort(), stored.sort());
    const dataKey = await openMailboxKey(keys, mailbox);
    for (const row of listed) {
      assert.equal((await readMailboxMessage(pool, mailbox.id, dataKey, row.id))?.length, SIZE);
    }
  });

  it('stores a redelivered envelope once, also when both deliveries run at the same time', async () => {
    const mailbox = await newMailbox();
    const id = messageId();
    const kinds = await Promise.all([arrive(mailbox, id, 100 * SIZE), arrive(mailbox, id, 100 * SIZE)]);
    assert.deepEqual([...kinds].sort(), ['recorded', 'redelivered']);
    assert.equal(await arrive(mailbox, id, 100 * SIZE), 'redelivered');
    assert.equal(Number((await rowsOf(mailbox.id))?.n), 1);
    assert.equal((await findMailboxById(pool, mailbox.id))?.usageBytes, SIZE);
  });

  /** Whether the backend `pid` waits for a lock (another transaction's row). */
  const waitsForLock = async (pid: number) =>
    (await db.pool.query(`select 1 from pg_stat_activity where pid = $1 and wait_event_type = 'Lock'`, [pid])).rows
      .length > 0;

  const backendPid = async (client: PoolClient) =>
    (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid ?? 0;

  it('stores nothing in a mailbox deleted before the arrival got to it', async () => {
    const mailbox = await newMailbox();
    await withTransaction(pool, (c) => deleteMailbox(c, mailbox.id));
    await keys.destroy(mailbox.id);
    // Its key is gone: the stage cannot even seal the message (it then finds the row gone and goes again).
    await assert.rejects(arrive(mailbox, messageId(), 100 * SIZE), { code: 'MAILBOX_KEY_GONE' });

    // The key opened just before the deletion: the database refuses the rows (the foreign key), nothing is stored.
    const other = await newMailbox();
    const id = messageId();
    const kind = await arrive(other, id, 100 * SIZE);
    assert.equal(kind, 'recorded');
    await withTransaction(pool, (c) => deleteMailbox(c, other.id));
    assert.equal(await arrive(other, messageId(), 100 * SIZE), 'changed');
    assert.equal(Number((await rowsOf(other.id))?.n), 0);
    assert.equal(await findMailboxById(pool, other.id), undefined);
  });

  it('makes a deletion racing an arrival wait for it and take the message along; the key does not come back', async () => {
    const mailbox = await newMailbox();
    const deleting = await db.pool.connect();
    let deletion: Promise<unknown> | undefined;
    try {
      const kind = await arrive(mailbox, messageId(), 100 * SIZE, {
        afterRecord: async () => {
          // The user deletes the mailbox while the arrival's rows are written but not committed.
          const pid = await backendPid(deleting);
          deletion = (async () => {
            await deleting.query('begin');
            await lockMailbox(deleting, mailbox.id);
            await deleteMailbox(deleting, mailbox.id);
            await deleting.query('commit');
            await keys.destroy(mailbox.id);
          })();
          await waitFor('the deletion to wait for the arrival', () => waitsForLock(pid));
        },
      });
      assert.equal(kind, 'recorded');
      await deletion;
    } finally {
      deleting.release();
    }
    assert.equal(await findMailboxById(pool, mailbox.id), undefined);
    assert.equal(Number((await rowsOf(mailbox.id))?.n), 0);
    await assert.rejects(openMailboxKey(keys, mailbox), { code: 'MAILBOX_KEY_GONE' });
    assert.equal(await keys.get(mailbox.id), undefined);
  });

  it('makes an arrival wait for a deletion in progress, then stores nothing', async () => {
    const mailbox = await newMailbox();
    const deleting = await db.pool.connect();
    try {
      await deleting.query('begin');
      await lockMailbox(deleting, mailbox.id);
      await deleteMailbox(deleting, mailbox.id);
      let arrivingPid = 0;
      const arrival = arrive(mailbox, messageId(), 100 * SIZE, {
        afterRecord: async () => assert.fail('the rows of a deleted mailbox were written'),
      });
      await waitFor('the arrival to wait for the deletion', async () => {
        const { rows } = await db.pool.query<{ pid: number }>(
          `select pid from pg_stat_activity where wait_event_type = 'Lock' and application_name = 'smgw-test-arrivals'
              and pg_blocking_pids(pid) @> array[$1::int]`,
          [await backendPid(deleting)],
        );
        arrivingPid = rows[0]?.pid ?? 0;
        return arrivingPid;
      });
      await deleting.query('commit');
      assert.equal(await arrival, 'changed');
    } finally {
      deleting.release();
    }
    assert.equal(Number((await rowsOf(mailbox.id))?.n), 0);
  });

  it('commits nothing when an operator locked the mailbox after the mails were written', async () => {
    const mailbox = await newMailbox();
    const id = messageId();
    const kind = await arrive(mailbox, id, 100 * SIZE, {
      afterRecord: async () => {
        await setMailboxLocked(pool, mailbox.id, true, 'admin:test', new Date());
      },
    });
    assert.equal(kind, 'changed-at-commit');
    assert.equal(await findArrival(pool, id, mailbox.address), undefined);
    assert.equal(Number((await rowsOf(mailbox.id))?.n), 0);
    assert.equal((await findMailboxById(pool, mailbox.id))?.usageBytes, 0);
  });

  it('refuses hostile values for the commit statement before sending anything', async () => {
    const mailbox = await newMailbox();
    const good = { mailboxId: mailbox.id, state: mailbox.state, size: SIZE, addedBytes: SIZE, quotaBytes: 10 * SIZE };
    const client = await pool.connect();
    try {
      await client.query('begin');
      await assert.rejects(
        commitArrival(client, { ...good, mailboxId: `${mailbox.id}'; drop table mailboxes; --` }),
        RangeError,
      );
      await assert.rejects(commitArrival(client, { ...good, state: "active' or '1'='1" as 'active' }), RangeError);
      await assert.rejects(commitArrival(client, { ...good, addedBytes: -1 }), RangeError);
      await assert.rejects(commitArrival(client, { ...good, size: Number.NaN }), RangeError);
      await assert.rejects(commitArrival(client, { ...good, quotaBytes: 1e300 }), RangeError);
      await client.query('rollback');
    } finally {
      client.release();
    }
    assert.ok(await findMailboxById(pool, mailbox.id), 'the table is still there');
  });
});
