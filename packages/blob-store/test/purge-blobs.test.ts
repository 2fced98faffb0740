// Retention and garbage collection of blobs: only what no message, open quarantine entry or upload in progress
// still needs is removed.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  type BlobStore,
  collectUnreferencedBlobs,
  createBlobStore,
  createFolderKeyStore,
  purgeFinishedMessageBlobs,
} from '@smgw/blob-store';
import { newMessageId } from '@smgw/envelope';
import { createTestDatabase, envelopeFixture, type TestDatabase, waitFor } from '@smgw/testing';
import { type RecipientState, recordMessage, setRecipientState } from '@smgw/trace';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const RETENTION_MS = 7 * DAY_MS;

describe('purgeFinishedMessageBlobs', () => {
  let db: TestDatabase;
  let store: BlobStore;

  before(async () => {
    db = await createTestDatabase();
    store = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys), chunkBytes: 1000 });
  });
  after(async () => {
    await db.drop();
  });

  interface MessageSpec {
    daysAgo: number;
    states: RecipientState[];
    delivery?: 'sending' | 'deferred' | 'delivered';
    quarantine?: 'open' | 'released';
  }

  /** A recorded message with its original and one copy (as encrypt makes), recipients in `states`. */
  async function message(spec: MessageSpec): Promise<string> {
    const id = newMessageId();
    const blob = await store.put(Readable.from([randomBytes(2500)]), { messageId: id });
    await store.put(Readable.from([randomBytes(300)]), { messageId: id });
    const recipients = spec.states.map((_, i) => `r${i}@behoerde.example`);
    const receivedAt = new Date(Date.now() - spec.daysAgo * DAY_MS).toISOString();
    const envelope = envelopeFixture({ id, blob, recipients, receivedAt });
    await recordMessage(db.pool, envelope);
    for (const [i, state] of spec.states.entries()) await setRecipientState(db.pool, id, [recipients[i] ?? ''], state);
    if (spec.delivery) {
      await db.pool.query(`insert into deliveries (message_id, recipient, state) values ($1, $2, $3)`, [
        id,
        recipients[0],
        spec.delivery,
      ]);
    }
    if (spec.quarantine) {
      await db.pool.query(
        `insert into quarantine (id, message_id, blob_sha256, direction, verdict, finding, envelope, expires_at,
           released_at)
         values ($1, $2, $3, 'inbound', 'infected', 'Eicar-Signature', $4, now() + interval '30 days', $5)`,
        [newMessageId(), id, blob.sha256, JSON.stringify(envelope), spec.quarantine === 'released' ? new Date() : null],
      );
    }
    return id;
  }

  const blobsOf = async (id: string) =>
    Number((await db.pool.query('select count(*)::int as n from blobs where message_id = $1', [id])).rows[0].n);

  const cases: [string, MessageSpec, 'purged' | 'kept'][] = [
    ['delivered and bounced, 8 days old', { daysAgo: 8, states: ['delivered', 'bounced'] }, 'purged'],
    ["handed to the portal's store, 8 days old", { daysAgo: 8, states: ['in_mailbox'] }, 'purged'],
    [
      'delivered, with its delivery record done',
      { daysAgo: 8, states: ['delivered'], delivery: 'delivered' },
      'purged',
    ],
    ['quarantined, the entry gone after its expiry', { daysAgo: 8, states: ['quarantined'] }, 'purged'],
    ['delivered, but only 2 days old', { daysAgo: 2, states: ['delivered'] }, 'kept'],
    ['one recipient still pending', { daysAgo: 8, states: ['delivered', 'pending'] }, 'kept'],
    ['one recipient deferred', { daysAgo: 8, states: ['bounced', 'deferred'] }, 'kept'],
    ['a delivery still being sent', { daysAgo: 8, states: ['delivered'], delivery: 'sending' }, 'kept'],
    ['a delivery deferred', { daysAgo: 8, states: ['delivered'], delivery: 'deferred' }, 'kept'],
    ['quarantined, the entry open', { daysAgo: 8, states: ['quarantined'], quarantine: 'open' }, 'kept'],
    [
      'delivered, an open quarantine entry of its other direction',
      { daysAgo: 8, states: ['delivered'], quarantine: 'open' },
      'kept',
    ],
    ['released from quarantine and delivered', { daysAgo: 8, states: ['delivered'], quarantine: 'released' }, 'purged'],
  ];

  it('removes the blobs of finished messages older than the retention, and only those', async () => {
    const ids = [];
    for (const [, spec] of cases) ids.push(await message(spec));
    assert.equal(
      await purgeFinishedMessageBlobs(db.pool, RETENTION_MS),
      2 * cases.filter((c) => c[2] === 'purged').length,
    );
    for (const [i, [name, , expected]] of cases.entries()) {
      assert.equal(await blobsOf(ids[i] ?? ''), expected === 'purged' ? 0 : 2, name);
    }
    // The message rows and their trace stay.
    assert.equal((await db.pool.query('select 1 from messages where id = any($1)', [ids])).rowCount, cases.length);
    assert.equal(await purgeFinishedMessageBlobs(db.pool, RETENTION_MS), 0, 'a second run finds nothing');
  });

  it('refuses a negative retention', async () => {
    await assert.rejects(purgeFinishedMessageBlobs(db.pool, -1), RangeError);
  });
});

