// A redelivered inbound envelope (encrypt published its children, then lost the ack) names the blobs its first
// handling made. Each decryption is a new blob with a keyed digest of its own, and scan keeps one quarantine entry per
// (message, blob digest, direction): a second blob of the same infected message was a second entry, and its postmaster
// got a second notice.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { type Envelope, newMessageId } from '@smgw/envelope';
import { connectMq, type HandlerContext, type Mq, next, type StageConsumer } from '@smgw/mq';
import {
  createTestDatabase,
  EICAR,
  startTestGateway,
  type TestDatabase,
  type TestGateway,
  waitFor,
} from '@smgw/testing';
import { recordMessage } from '@smgw/trace';
import { encryptEnvelope } from '../src/encrypt-envelope.ts';
import {
  createTestPki,
  encryptDeps,
  handlerContext,
  insertAgencyKey,
  opensslEncrypted,
  type TestCertificate,
  type TestPki,
  testEnvelope,
  testLogger,
} from './fixtures.ts';

const SECRET = 'Bescheid fuer Amt B: Aktenzeichen 4711-B';
const INTERNAL = ['amt-a.example', 'amt-b.example'];

/** What a child envelope is for the stages after encrypt: its recipients, its blob and its crypto status. */
const shapeOf = (children: Envelope[]) =>
  children.map((c) => ({ recipients: c.recipients, blob: c.blob, crypto: c.verdicts.crypto?.status }));

