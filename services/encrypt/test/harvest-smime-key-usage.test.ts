// Harvesting keeps a usable encryption certificate current: a holder with separate signing and encryption
// certificates (common with qualified signature cards) signs with the one we cannot encrypt to. Stored, it would be
// the newest certificate of the address and replace the encryption certificate, and every later message to the
// holder would go to the portal. A certificate we cannot encrypt to is not stored at all.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { newMessageId } from '@smgw/envelope';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { recordMessage } from '@smgw/trace';
import { chooseForm } from '../src/choose-form.ts';
import { encryptEnvelope } from '../src/encrypt-envelope.ts';
import { lookUpRecipientKeys } from '../src/outbound-keys.ts';
import {
  createTestPki,
  encryptDeps,
  handlerContext,
  insertCertificate,
  insertTrustAnchor,
  type LeafOptions,
  type TestCa,
  type TestPki,
  testEnvelope,
} from './fixtures.ts';

const crlf = (bytes: Buffer): Buffer => Buffer.from(bytes.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');

describe('harvesting keeps a usable encryption certificate current', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let blobStore: BlobStore;
  let ca: TestCa;

  before(async () => {
    [db, pki] = await Promise.all([createTestDatabase(), createTestPki()]);
    blobStore = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    ca = await pki.ca('Harvest-KU-CA');
    await insertTrustAnchor(db.pool, ca.der);
  });
  after(async () => {
    await pki?.remove();
    await db?.drop();
  });

  /** The holder's encryption certificate, and a second certificate of the holder made a second later. */
  async function holderWith(address: string, encryption: LeafOptions, second: LeafOptions) {
    const encrypting = await pki.leaf(ca, address, encryption);
    await insertCertificate(db.pool, encrypting);
    // One second later: the second certificate begins after the encryption certificate.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const signing = await pki.leaf(ca, address, second);
    assert.ok(new X509Certificate(signing.der).validFromDate > new X509Certificate(encrypting.der).validFromDate);
    return { encrypting, signing };
  }

  async function receiveSigned(address: string, signer: { certPath: string; keyPath: string }, name: string) {
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

  async function formFor(address: string) {
    const deps = { ...encryptDeps(db.pool, blobStore), trustAnchors: [ca.der], now: new Date() };
    return chooseForm(await lookUpRecipientKeys(deps, address), false);
  }

  const stored = async (fingerprint: string) =>
    (await db.pool.query('select replaced_by from certificates where fingerprint = $1', [fingerprint])).rows;

  for (const { key, signingUsage } of [
    { key: 'rsa-2048', signingUsage: 'digitalSignature,nonRepudiation' },
    { key: 'p-256', signingUsage: 'digitalSignature' },
  ] as const) {
    it(`does not store a ${key} signing-only certificate from signed mail, and keeps encrypting S/MIME`, async () => {
      const address = `anwalt-${key}@kanzlei.example`;
      const encryptionUsage = key === 'p-256' ? 'keyAgreement' : 'keyEncipherment';
      const { encrypting, signing } = await holderWith(
        address,
        { key, keyUsage: encryptionUsage },
        { key, keyUsage: signingUsage },
      );
      assert.equal((await formFor(address)).form, 'smime', 'S/MIME before the signed mail');

      await receiveSigned(address, signing, `ku-${key}`);

      const choice = await formFor(address);
      assert.equal(
        choice.form,
        'smime',
        `to the portal after a signed mail: ${choice.form === 'portal' && choice.why}`,
      );
      assert.equal(choice.form === 'smime' && choice.fingerprint, encrypting.fingerprint);
      assert.deepEqual(await stored(signing.fingerprint), [], 'the signing certificate is not stored');
      assert.deepEqual(await stored(encrypting.fingerprint), [{ replaced_by: null }]);
    });
  }

  it('lets a newer certificate that can encrypt replace the older one, as before', async () => {
    const address = 'renewed@kanzlei.example';
    const { encrypting, signing } = await holderWith(
      address,
      { key: 'rsa-2048', keyUsage: 'keyEncipherment' },
      { key: 'rsa-2048', keyUsage: 'digitalSignature,keyEncipherment' },
    );
    await receiveSigned(address, signing, 'ku-renewed');
    const choice = await formFor(address);
    assert.equal(choice.form === 'smime' && choice.fingerprint, signing.fingerprint);
    assert.deepEqual(await stored(encrypting.fingerprint), [{ replaced_by: signing.fingerprint }]);
  });
});
