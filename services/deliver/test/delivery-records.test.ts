// What deliver records of an attempt, against real PostgreSQL: a late result never undoes another instance's claim.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { BlobNotFoundError, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { createPool } from '@smgw/db';
import { type Envelope, newMessageId } from '@smgw/envelope';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { recordMessage } from '@smgw/trace';
import {
  claimRecipients,
  createOutcomeRecorder,
  type RecipientOutcome,
  recordOutcomes,
} from '../src/delivery-records.ts';
import { sampleEnvelope } from './fixtures.ts';

const deferred: RecipientOutcome = {
  recipient: 'a@behoerde.example',
  state: 'deferred',
  code: 'DELIVERY_DEFERRED',
  reason: 'aborted: no heartbeat',
  data: {},
};

describe('deliver records', () => {
  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase();
  });

  after(async () => {
    await db?.drop();
  });

  /** The claim of deliver instance `owner` (its heartbeat counts 20 s) on the envelope's recipients. */
  const claimAs = (envelope: Envelope, owner: string, idle: string[] = []) =>
    claimRecipients(db.pool, { id: envelope.id, blobRef: envelope.blob.ref }, envelope.recipients, 60_000, {
      id: owner,
      deadAfterMs: 20_000,
      idle,
    });

  async function claimedBy(owner: string) {
    const envelope = sampleEnvelope({ id: newMessageId(), recipients: ['a@behoerde.example'] });
    await recordMessage(db.pool, envelope);
    await db.pool.query(`insert into deliver_instances (id) values ($1) on conflict do nothing`, [owner]);
    const claim = await claimAs(envelope, owner);
    assert.deepEqual(claim.claimed, ['a@behoerde.example']);
    return envelope;
  }

  async function states(messageId: string) {
    const d = await db.pool.query('select state, owner_instance from deliveries where message_id = $1', [messageId]);
    const r = await db.pool.query('select state from message_recipients where message_id = $1', [messageId]);
    return { delivery: d.rows[0], recipient: r.rows[0]?.state };
  }

  it('a fenced instance does not defer a claim another instance took over: it stays `sending` for that one', async () => {
    const envelope = await claimedBy('instance-a');
    // A's heartbeat went stale; B took the claim over and is sending now.
    await db.pool.query(
      `update deliver_instances set heartbeat_at = now() - interval '1 minute' where id = 'instance-a'`,
    );
    await db.pool.query(`insert into deliver_instances (id) values ('instance-b') on conflict do nothing`);
    const taken = await claimAs(envelope, 'instance-b');
    assert.deepEqual(taken.claimed, ['a@behoerde.example']);

    // A's aborted attempt comes back late and records its result.
    await recordOutcomes(db.pool, { envelope, destination: 'relay', outcomes: [deferred], owner: 'instance-a' });
    const after = await states(envelope.id);
    assert.deepEqual(after.delivery, { state: 'sending', owner_instance: 'instance-b' });
    assert.equal(after.recipient, 'pending', 'the trace does not say deferred while B sends');

    // So nobody else can claim it while B sends.
    const third = await claimAs(envelope, 'instance-c', ['a@behoerde.example']);
    assert.deepEqual(third.busy, ['a@behoerde.example']);

    // B's own result is recorded as usual.
    await recordOutcomes(db.pool, { envelope, destination: 'relay', outcomes: [deferred], owner: 'instance-b' });
    assert.equal((await states(envelope.id)).delivery.state, 'deferred');
    // Both attempts are in the trace, the fenced one too.
    const events = await db.pool.query(
      `select event, recipient from message_events where message_id = $1 and stage = 'deliver' order by id`,
      [envelope.id],
    );
    assert.deepEqual(events.rows, [
      { event: 'recipient.deferred', recipient: 'a@behoerde.example' },
      { event: 'recipient.deferred', recipient: 'a@behoerde.example' },
    ]);
  });

  it('a result that is final is recorded whoever holds the claim, and nothing steps back from it', async () => {
    const envelope = await claimedBy('instance-d');
    const delivered: RecipientOutcome = { ...deferred, state: 'delivered', code: undefined, reason: '250 ok' };
    await recordOutcomes(db.pool, { envelope, destination: 'relay', outcomes: [delivered], owner: 'instance-e' });
    assert.equal((await states(envelope.id)).delivery.state, 'delivered');
    await recordOutcomes(db.pool, { envelope, destination: 'relay', outcomes: [deferred], owner: 'instance-d' });
    const after = await states(envelope.id);
    assert.equal(after.delivery.state, 'delivered');
    assert.equal(after.recipient, 'delivered', 'the trace does not step back to deferred either');
  });

  it('records the results of envelopes that finish together in one statement, each row under its own rules', async () => {
    const record = createOutcomeRecorder(db.pool, { maxBatch: 16 });
    const delivered = await claimedBy('instance-f');
    const deferredHere = await claimedBy('instance-f');
    const takenOver = await claimedBy('instance-g');
    // G's heartbeat went stale and H took its claim over: G's late `deferred` must not undo H's claim.
    await db.pool.query(
      `update deliver_instances set heartbeat_at = now() - interval '1 minute' where id = 'instance-g'`,
    );
    await db.pool.query(`insert into deliver_instances (id) values ('instance-h') on conflict do nothing`);
    assert.deepEqual((await claimAs(takenOver, 'instance-h')).claimed, ['a@behoerde.example']);

    const ok: RecipientOutcome = { ...deferred, state: 'delivered', code: undefined, reason: '250 ok' };
    const results = await Promise.all([
      record({ envelope: delivered, destination: 'relay-1', outcomes: [ok], owner: 'instance-f' }),
      record({ envelope: deferredHere, destination: 'relay-2', outcomes: [deferred], owner: 'instance-f' }),
      record({ envelope: takenOver, destination: 'relay-3', outcomes: [deferred], owner: 'instance-g' }),
    ]);
    assert.deepEqual(results, [{ dsnRecorded: false }, { dsnRecorded: false }, { dsnRecorded: false }]);

    assert.deepEqual(await states(delivered.id), {
      delivery: { state: 'delivered', owner_instance: 'instance-f' },
      recipient: 'delivered',
    });
    assert.deepEqual(await states(deferredHere.id), {
      delivery: { state: 'deferred', owner_instance: 'instance-f' },
      recipient: 'deferred',
    });
    assert.deepEqual(await states(takenOver.id), {
      delivery: { state: 'sending', owner_instance: 'instance-h' },
      recipient: 'pending',
    });
    const events = await db.pool.query(
      `select message_id, event, data->>'destination' as destination from message_events
        where message_id = any($1::text[]) and stage = 'deliver' order by id`,
      [[delivered.id, deferredHere.id, takenOver.id]],
    );
    assert.deepEqual(
      events.rows.map((e) => [e.message_id, e.event, e.destination]).sort(),
      [
        [delivered.id, 'recipient.delivered', 'relay-1'],
        [deferredHere.id, 'recipient.deferred', 'relay-2'],
        [takenOver.id, 'recipient.deferred', 'relay-3'],
      ].sort(),
    );
    const destinations = await db.pool.query(
      'select message_id, destination from deliveries where message_id = any($1::text[]) and destination is not null',
      [[delivered.id, deferredHere.id]],
    );
    assert.deepEqual(
      destinations.rows.map((r) => [r.message_id, r.destination]).sort(),
      [
        [delivered.id, 'relay-1'],
        [deferredHere.id, 'relay-2'],
      ].sort(),
    );
  });

  it('reads the message blob row with the claim, and nothing when nothing was claimed', async () => {
    const store = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    const bytes = Buffer.from('Subject: claimed\r\n\r\nbody\r\n');
    const blob = await store.put(Readable.from([bytes]), { messageId: 'm-claim-blob' });
    const envelope = sampleEnvelope({ id: newMessageId(), recipients: ['a@behoerde.example'], blob });
    await recordMessage(db.pool, envelope);
    const message = { id: envelope.id, blobRef: blob.ref };
    const claim = await claimRecipients(db.pool, message, envelope.recipients, 60_000);
    assert.deepEqual(claim.claimed, ['a@behoerde.example']);
    assert.equal(claim.blob?.ref, blob.ref);
    assert.equal(claim.blob?.blob?.size, bytes.length);
    assert.deepEqual(await buffer(store.open(blob.ref, claim.blob)), bytes);

    // Claimed already (a live claim by nobody in particular, within its lease): nothing is claimed, nothing read.
    const again = await claimRecipients(db.pool, message, envelope.recipients, 60_000);
    assert.deepEqual(again.busy, ['a@behoerde.example']);
    assert.equal(again.blob, undefined);

    // A blob that is gone is found absent, and opening it fails as before.
    const gone = sampleEnvelope({ id: newMessageId(), recipients: ['a@behoerde.example'] });
    await recordMessage(db.pool, gone);
    const lost = await claimRecipients(db.pool, { id: gone.id, blobRef: gone.blob.ref }, gone.recipients, 60_000);
    assert.deepEqual(lost.claimed, ['a@behoerde.example']);
    assert.equal(lost.blob?.blob, undefined);
    await assert.rejects(buffer(store.open(gone.blob.ref, lost.blob)), BlobNotFoundError);

    // Asked not to (the caller reads the blob once another way): claimed, and no row brought along.
    const other = sampleEnvelope({ id: newMessageId(), recipients: ['a@behoerde.example'], blob });
    await recordMessage(db.pool, other);
    const bare = await claimRecipients(db.pool, { id: other.id, blobRef: undefined }, other.recipients, 60_000);
    assert.deepEqual(bare.claimed, ['a@behoerde.example']);
    assert.equal(bare.blob, undefined);
  });

  it('commits a claim without waiting for the WAL flush, and only the claim: the connection commits with it after', async () => {
    // One connection, so the claim and the statements after it share its session settings.
    const pool = createPool({ url: db.url, schema: db.schema, max: 1 });
    try {
      const replies: Record<string, unknown>[] = [];
      const watched = Object.assign(Object.create(pool) as typeof pool, {
        query: async (...args: Parameters<typeof pool.query>) => {
          const reply = await (pool.query as (...a: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>)(
            ...args,
          );
          replies.push(...reply.rows);
          return reply;
        },
      });
      const envelope = sampleEnvelope({ id: newMessageId(), recipients: ['a@behoerde.example'] });
      await recordMessage(db.pool, envelope);
      const claim = await claimRecipients(
        watched,
        { id: envelope.id, blobRef: envelope.blob.ref },
        envelope.recipients,
        60_000,
      );
      assert.deepEqual(claim.claimed, ['a@behoerde.example']);
      assert.equal(replies[0]?.commit_unflushed, 'off', "the claim's own transaction");
      // Local to the claim's transaction: the outcome after it (on the same connection) waits for its flush.
      assert.equal((await pool.query('show synchronous_commit')).rows[0]?.synchronous_commit, 'on');
      await recordOutcomes(pool, {
        envelope,
        destination: 'relay',
        outcomes: [{ ...deferred, state: 'delivered', code: undefined, reason: '250 ok' }],
      });
      assert.equal((await pool.query('show synchronous_commit')).rows[0]?.synchronous_commit, 'on');
      assert.equal((await states(envelope.id)).delivery?.state, 'delivered');
    } finally {
      await pool.end();
    }
  });

  it("records an attempt's result when the claim's row is gone (a database crash lost its unflushed commit)", async () => {
    const envelope = await claimedBy('instance-l');
    // What a crash before the claim's WAL reached the disk leaves: the message, no deliveries row.
    await db.pool.query('delete from deliveries where message_id = $1', [envelope.id]);
    const delivered: RecipientOutcome = { ...deferred, state: 'delivered', code: undefined, reason: '250 ok' };
    await recordOutcomes(db.pool, { envelope, destination: 'relay', outcomes: [delivered], owner: 'instance-l' });
    const after = await states(envelope.id);
    assert.equal(after.delivery?.state, 'delivered', 'a later copy of the envelope finds it done and sends nothing');
    assert.equal(after.recipient, 'delivered');
    const again = await claimAs(envelope, 'instance-m');
    assert.deepEqual(again.claimed, []);
    assert.deepEqual(again.done, ['a@behoerde.example']);
  });

  it("brings a small blob's chunk once, not once per claimed recipient (a 100-recipient message is one row)", async () => {
    const store = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    const bytes = Buffer.alloc(15 * 1024, 'x');
    const blob = await store.put(Readable.from([bytes]), { messageId: 'm-claim-many' });
    const recipients = Array.from({ length: 100 }, (_, i) => `r${i}@behoerde.example`);
    const envelope = sampleEnvelope({ id: newMessageId(), recipients, blob });
    await recordMessage(db.pool, envelope);
    const replies: { rows: unknown[] }[] = [];
    const watched = Object.assign(Object.create(db.pool) as typeof db.pool, {
      query: async (...args: Parameters<typeof db.pool.query>) => {
        const reply = await (db.pool.query as (...a: unknown[]) => Promise<{ rows: unknown[] }>)(...args);
        replies.push(reply);
        return reply;
      },
    });
    const claim = await claimRecipients(watched, { id: envelope.id, blobRef: blob.ref }, recipients, 60_000);
    assert.equal(claim.claimed.length, 100);
    assert.equal(replies.length, 1, 'one statement');
    assert.equal(replies[0]?.rows.length, 1, 'one row, whatever the number of recipients');
    assert.equal(claim.blob?.chunks?.length, 1, 'the chunk came with the row');
    assert.deepEqual(await buffer(store.open(blob.ref, claim.blob)), bytes);
  });
});
