// The handler without a broker: real PostgreSQL and SMTP sinks, outcomes inspected directly. Covers what the
// broker tests cannot provoke on purpose: redelivery after a crash, a claim held by another consumer.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { type Envelope, newMessageId } from '@smgw/envelope';
import type { HandlerContext, Outcome } from '@smgw/mq';
import { createTestDatabase, type SmtpSink, startSmtpSink, type TestDatabase } from '@smgw/testing';
import { recordMessage } from '@smgw/trace';
import { createDeliverHandler } from '../src/deliver-envelope.ts';
import { loadDsnTemplates } from '../src/dsn.ts';
import { createTransports, type Transports } from '../src/transports.ts';
import { sampleEnvelope, sampleMessage } from './fixtures.ts';
import { testLogger } from './harness.ts';

function context(overrides: Partial<HandlerContext> = {}): HandlerContext {
  return { attempt: 0, lastAttempt: false, log: testLogger, signal: new AbortController().signal, ...overrides };
}

function envelopesOf(outcome: Outcome): Envelope[] {
  assert.equal(outcome.kind, 'next', `expected next, got ${JSON.stringify(outcome)}`);
  return outcome.kind === 'next' ? outcome.envelopes : [];
}

describe('deliver handler', () => {
  let db: TestDatabase;
  let relay: SmtpSink;
  let transports: Transports;
  const published: Envelope[] = [];
  let handle: ReturnType<typeof createDeliverHandler>;

  async function stored(overrides: Partial<Envelope>, message = sampleMessage()): Promise<Envelope> {
    const id = overrides.id ?? newMessageId();
    const blob = await createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) }).put(
      Readable.from([message]),
      { messageId: id },
    );
    const envelope = sampleEnvelope({ blob, receivedAt: new Date().toISOString(), ...overrides, id });
    await recordMessage(db.pool, envelope);
    return envelope;
  }

  before(async () => {
    db = await createTestDatabase();
    relay = await startSmtpSink();
    relay.rejectRecipient = (rcpt) =>
      rcpt.startsWith('perm')
        ? { code: 550, message: '5.1.1 unknown' }
        : rcpt.startsWith('never')
          ? { code: 450, message: '4.2.1 busy' }
          : undefined;
    transports = createTransports({
      hostname: 'smgw.test',
      connectionsPerDestination: 2,
      timeoutMs: 5000,
      requireTlsOutside: false,
    });
    handle = createDeliverHandler({
      pool: db.pool,
      blobStore: createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) }),
      transports,
      routing: { internalDomains: ['behoerde.example'], internalRelay: [{ host: '127.0.0.1', port: relay.port }] },
      hostname: 'smgw.test',
      maxMessageBytes: 10 * 1024 * 1024,
      attemptTimeoutMs: 20_000,
      claimLeaseMs: 60_000,
      templates: await loadDsnTemplates(),
      publish: async (envelope) => {
        published.push(envelope);
      },
    });
  });

  after(async () => {
    transports?.close();
    await relay?.close();
    await db?.drop();
  });

  it('ends the journey and hands on the DSN in the same outcome', async () => {
    const envelope = await stored({ recipients: ['perm-1@behoerde.example'] });
    const [done, dsn, ...rest] = envelopesOf(await handle(envelope, context()));
    assert.equal(rest.length, 0);
    assert.deepEqual(done?.itinerary, []);
    assert.equal(dsn?.direction, 'generated');
    assert.equal(dsn?.mailFrom, '');
    assert.deepEqual(dsn?.recipients, [envelope.mailFrom]);
    assert.deepEqual(dsn?.itinerary, ['deliver']);
    assert.equal(dsn?.relatesTo, envelope.id);
  });

  it('sends nothing when the stored message is cut short: the blob fails to read, the SMTP transaction is aborted', async () => {
    const body = Buffer.from(`${'Anlage zum Bescheid, Zeile fuer Zeile. '.repeat(20)}\r\n`.repeat(1000));
    const envelope = await stored({ recipients: ['cut@behoerde.example'] }, Buffer.concat([sampleMessage(), body]));
    // The final chunk is gone (as if a dump or a disk lost it): what is left authenticates, but is not the whole.
    await db.pool.query('delete from blob_chunks where blob_id = $1 and final', [envelope.blob.ref]);
    const outcome = await handle(envelope, context());
    assert.equal(outcome.kind, 'retry');
    assert.match(outcome.kind === 'retry' ? outcome.reason : '', /without its final chunk/);
    assert.equal(relay.messages.filter((m) => m.rcptTo.includes('cut@behoerde.example')).length, 0);
  });

  it('publishes the recorded DSN again on redelivery and makes no second one', async () => {
    const envelope = await stored({ recipients: ['perm-2@behoerde.example'] });
    const [, first] = envelopesOf(await handle(envelope, context()));
    const messagesBefore = relay.messages.length;
    const [, again, ...rest] = envelopesOf(await handle(envelope, context()));
    assert.equal(rest.length, 0);
    assert.equal(again?.id, first?.id, 'the same DSN, so deliver dedupes it downstream');
    assert.equal(again?.blob.sha256, first?.blob.sha256);
    assert.equal(relay.messages.length, messagesBefore, 'nothing was sent again');
    const { rows } = await db.pool.query('select count(*)::int as n from messages where relates_to = $1', [
      envelope.id,
    ]);
    assert.equal(rows[0].n, 1);
  });

  it('does not send a recipient another consumer is sending, and takes it over once that claim is stale', async () => {
    const envelope = await stored({ recipients: ['claimed@behoerde.example'] });
    await db.pool.query(
      `insert into deliveries (message_id, recipient, state, attempts) values ($1, 'claimed@behoerde.example', 'sending', 1)`,
      [envelope.id],
    );
    const outcome = await handle(envelope, context());
    assert.equal(outcome.kind, 'retry');
    assert.equal(outcome.kind === 'retry' && outcome.code, 'DELIVERY_DEFERRED');
    assert.equal(relay.messages.filter((m) => m.rcptTo.includes('claimed@behoerde.example')).length, 0);

    // That consumer died: its claim is older than the lease.
    await db.pool.query(`update deliveries set updated_at = now() - interval '2 minutes' where message_id = $1`, [
      envelope.id,
    ]);
    envelopesOf(await handle(envelope, context()));
    assert.equal(relay.messages.filter((m) => m.rcptTo.includes('claimed@behoerde.example')).length, 1);
  });

  it('takes over at once a claim whose owning process died, and leaves a live owner alone', async () => {
    const { openOwnerSession } = await import('../src/owner-session.ts');
    const envelope = await stored({ recipients: ['orphan@behoerde.example'] });
    // Another deliver process claims the recipient, then dies (its database session ends with it).
    const other = await openOwnerSession(db.url, testLogger);
    const id = other.identity();
    assert.ok(id);
    await db.pool.query(
      `insert into deliveries (message_id, recipient, state, attempts, owner_pid, owner_started)
       values ($1, 'orphan@behoerde.example', 'sending', 1, $2, $3::timestamptz)`,
      [envelope.id, id.pid, id.started],
    );
    const whileAlive = await handle(envelope, context()).finally(() => other.close());
    assert.equal(whileAlive.kind, 'retry', 'a live owner keeps its claim');
    // The session is gone as soon as PostgreSQL has seen the connection close.
    for (let i = 0; i < 100; i++) {
      const { rows } = await db.pool.query('select 1 from pg_stat_activity where pid = $1', [id.pid]);
      if (rows.length === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    envelopesOf(await handle(envelope, context()));
    assert.equal(relay.messages.filter((m) => m.rcptTo.includes('orphan@behoerde.example')).length, 1);
  });

  it('publishes a DSN itself when the outcome is a retry for other recipients', async () => {
    const envelope = await stored({ recipients: ['perm-3@behoerde.example', 'never-3@behoerde.example'] });
    published.length = 0;
    const outcome = await handle(envelope, context());
    assert.equal(outcome.kind, 'retry');
    assert.deepEqual(outcome.kind === 'retry' && outcome.envelope?.recipients, ['never-3@behoerde.example']);
    assert.equal(published.length, 1);
    assert.equal(published[0]?.relatesTo, envelope.id);
  });

  it('refuses inbound mail addressed outside the agency domains', async () => {
    const envelope = await stored({ recipients: ['x@firma.example'] });
    const outcome = await handle(envelope, context());
    assert.deepEqual(outcome.kind === 'reject' && outcome.code, 'PLAINTEXT_TO_OUTSIDE');
  });
});
