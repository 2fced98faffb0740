// An operator takes a certificate out of use (withdrawCertificate): the encrypt stage's lookup (currentCertificates)
// no longer finds it, the same certificate harvested again from signed mail does not bring it back, a new one for the
// address is harvested as usual, and only an explicit reinstatement (reinstateCertificate) makes it current again.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import {
  addCertificate,
  certificateAudit,
  currentCertificates,
  getCertificate,
  type HarvestedCertificate,
  listCertificates,
  reinstateCertificate,
  storeHarvestedCertificate,
  withdrawCertificate,
} from '../src/certificates.ts';

const DAY = 86_400_000;

describe('withdrawing and reinstating a recipient certificate', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db?.drop();
  });

  /** A certificate's row (its DER is not read here), valid from `daysAgo` days ago for a year. */
  function certificate(address: string, daysAgo: number): HarvestedCertificate {
    const notBefore = new Date(Date.now() - daysAgo * DAY);
    return {
      fingerprint: randomBytes(32).toString('hex'),
      subject: `CN=${address}`,
      addresses: [address],
      issuer: 'CN=Test CA',
      serial: randomBytes(8).toString('hex'),
      notBefore,
      notAfter: new Date(notBefore.getTime() + 365 * DAY),
      der: Buffer.from('not read here'),
      intermediates: [],
      smimeCapabilities: null,
      lastValidation: { ok: true },
    };
  }

  const current = async (address: string) => (await currentCertificates(db.pool, address)).map((c) => c.fingerprint);
  const change = (fingerprint: string, reason: string) => ({
    fingerprint,
    operator: 'k.weber',
    reason,
    at: new Date(),
  });

  it('takes a withdrawn certificate out of the lookup, keeps its row marked, and keeps what it replaced replaced', async () => {
    const address = 'verloren@buerger.example';
    const older = certificate(address, 30);
    const lost = certificate(address, 10);
    await storeHarvestedCertificate(db.pool, older);
    assert.deepEqual((await storeHarvestedCertificate(db.pool, lost)).replaced, [older.fingerprint]);
    assert.deepEqual(await current(address), [lost.fingerprint]);

    const withdrawal = await withdrawCertificate(db.pool, change(lost.fingerprint.toUpperCase(), 'Schlüssel verloren'));
    assert.ok(withdrawal.ok, JSON.stringify(withdrawal));
    assert.equal(withdrawal.certificate.withdrawnBy, 'k.weber');
    assert.equal(withdrawal.certificate.withdrawalReason, 'Schlüssel verloren');
    assert.deepEqual(withdrawal.hadReplaced, [older.fingerprint]);

    assert.deepEqual(await current(address), [], 'no certificate: the encrypt stage goes on to OpenPGP or the portal');
    assert.equal((await getCertificate(db.pool, older.fingerprint))?.replacedBy, lost.fingerprint, 'stays replaced');
    const listed = await listCertificates(db.pool, { address, includeReplaced: true, limit: 10 });
    assert.deepEqual(listed.map((c) => c.fingerprint).sort(), [older.fingerprint, lost.fingerprint].sort());
    assert.deepEqual(await listCertificates(db.pool, { address, includeReplaced: false, limit: 10 }), []);

    const [entry, ...more] = await certificateAudit(db.pool, lost.fingerprint);
    assert.deepEqual(more, []);
    assert.equal(entry?.event, 'certificate.withdrawn');
    assert.equal(entry?.actor, 'k.weber');
    assert.equal(entry?.reason, 'Schlüssel verloren');
    assert.deepEqual(entry?.detail, { wasCurrent: true, replacedBy: null, hadReplaced: [older.fingerprint] });
  });

  it('does not bring a withdrawn certificate back when it is harvested again, and harvests a new one', async () => {
    const address = 'signiert@buerger.example';
    const harvestedByMistake = certificate(address, 5);
    await storeHarvestedCertificate(db.pool, harvestedByMistake);
    assert.ok((await withdrawCertificate(db.pool, change(harvestedByMistake.fingerprint, 'harvested by mistake'))).ok);

    const again = await storeHarvestedCertificate(db.pool, { ...harvestedByMistake, lastValidation: { again: true } });
    assert.deepEqual(again, { created: false, replaced: [] });
    assert.deepEqual(await current(address), [], 'the operator decided: signed mail does not undo it');
    assert.ok((await getCertificate(db.pool, harvestedByMistake.fingerprint))?.withdrawnAt);

    // Older than the withdrawn one: a withdrawn certificate neither makes a new one replaced nor gets replaced.
    const renewed = certificate(address, 20);
    assert.deepEqual(await storeHarvestedCertificate(db.pool, renewed), { created: true, replaced: [] });
    assert.deepEqual(await current(address), [renewed.fingerprint]);
    const withdrawn = await getCertificate(db.pool, harvestedByMistake.fingerprint);
    assert.equal(withdrawn?.replacedBy, null);
    assert.ok(withdrawn?.withdrawnAt);
  });

  it('answers CERTIFICATE_ALREADY_WITHDRAWN for a second withdrawal and CERTIFICATE_NOT_FOUND for none', async () => {
    const twice = certificate('zweimal@buerger.example', 3);
    await storeHarvestedCertificate(db.pool, twice);
    assert.ok((await withdrawCertificate(db.pool, change(twice.fingerprint, 'first'))).ok);
    const second = await withdrawCertificate(db.pool, { ...change(twice.fingerprint, 'second'), operator: 'erika' });
    assert.equal(second.ok, false);
    assert.equal(!second.ok && second.code, 'CERTIFICATE_ALREADY_WITHDRAWN');
    assert.match(!second.ok ? second.message : '', /withdrawn by k\.weber at /);
    assert.equal((await getCertificate(db.pool, twice.fingerprint))?.withdrawalReason, 'first');
    assert.equal((await certificateAudit(db.pool, twice.fingerprint)).length, 1);

    const none = await withdrawCertificate(db.pool, change('0'.repeat(64), 'none'));
    assert.equal(!none.ok && none.code, 'CERTIFICATE_NOT_FOUND');
  });

  it('lets two withdrawals of one certificate at once record it once', async () => {
    const raced = certificate('gleichzeitig@buerger.example', 3);
    await storeHarvestedCertificate(db.pool, raced);
    const results = await Promise.all(
      ['a', 'b', 'c'].map((operator) => withdrawCertificate(db.pool, { ...change(raced.fingerprint, 'x'), operator })),
    );
    assert.equal(results.filter((r) => r.ok).length, 1);
    assert.deepEqual(
      results.filter((r) => !r.ok).map((r) => !r.ok && r.code),
      ['CERTIFICATE_ALREADY_WITHDRAWN', 'CERTIFICATE_ALREADY_WITHDRAWN'],
    );
    assert.equal((await certificateAudit(db.pool, raced.fingerprint)).length, 1);
  });

  it('reinstates the encryption certificate a wrongly stored one replaced, once that one is withdrawn', async () => {
    const address = 'anwalt@kanzlei.example';
    const encryption = certificate(address, 30);
    const signingOnly = certificate(address, 2);
    await addCertificate(db.pool, { ...encryption, source: 'admin' });
    await storeHarvestedCertificate(db.pool, signingOnly);
    assert.deepEqual(await current(address), [signingOnly.fingerprint]);

    const reinstate = (fingerprint: string) =>
      reinstateCertificate(db.pool, {
        ...change(fingerprint, 'the right one'),
        lastValidation: { ok: true, by: 'op' },
      });
    const currentOne = await reinstate(signingOnly.fingerprint);
    assert.equal(!currentOne.ok && currentOne.code, 'CERTIFICATE_CURRENT');
    const superseded = await reinstate(encryption.fingerprint);
    assert.equal(!superseded.ok && superseded.code, 'CERTIFICATE_SUPERSEDED');
    assert.deepEqual(!superseded.ok && superseded.code === 'CERTIFICATE_SUPERSEDED' && superseded.newer, [
      signingOnly.fingerprint,
    ]);
    assert.deepEqual(await current(address), [signingOnly.fingerprint], 'nothing changed');

    assert.ok((await withdrawCertificate(db.pool, change(signingOnly.fingerprint, 'signing only'))).ok);
    assert.deepEqual(await current(address), [], 'the replaced certificate does not come back by itself');
    const reinstated = await reinstate(encryption.fingerprint);
    assert.ok(reinstated.ok, JSON.stringify(reinstated));
    assert.equal(reinstated.certificate.replacedBy, null);
    assert.deepEqual(reinstated.replaced, []);
    assert.deepEqual(await current(address), [encryption.fingerprint]);
    const [entry] = await certificateAudit(db.pool, encryption.fingerprint);
    assert.equal(entry?.event, 'certificate.reinstated');
    assert.deepEqual(entry?.detail, {
      wasWithdrawn: false,
      wasReplacedBy: signingOnly.fingerprint,
      replaced: [],
    });
  });

  it('reinstates a withdrawn certificate under the replacement rule: the older current one becomes replaced', async () => {
    const address = 'zurueck@buerger.example';
    const newer = certificate(address, 5);
    await storeHarvestedCertificate(db.pool, newer);
    assert.ok((await withdrawCertificate(db.pool, change(newer.fingerprint, 'by mistake'))).ok);
    const older = certificate(address, 40);
    await storeHarvestedCertificate(db.pool, older);
    assert.deepEqual(await current(address), [older.fingerprint]);

    const reinstated = await reinstateCertificate(db.pool, {
      ...change(newer.fingerprint, 'withdrawn by mistake'),
      lastValidation: { ok: true },
    });
    assert.ok(reinstated.ok, JSON.stringify(reinstated));
    assert.equal(reinstated.certificate.withdrawnAt, null);
    assert.equal(reinstated.certificate.withdrawnBy, null);
    assert.deepEqual(reinstated.replaced, [older.fingerprint]);
    assert.deepEqual(await current(address), [newer.fingerprint]);
    assert.deepEqual(
      (await certificateAudit(db.pool, newer.fingerprint)).map((e) => [e.event, e.reason]),
      [
        ['certificate.withdrawn', 'by mistake'],
        ['certificate.reinstated', 'withdrawn by mistake'],
      ],
    );
  });
});
