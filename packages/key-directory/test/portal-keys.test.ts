// What a portal user uploaded for their address goes with their mailbox (deletePortalKeys), and nothing else: an
// operator's, a harvested or an imported key for the same address stays, so does a portal upload of another address,
// an upload an operator imported afterwards (it is theirs), and an older certificate the deleted one had replaced stays
// replaced.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { withTransaction } from '@smgw/db';
import { createTestDatabase, type TestDatabase, waitFor } from '@smgw/testing';
import {
  addCertificate,
  type CertificateSource,
  currentCertificates,
  withdrawCertificate,
} from '../src/certificates.ts';
import { addPgpKey, approvePgpKey, type PgpKeySource, pgpKeysFor } from '../src/pgp-keys.ts';
import { deletePortalKeys } from '../src/portal-keys.ts';

const DAY = 86_400_000;

describe('deleting the keys a portal user uploaded', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db?.drop();
  });

  /** A certificate row (its DER is not read here), valid from `daysAgo` days ago for a year. */
  async function certificate(
    addresses: string[],
    source: CertificateSource,
    daysAgo: number,
    fingerprint = randomBytes(32).toString('hex'),
  ): Promise<string> {
    await storeCertificate(addresses, source, daysAgo, fingerprint);
    return fingerprint;
  }

  function storeCertificate(addresses: string[], source: CertificateSource, daysAgo: number, fingerprint: string) {
    const notBefore = new Date(Date.now() - daysAgo * DAY);
    return addCertificate(db.pool, {
      fingerprint,
      subject: `CN=${addresses[0]}`,
      addresses,
      issuer: 'CN=Test CA',
      serial: randomBytes(8).toString('hex'),
      notBefore,
      notAfter: new Date(notBefore.getTime() + 365 * DAY),
      der: Buffer.from('not read here'),
      intermediates: [],
      smimeCapabilities: null,
      source,
      lastValidation: { ok: true },
    });
  }

  async function pgpKey(addresses: string[], source: PgpKeySource): Promise<string> {
    const fingerprint = randomBytes(20).toString('hex').toUpperCase();
    await storePgpKey(addresses, source, fingerprint);
    return fingerprint;
  }

  const storePgpKey = (addresses: string[], source: PgpKeySource, fingerprint: string) =>
    addPgpKey(db.pool, {
      fingerprint,
      armored: 'not read here',
      addresses,
      algorithm: 'eddsaLegacy',
      expiresAt: null,
      source,
    });

  const certificateRow = async (fingerprint: string) =>
    (await db.pool.query('select replaced_by from certificates where fingerprint = $1', [fingerprint])).rows[0];
  const pgpKeyExists = async (fingerprint: string) =>
    ((await db.pool.query('select 1 from pgp_keys where fingerprint = $1', [fingerprint])).rowCount ?? 0) > 0;

  it("deletes the address's portal certificates and OpenPGP keys, current or not, and says which", async () => {
    const address = 'buergerin@post.example';
    const older = await certificate([address], 'portal', 20);
    const newer = await certificate([address], 'portal', 10);
    const pending = await pgpKey([address], 'portal');
    const approved = await pgpKey([address], 'portal');
    assert.ok((await approvePgpKey(db.pool, { fingerprint: approved, operator: 'ops', at: new Date() })).ok);

    const deleted = await withTransaction(db.pool, (client) => deletePortalKeys(client, address.toUpperCase()));
    assert.deepEqual(deleted, { certificates: [older, newer].sort(), pgpKeys: [pending, approved].sort() });
    assert.deepEqual(await currentCertificates(db.pool, address), []);
    assert.deepEqual(await pgpKeysFor(db.pool, address), []);
    assert.equal(await certificateRow(older), undefined, 'the replaced one too');
  });

  it("keeps an operator's, a harvested and an imported key for the same address, and other addresses' uploads", async () => {
    const address = 'nachbar@post.example';
    const admin = await certificate([address], 'admin', 30);
    const harvested = await certificate([address, 'zweite@post.example'], 'harvested', 40);
    const imported = await pgpKey([address], 'imported');
    const harvestedKey = await pgpKey([address], 'harvested');
    const othersCertificate = await certificate(['andere@post.example'], 'portal', 5);
    const othersKey = await pgpKey(['andere@post.example'], 'portal');
    const own = await certificate([address], 'portal', 1);

    const deleted = await withTransaction(db.pool, (client) => deletePortalKeys(client, address));
    assert.deepEqual(deleted, { certificates: [own], pgpKeys: [] });
    for (const fingerprint of [admin, harvested, othersCertificate]) assert.ok(await certificateRow(fingerprint));
    for (const fingerprint of [imported, harvestedKey, othersKey]) assert.ok(await pgpKeyExists(fingerprint));
  });

  it('leaves an older certificate the deleted one replaced replaced: it does not encrypt the mail again', async () => {
    const address = 'erneuert@post.example';
    const harvested = await certificate([address], 'harvested', 300);
    const uploaded = await certificate([address], 'portal', 10);
    assert.equal((await certificateRow(harvested))?.replaced_by, uploaded);

    await withTransaction(db.pool, (client) => deletePortalKeys(client, address));
    assert.equal(await certificateRow(uploaded), undefined);
    assert.equal((await certificateRow(harvested))?.replaced_by, uploaded, 'still replaced, by a certificate gone');
    assert.deepEqual(await currentCertificates(db.pool, address), []);
    // A renewal after that becomes current as any other.
    const renewed = await certificate([address], 'harvested', 1);
    assert.deepEqual(
      (await currentCertificates(db.pool, address)).map((c) => c.fingerprint),
      [renewed],
    );
  });

  it('deletes a portal certificate stored for more addresses (before the portal stored one address) whole', async () => {
    const address = 'frueher@post.example';
    const wide = await certificate([address, 'amt@behoerde.example'], 'portal', 10);
    const deleted = await withTransaction(db.pool, (client) => deletePortalKeys(client, address));
    assert.deepEqual(deleted.certificates, [wide]);
    assert.deepEqual(await currentCertificates(db.pool, 'amt@behoerde.example'), []);
  });

  it("makes an uploaded certificate and OpenPGP key an operator imports the operator's: they stay when the mailbox goes", async () => {
    const address = 'uebernommen@post.example';
    const other = 'amt@behoerde.example';
    const uploadedCertificate = await certificate([address], 'portal', 10);
    const uploadedKey = await pgpKey([address], 'portal');
    assert.ok((await approvePgpKey(db.pool, { fingerprint: uploadedKey, operator: 'ops', at: new Date() })).ok);

    // The operator imports the same certificate and key (which also name another address) through the admin API.
    const certificateImport = await storeCertificate([address, other], 'admin', 10, uploadedCertificate);
    assert.equal(certificateImport.created, false);
    assert.equal(certificateImport.takenOverFrom, 'portal');
    assert.equal(certificateImport.certificate.source, 'admin');
    assert.deepEqual(certificateImport.certificate.addresses, [address], 'stored for the same address as before');
    const keyImport = await storePgpKey([address, other], 'imported', uploadedKey);
    assert.equal(keyImport.created, false);
    assert.equal(keyImport.takenOverFrom, 'portal');
    assert.equal(keyImport.key.source, 'imported');
    assert.deepEqual(keyImport.key.addresses, [address]);
    assert.deepEqual(keyImport.key.approvedAddresses, [address], 'its approval as it was');

    const deleted = await withTransaction(db.pool, (client) => deletePortalKeys(client, address));
    assert.deepEqual(deleted, { certificates: [], pgpKeys: [] });
    assert.deepEqual(
      (await currentCertificates(db.pool, address)).map((c) => c.fingerprint),
      [uploadedCertificate],
    );
    assert.deepEqual(
      (await pgpKeysFor(db.pool, address)).map((k) => [k.fingerprint, k.state]),
      [[uploadedKey, 'approved']],
    );
    assert.deepEqual(await currentCertificates(db.pool, other), []);

    // Imported again, they stay the operator's and say nothing was taken over.
    assert.equal((await storePgpKey([address], 'imported', uploadedKey)).takenOverFrom, undefined);
    assert.equal((await storeCertificate([address], 'admin', 10, uploadedCertificate)).takenOverFrom, undefined);
  });

  it('leaves an upload a portal user brings again, and a certificate an operator withdrew, as they are', async () => {
    const address = 'wieder@post.example';
    const harvestedKey = await pgpKey([address], 'harvested');
    const again = await storePgpKey([address], 'portal', harvestedKey);
    assert.equal(again.key.source, 'harvested', 'a portal upload takes nothing over');
    assert.equal(again.takenOverFrom, undefined);

    const uploaded = await certificate([address], 'portal', 10);
    assert.ok(
      (await withdrawCertificate(db.pool, { fingerprint: uploaded, operator: 'ops', reason: 'lost', at: new Date() }))
        .ok,
    );
    // POST /certificates answers 409 for a withdrawn certificate: the operator's refused import takes nothing over.
    const refused = await storeCertificate([address], 'admin', 10, uploaded);
    assert.equal(refused.certificate.source, 'portal');
    assert.equal(refused.takenOverFrom, undefined);
  });

  it('approving an OpenPGP key deleted meanwhile finds no key and changes nothing', async () => {
    const address = `spaet-${randomBytes(4).toString('hex')}@post.example`;
    const old = await pgpKey([address], 'imported');
    assert.ok((await approvePgpKey(db.pool, { fingerprint: old, operator: 'ops', at: new Date() })).ok);
    const uploaded = await pgpKey([address], 'portal');
    // The approval has read the key and waits for the address while the mailbox is being deleted.
    const deleting = await db.pool.connect();
    try {
      await deleting.query('begin');
      await deletePortalKeys(deleting, address);
      const approval = approvePgpKey(db.pool, {
        fingerprint: uploaded,
        addresses: [address],
        operator: 'ops',
        at: new Date(),
      });
      await waitFor('the approval to wait for the address', async () => {
        const { rows } = await db.pool.query(
          `select 1 from pg_locks where locktype = 'advisory' and not granted
              and objid::bigint = hashtext($1)::bigint & 4294967295`,
          [`pgp-approvals:${address}`],
        );
        return rows.length > 0;
      });
      await deleting.query('commit');
      const outcome = await approval;
      assert.equal(outcome.ok, false);
      assert.equal(!outcome.ok && outcome.code, 'PGP_KEY_NOT_FOUND');
    } finally {
      deleting.release();
    }
    assert.deepEqual(
      (await pgpKeysFor(db.pool, address)).map((k) => [k.fingerprint, k.state]),
      [[old, 'approved']],
      'the older key keeps its approval',
    );
  });
});