describe('a redelivered inbound envelope at encrypt', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let blobStore: BlobStore;
  let agencyB: TestCertificate;

  before(async () => {
    [db, pki] = await Promise.all([createTestDatabase(), createTestPki()]);
    blobStore = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    const ca = await pki.ca('Redelivered-Inbound-CA');
    const agencyA = await pki.leaf(ca, 'stelle@amt-a.example', { key: 'rsa-2048' });
    agencyB = await pki.leaf(ca, 'stelle@amt-b.example', { key: 'rsa-2048' });
    await insertAgencyKey(db.pool, 'stelle@amt-a.example', { kind: 'smime', certificate: agencyA });
    await insertAgencyKey(db.pool, 'stelle@amt-b.example', { kind: 'smime', certificate: agencyB });
  });
  after(async () => {
    await pki?.remove();
    await db?.drop();
  });

  /** `raw` arriving from the internet for `recipients`, stored and recorded as ingest does. */
  async function arrived(raw: Buffer, recipients: string[]): Promise<Envelope> {
    const id = newMessageId();
    const blob = await blobStore.put(Readable.from([raw]), { messageId: id });
    const envelope = testEnvelope(blob, 'inbound', { id, mailFrom: 'absender@extern.example', recipients });
    await recordMessage(db.pool, envelope);
    return envelope;
  }

  /** A message to both agencies that only B's key opens: B gets it decrypted, A as it came. */
  async function encryptedToB(): Promise<Envelope> {
    const entity = Buffer.from(`Content-Type: text/plain; charset=utf-8\r\n\r\n${SECRET}\r\n`);
    const recipients = ['stelle@amt-a.example', 'stelle@amt-b.example'];
    const sent = await opensslEncrypted(pki, agencyB, entity, {
      to: recipients.join(', '),
      subject: 'Antrag',
      file: newMessageId(),
    });
    return arrived(sent, recipients);
  }

  async function handle(
    envelope: Envelope,
    context: Partial<HandlerContext> = {},
    store: BlobStore = blobStore,
  ): Promise<Envelope[]> {
    const deps = encryptDeps(db.pool, store, { internalDomains: INTERNAL });
    const outcome = await encryptEnvelope(deps, envelope, handlerContext(context));
    assert.equal(outcome.kind, 'next', JSON.stringify(outcome));
    return outcome.kind === 'next' ? outcome.envelopes : [];
  }

  async function encryptEvents(id: string): Promise<string[]> {
    const { rows } = await db.pool.query<{ event: string; recipient: string | null }>(
      `select event, recipient from message_events where message_id = $1 and stage = 'encrypt' order by id`,
      [id],
    );
    return rows.map((r) => `${r.event} ${r.recipient ?? '-'}`);
  }

  it('names the blobs of its first handling, the decrypted one and the one left closed, and records nothing twice', async () => {
    const envelope = await encryptedToB();
    const first = await handle(envelope);
    assert.deepEqual(
      first.map((c) => c.verdicts.crypto?.status),
      ['not-decrypted', 'decrypted'],
    );
    const events = await encryptEvents(envelope.id);
    const again = await handle(envelope, { redelivered: true });
    assert.deepEqual(shapeOf(again), shapeOf(first));
    assert.deepEqual(again, first, 'the same children, verdicts and all');
    assert.deepEqual(await encryptEvents(envelope.id), events);
  });

  it('passes on the blobs of the first to record when two copies are handled at once', async () => {
    // The broker handed the envelope again while its first consumer still worked (that consumer's channel was lost):
    // both copies look for an earlier outcome before either has one, and both decrypt.
    const envelope = await encryptedToB();
    let firstPuts = 0;
    let bothStarted: () => void = () => {};
    const started = new Promise<void>((resolve) => {
      bothStarted = resolve;
    });
    const puts = new WeakSet<object>();
    const heldUntilBothPut = (): BlobStore => {
      const mine = {};
      return {
        ...blobStore,
        put: async (source, options) => {
          const blob = await blobStore.put(source, options);
          if (!puts.has(mine)) {
            puts.add(mine);
            if (++firstPuts === 2) bothStarted();
            await started;
          }
          return blob;
        },
      };
    };
    const [first, second] = await Promise.all([
      handle(envelope, {}, heldUntilBothPut()),
      handle(envelope, { redelivered: true }, heldUntilBothPut()),
    ]);
    assert.deepEqual(shapeOf(second ?? []), shapeOf(first ?? []), 'both pass on the same blobs');
    assert.deepEqual((await encryptEvents(envelope.id)).sort(), [
      'message.decrypted stelle@amt-b.example',
      'message.not-decrypted stelle@amt-a.example',
    ]);
  });

  it('names them too when it comes back as a retry of an earlier attempt', async () => {
    // A retry published while the ack was lost: the broker hands the first copy again, which publishes the children,
    // and the retry arrives later as a new delivery (attempt 1, not flagged as redelivered).
    const envelope = await encryptedToB();
    const first = await handle(envelope);
    const again = await handle({ ...envelope, attempt: 1 }, { attempt: 1 });
    assert.deepEqual(shapeOf(again), shapeOf(first));
  });

  it('names the one blob of a message no recipient could open (one event for the whole message)', async () => {
    const envelope = await encryptedToB();
    const closed = { ...envelope, recipients: ['andere@amt-a.example', 'dritte@amt-a.example'] };
    const first = await handle(closed);
    assert.deepEqual(
      first.map((c) => [c.recipients, c.verdicts.crypto?.status]),
      [[['andere@amt-a.example', 'dritte@amt-a.example'], 'not-decrypted']],
    );
    assert.deepEqual(await handle(closed, { redelivered: true }), first);
  });

  it('names the blob a plain message got when our own fields were taken out of it', async () => {
    const envelope = await arrived(
      Buffer.from('From: absender@extern.example\r\nX-SMGW-Decrypted: smime\r\nSubject: Hallo\r\n\r\nText\r\n'),
      ['stelle@amt-a.example'],
    );
    const first = await handle(envelope);
    assert.notEqual(first[0]?.blob.ref, envelope.blob.ref);
    assert.ok(!(await blobStore.readAll(first[0]?.blob.ref ?? '')).includes('X-SMGW-Decrypted'));
    const again = await handle(envelope, { redelivered: true });
    assert.deepEqual(shapeOf(again), shapeOf(first));
  });

  it('decrypts again when a blob of the first handling is gone, and the next redelivery names the new ones', async () => {
    const envelope = await encryptedToB();
    const first = await handle(envelope);
    const decrypted = first.find((c) => c.verdicts.crypto?.status === 'decrypted');
    await db.pool.query('delete from blobs where id = $1', [decrypted?.blob.ref]);
    const second = await handle(envelope, { redelivered: true });
    const opened = second.find((c) => c.verdicts.crypto?.status === 'decrypted');
    assert.ok(opened && opened.blob.ref !== decrypted?.blob.ref);
    assert.ok((await blobStore.readAll(opened.blob.ref)).includes(SECRET));
    const third = await handle(envelope, { redelivered: true });
    assert.deepEqual(shapeOf(third), shapeOf(second));
  });
});

