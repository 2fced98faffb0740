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

  before(async () => {
    [db, pki] = await Promise.all([createTestDatabase(), createTestPki()]);
    blobStore = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    const ca = await pki.ca('Handler-Test-CA');
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
