// Keys a portal user brought (/schluessel, source 'portal') as the encrypt stage sees them: before, the recipient goes
// to the portal; with the certificate taken through acceptRecipientCertificate, S/MIME; with an OpenPGP key, the
// portal while it is pending and OpenPGP once an operator approved it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRevocationFetcher, inspectPublicKey, NOTHING_ALLOWED, readCertificateUpload } from '@smgw/crypto';
import { acceptRecipientCertificate, addPgpKey, approvePgpKey, trustAnchorCertificates } from '@smgw/key-directory';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { chooseForm } from '../src/choose-form.ts';
import { lookUpRecipientKeys } from '../src/outbound-keys.ts';
import {
  createGpgHome,
  createTestPki,
  type GpgHome,
  insertTrustAnchor,
  type TestCa,
  type TestPki,
} from './fixtures.ts';

describe('keys brought on the portal, as encrypt routes', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let gpg: GpgHome;
  let ca: TestCa;
  const fetcher = createRevocationFetcher({ now: () => new Date(), allow: NOTHING_ALLOWED });

  before(async () => {
    [db, pki, gpg] = await Promise.all([createTestDatabase(), createTestPki(), createGpgHome()]);
    ca = await pki.ca('Portal-CA');
    await insertTrustAnchor(db.pool, ca.der);
  });
  after(async () => {
    await gpg?.close();
    await pki?.remove();
    await db?.drop();
  });

  async function formOf(recipient: string) {
    const now = new Date();
    const keys = await lookUpRecipientKeys(
      { pool: db.pool, trustAnchors: await trustAnchorCertificates(db.pool), fetcher, revocationMode: 'off', now },
      recipient,
    );
    return chooseForm(keys, false).form;
  }

  it('encrypts with the certificate a portal user brought instead of using the portal', async () => {
    const address = 'zertifikat@buerger.example';
    assert.equal(await formOf(address), 'portal');
    const leaf = await pki.leaf(ca, address);
    const accepted = await acceptRecipientCertificate(db.pool, {
      chain: readCertificateUpload(leaf.der),
      address,
      source: 'portal',
      by: 'portal:test',
      now: new Date(),
      revocationMode: 'off',
      revocationFetcher: fetcher,
    });
    assert.equal(accepted.ok, true);
    assert.equal(await formOf(address), 'smime');
  });

  it('keeps using the portal while the portal user’s OpenPGP key is pending, and uses the key once approved', async () => {
    const address = 'pgp@buerger.example';
    const info = await inspectPublicKey(await gpg.exportPublic(await gpg.generateKey(address)));
    await addPgpKey(db.pool, {
      fingerprint: info.fingerprint,
      armored: info.armored,
      addresses: [address],
      algorithm: info.algorithm,
      expiresAt: info.expires,
      source: 'portal',
    });
    assert.equal(await formOf(address), 'portal');
    await approvePgpKey(db.pool, {
      fingerprint: info.fingerprint,
      operator: 'ops',
      at: new Date(),
    });
    assert.equal(await formOf(address), 'pgp');
  });
});
