// A certificate an operator withdrew (@smgw/key-directory withdrawCertificate, the admin API's POST
// /certificates/{fingerprint}/withdraw) is no longer used for outbound mail, and signed mail from its holder does not
// bring it back: harvesting does not undo an operator's decision. A new certificate in signed mail is harvested as
// before and used.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { newMessageId } from '@smgw/envelope';
import { getCertificate, withdrawCertificate } from '@smgw/key-directory';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { recordMessage } from '@smgw/trace';
import { chooseForm } from '../src/choose-form.ts';
import { encryptEnvelope } from '../src/encrypt-envelope.ts';
import { lookUpRecipientKeys } from '../src/outbound-keys.ts';
import {
  createTestPki,
  encryptDeps,
  handlerContext,
  insertTrustAnchor,
  type TestCa,
  type TestCertificate,
  type TestPki,
  testEnvelope,
} from './fixtures.ts';

const crlf = (bytes: Buffer): Buffer => Buffer.from(bytes.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');

describe('a withdrawn certificate and harvesting', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let blobStore: BlobStore;
  let ca: TestCa;

  before(async () => {
    [db, pki] = await Promise.all([createTestDatabase(), createTestPki()]);
    blobStore = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    ca = await pki.ca('Withdrawn-CA');
    await insertTrustAnchor(db.pool, ca.der);
  });
  after(async () => {
    await pki?.remove();
    await db?.drop();
  });

  /** Inbound mail from `address`, signed with `signer`, through the encrypt stage (which harvests its certificate). */
  async function receiveSigned(address: string, signer: TestCertificate, name: string) {
    const entity = await pki.file(`${name}.eml`, Buffer.from('Content-Type: text/plain\r\n\r\nMein Antrag.\r\n'));
    const signed = crlf(
      await pki.openssl(['cms', '-sign', '-in', entity, '-signer', signer.certPath, '-inkey', signer.keyPath]),
    );
    const message = Buffer.concat([
      Buffer.from(`From: ${address}\r\nTo: poststelle@behoerde.example\r\nSubject: Antrag\r\n`),
      signed,
    ]);
    const id = newMessageId();
    const blob = await blobStore.put(Readable.from([message]), { messageId: id });
    const envelope = testEnvelope(blob, 'inbound', { id, mailFrom: address });
    await recordMessage(db.pool, envelope);
    assert.equal((await encryptEnvelope(encryptDeps(db.pool, blobStore), envelope, handlerContext())).kind, 'next');
  }

  /** What the encrypt stage would do with outbound mail to `address` now. */
  async function formFor(address: string) {
    const deps = { ...encryptDeps(db.pool, blobStore), trustAnchors: [ca.der], now: new Date() };
    return chooseForm(await lookUpRecipientKeys(deps, address), false);
  }

  it('sends to the portal once the only certificate is withdrawn, and the same certificate in signed mail changes nothing', async () => {
    const address = 'verloren@buerger.example';
    const lost = await pki.leaf(ca, address, { key: 'rsa-2048', keyUsage: 'digitalSignature,keyEncipherment' });
    await receiveSigned(address, lost, 'first');
    const harvested = await formFor(address);
    assert.equal(harvested.form === 'smime' && harvested.fingerprint, lost.fingerprint);

    const withdrawal = await withdrawCertificate(db.pool, {
      fingerprint: lost.fingerprint,
      operator: 'k.weber',
      reason: 'the holder lost the private key',
      at: new Date(),
    });
    assert.ok(withdrawal.ok);
    assert.equal((await formFor(address)).form, 'portal');

    await receiveSigned(address, lost, 'again');
    const choice = await formFor(address);
    assert.equal(choice.form, 'portal', `the withdrawn certificate is used again: ${JSON.stringify(choice)}`);
    assert.equal((await getCertificate(db.pool, lost.fingerprint))?.withdrawnBy, 'k.weber');

    // The holder's new certificate, in their next signed mail, is harvested and used.
    const renewed = await pki.leaf(ca, address, { key: 'rsa-2048', keyUsage: 'digitalSignature,keyEncipherment' });
    await receiveSigned(address, renewed, 'renewed');
    const renewedChoice = await formFor(address);
    assert.equal(renewedChoice.form === 'smime' && renewedChoice.fingerprint, renewed.fingerprint);
    const stillWithdrawn = await getCertificate(db.pool, lost.fingerprint);
    assert.ok(stillWithdrawn?.withdrawnAt);
    assert.equal(stillWithdrawn?.replacedBy, null);
  });
});
