// The handler's outcomes without a broker: temporary failures retry (never a pass, never plaintext), the last
// attempt stops waiting for revocation, and what encrypt has no step for is parked.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { createPool } from '@smgw/db';
import { type Envelope, newMessageId } from '@smgw/envelope';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { recordMessage } from '@smgw/trace';
import { type EncryptDeps, encryptEnvelope } from '../src/encrypt-envelope.ts';
import {
  createTestPki,
  encryptDeps,
  handlerContext,
  insertCertificate,
  insertTrustAnchor,
  outboundMail,
  type TestPki,
  testEnvelope,
} from './fixtures.ts';

describe('the encrypt handler', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let blobStore: BlobStore;
  let trustedCa: () => Promise<Awaited<ReturnType<TestPki['ca']>>>;

  before(async () => {
    [db, pki] = await Promise.all([createTestDatabase(), createTestPki()]);
    blobStore = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    const ca = await pki.ca('Handler-Test-CA');
    trustedCa = async () => ca;
    await insertTrustAnchor(db.pool, ca.der);
    // Nothing listens on port 9 of this machine: the CRL cannot be fetched.
    await insertCertificate(
      db.pool,
      await pki.leaf(ca, 'crl-weg@buerger.example', { crlUrl: 'http://127.0.0.1:9/ca.crl' }),
    );
  });
  after(async () => {
    await pki?.remove();
    await db?.drop();
  });

  const deps = (overrides: Partial<EncryptDeps> = {}): EncryptDeps =>
    encryptDeps(db.pool, blobStore, { revocationMode: 'require', ...overrides }, 1000);

  async function outbound(to: string): Promise<Envelope> {
    const id = newMessageId();
    const blob = await blobStore.put(Readable.from([outboundMail([to])]), { messageId: id });
    const envelope = testEnvelope(blob, 'outbound', { id, recipients: [to] });
    await recordMessage(db.pool, envelope);
    return envelope;
  }

  it('retries while the revocation of a certificate cannot be fetched, and hands over to the portal on the last attempt', async () => {
    const envelope = await outbound('crl-weg@buerger.example');
    const waiting = await encryptEnvelope(deps(), envelope, handlerContext());
    assert.equal(waiting.kind, 'retry');
    assert.equal(waiting.kind === 'retry' && waiting.code, 'ENCRYPT_REVOCATION_UNAVAILABLE');

    const last = await encryptEnvelope(deps(), envelope, handlerContext({ attempt: 2, lastAttempt: true }));
    assert.equal(last.kind, 'next', JSON.stringify(last));
    const [child] = last.kind === 'next' ? last.envelopes : [];
    assert.deepEqual(child?.itinerary, ['mailbox']);
    assert.equal(child?.verdicts.crypto?.status, 'portal');
  });

  it('sends a redelivered recipient the way it went before: handed to the portal, it stays there though a key came', async () => {
    const envelope = await outbound('spaeter@buerger.example');
    const first = await encryptEnvelope(deps({ revocationMode: 'off' }), envelope, handlerContext());
    assert.deepEqual(first.kind === 'next' && first.envelopes.map((e) => e.itinerary), [['mailbox']]);
    // Its certificate arrives before the broker delivers the envelope again (the first ack was lost).
    await insertCertificate(db.pool, await pki.leaf(await trustedCa(), 'spaeter@buerger.example'));
    const another = await outbound('spaeter@buerger.example');
    const fresh = await encryptEnvelope(deps({ revocationMode: 'off' }), another, handlerContext());
    assert.deepEqual(fresh.kind === 'next' && fresh.envelopes.map((e) => e.itinerary), [['deliver']], 'a key now');

    const again = await encryptEnvelope(
      deps({ revocationMode: 'off' }),
      envelope,
      handlerContext({ redelivered: true }),
    );
    assert.equal(again.kind, 'next', JSON.stringify(again));
    const [child, ...more] = again.kind === 'next' ? again.envelopes : [];
    assert.equal(more.length, 0);
    assert.deepEqual(child?.itinerary, ['mailbox'], 'not also to deliver: mailbox and deliver do not know each other');
  });

  it('does not hand a redelivered recipient to the portal that went encrypted before and has no key now', async () => {
    const certificate = await pki.leaf(await trustedCa(), 'frueher@buerger.example');
    await insertCertificate(db.pool, certificate);
    const envelope = await outbound('frueher@buerger.example');
    const first = await encryptEnvelope(deps({ revocationMode: 'off' }), envelope, handlerContext());
    assert.deepEqual(first.kind === 'next' && first.envelopes.map((e) => e.itinerary), [['deliver']]);
    await db.pool.query('delete from certificates where fingerprint = $1', [certificate.fingerprint]);

    const again = await encryptEnvelope(
      deps({ revocationMode: 'off' }),
      envelope,
      handlerContext({ redelivered: true }),
    );
    assert.equal(again.kind, 'retry', JSON.stringify(again));
    assert.equal(again.kind === 'retry' && again.code, 'ENCRYPT_EARLIER_FORM_UNAVAILABLE');
  });

  it('retries, and sends nothing on, when the database is unreachable', async () => {
    const envelope = await outbound('jemand@buerger.example');
    const closed = createPool({ url: db.url, schema: db.schema, max: 1 });
    await closed.end();
    for (const direction of ['outbound', 'inbound'] as const) {
      const outcome = await encryptEnvelope(
        deps({ pool: closed, blobStore: createBlobStore(closed, { keyStore: createFolderKeyStore(db.keys) }) }),
        { ...envelope, direction },
        handlerContext(),
      );
      assert.equal(outcome.kind, 'retry', direction);
    }
  });

  it('parks an envelope of a direction encrypt has no step for', async () => {
    const envelope = { ...(await outbound('kollege@behoerde.example')), direction: 'internal' as const };
    const outcome = await encryptEnvelope(deps(), envelope, handlerContext());
    assert.equal(outcome.kind, 'reject');
    assert.equal(outcome.kind === 'reject' && outcome.code, 'ENCRYPT_UNEXPECTED_DIRECTION');
  });
});