describe('collectUnreferencedBlobs', () => {
  let db: TestDatabase;
  let store: BlobStore;

  before(async () => {
    db = await createTestDatabase();
    store = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys), chunkBytes: 1000 });
  });
  after(async () => {
    await db.drop();
  });

  const exists = async (ref: string) =>
    (await db.pool.query('select 1 from blobs where id = $1', [ref])).rowCount === 1;
  const age = (ref: string, ms: number) =>
    db.pool.query(`update blobs set committed_at = now() - $2 * interval '1 millisecond' where id = $1`, [ref, ms]);

  it('removes old blobs whose message has no row, keeps recent ones and those of recorded messages', async () => {
    const orphan = await store.put(Readable.from([randomBytes(1500)]), { messageId: newMessageId() });
    await age(orphan.ref, 2 * HOUR_MS);
    const recent = await store.put(Readable.from([randomBytes(1500)]), { messageId: newMessageId() });
    const id = newMessageId();
    const owned = await store.put(Readable.from([randomBytes(1500)]), { messageId: id });
    await recordMessage(db.pool, envelopeFixture({ id, blob: owned }));
    await age(owned.ref, 2 * HOUR_MS);

    assert.equal(await collectUnreferencedBlobs(db.pool, HOUR_MS), 1);
    assert.equal(await exists(orphan.ref), false);
    assert.equal(await exists(recent.ref), true);
    assert.equal(await exists(owned.ref), true);
    assert.equal(await collectUnreferencedBlobs(db.pool, HOUR_MS), 0);
  });

  it('never touches a blob still being written, which completes and reads back', async () => {
    const id = newMessageId();
    const bytes = randomBytes(3500);
    const source = new PassThrough();
    const put = store.put(source, { messageId: id });
    source.write(bytes.subarray(0, 2500));
    await waitFor('two chunks written', async () => {
      const { rows } = await db.pool.query(
        `select count(*)::int as n from blob_chunks c join blobs b on b.id = c.blob_id
          where b.message_id = $1 and b.state = 'writing'`,
        [id],
      );
      return rows[0].n === 2;
    });
    // Even with no grace at all: the message has no row yet, but the blob is not committed.
    await collectUnreferencedBlobs(db.pool, 0);
    source.end(bytes.subarray(2500));
    const ref = await put;
    // Then its message is recorded, as ingest does right after: from now on it is referenced.
    await recordMessage(db.pool, envelopeFixture({ id, blob: ref }));
    assert.equal(await collectUnreferencedBlobs(db.pool, 0), 0);
    assert.ok((await store.readAll(ref.ref)).equals(bytes));
  });

  it('removes more unreferenced blobs than one batch holds', async () => {
    for (let i = 0; i < 230; i++) {
      await db.pool.query(
        `insert into blobs (id, state, digest, size, committed_at, message_id, kek_id, wrapped_key)
         values ($1, 'committed', '', 0, now() - interval '2 hours', $2, 'k', '\\x00')`,
        [randomUUID(), newMessageId()],
      );
    }
    assert.equal(await collectUnreferencedBlobs(db.pool, HOUR_MS), 230);
  });
});