describe('a virus that came encrypted, its encrypt envelope redelivered, at the real scan', () => {
  let gateway: TestGateway;
  let pki: TestPki;
  let mq: Mq;
  let notices: Envelope[];
  let deliverConsumer: StageConsumer;
  let blobStore: BlobStore;
  let agency: TestCertificate;

  before(async () => {
    [gateway, pki] = await Promise.all([
      startTestGateway({ services: ['scan'], env: { SMGW_INTERNAL_DOMAINS: 'behoerde.example' } }),
      createTestPki(),
    ]);
    const ca = await pki.ca('Redelivered-Virus-CA');
    agency = await pki.leaf(ca, 'stelle@behoerde.example', { key: 'rsa-2048' });
    await insertAgencyKey(
      gateway.db.pool,
      'stelle@behoerde.example',
      { kind: 'smime', certificate: agency },
      gateway.masterKey,
    );
    blobStore = createBlobStore(gateway.db.pool, {
      keyStore: createFolderKeyStore(gateway.keys),
      directory: gateway.blobDir,
    });
    mq = await connectMq({ url: gateway.vhost.url, logger: testLogger, connectionName: 'redelivered-inbound-test' });
    await mq.declareTopology({ deliver: [500] });
    // deliver's place: the notices scan sends on are taken off its queue here.
    notices = [];
    deliverConsumer = await mq.consume(
      'deliver',
      async (envelope) => {
        notices.push(envelope);
        return next();
      },
      { retryLadder: [500], prefetch: 4, onParked: async () => {} },
    );
  });
  after(async () => {
    await deliverConsumer?.drain();
    await mq?.close();
    await gateway?.close();
    await pki?.remove();
  });

  it('is quarantined once, and its postmaster told once', async () => {
    const inner = Buffer.from(
      'Content-Type: application/octet-stream; name="rechnung.com"\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
        `${EICAR.toString('base64')}\r\n`,
    );
    const sent = await opensslEncrypted(pki, agency, inner, {
      to: 'stelle@behoerde.example',
      subject: 'Rechnung',
      file: newMessageId(),
    });
    const id = newMessageId();
    const blob = await blobStore.put(Readable.from([sent]), { messageId: id });
    const envelope = testEnvelope(blob, 'inbound', {
      id,
      recipients: ['stelle@behoerde.example'],
      itinerary: ['encrypt', 'scan', 'deliver'],
    });
    await recordMessage(gateway.db.pool, envelope);
    const deps = encryptDeps(gateway.db.pool, blobStore, { masterKey: gateway.masterKey });

    // The first handling publishes its child and dies before the ack; the broker hands the envelope out again.
    for (const context of [handlerContext(), handlerContext({ redelivered: true })]) {
      const outcome = await encryptEnvelope(deps, envelope, context);
      assert.equal(outcome.kind, 'next', JSON.stringify(outcome));
      if (outcome.kind === 'next') for (const child of outcome.envelopes) await mq.publish(child);
    }

    // scan sends a notice on for each child it quarantines (the one stored with the entry when it has one already).
    await waitFor('scan done with both children', () => notices.length >= 2);
    const entries = await gateway.db.pool.query('select id from quarantine where message_id = $1', [id]);
    assert.equal(entries.rowCount, 1, 'one quarantine entry for the message');
    assert.deepEqual(
      notices.map((n) => [n.relatesTo, n.recipients]),
      [
        [id, ['postmaster@behoerde.example']],
        [id, ['postmaster@behoerde.example']],
      ],
    );
    assert.equal(new Set(notices.map((n) => n.id)).size, 1, 'one notice, published again under its own id');
  });
});
