// Reuse of recent successful path validations: the same inputs within the time allowed are not validated (nor
// fetched for) again; any other input, a later time past the limit, a notAfter or a revocation answer's nextUpdate,
// and every failure are.
import assert from 'node:assert/strict';
import type { webcrypto } from 'node:crypto';
import { before, describe, it } from 'node:test';
import {
  createPathValidationCache,
  type FetchedRevocation,
  type PathValidationInput,
  type RevocationFetcher,
} from '../src/pkix/index.ts';
import { crlOf, EMAIL_PROTECTION, type Issued, issue, rsaKeys } from './pkix-test-pki.ts';

const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const START = new Date('2026-03-01T12:00:00Z');

describe('createPathValidationCache', () => {
  let keys: webcrypto.CryptoKeyPair;
  let root: Issued;
  let otherRoot: Issued;
  let ca: Issued;
  let leaf: Issued;
  let shortLived: Issued;
  let revoked: Issued;

  before(async () => {
    keys = await rsaKeys();
    root = await issue({ name: 'Cache Test Root', keys, serial: '01', ca: true }, START);
    otherRoot = await issue({ name: 'Another Root', keys, serial: '09', ca: true }, START);
    ca = await issue({ name: 'Cache Test CA', keys, issuer: root, serial: '02', ca: true }, START);
    const leafOptions = { keys, issuer: ca, extendedKeyUsage: [EMAIL_PROTECTION], emails: ['buerger@example.org'] };
    leaf = await issue({ ...leafOptions, name: 'Leaf', serial: '10' }, START);
    shortLived = await issue(
      { ...leafOptions, name: 'Short', serial: '11', notAfter: new Date(START.getTime() + 2 * MINUTE) },
      START,
    );
    revoked = await issue({ ...leafOptions, name: 'Revoked', serial: '12' }, START);
  });

  /** A fetcher that answers with CRLs of the CA and the root valid for `crlHours`, and counts its calls. */
  function countingFetcher(crlHours = 24): RevocationFetcher & { calls: number } {
    const fetcher = {
      calls: 0,
      async fetchFor(): Promise<FetchedRevocation> {
        fetcher.calls++;
        const validity = {
          thisUpdate: new Date(START.getTime() - HOUR),
          nextUpdate: new Date(START.getTime() + crlHours * HOUR),
        };
        return {
          crls: [await crlOf(ca, ['12'], validity), await crlOf(root, [], validity)],
          ocspResponses: [],
          problems: [],
        };
      },
    };
    return fetcher;
  }

  const input = (certificate: Issued, time: Date, more: Partial<PathValidationInput> = {}): PathValidationInput => ({
    endEntity: certificate.der,
    intermediates: [ca.der],
    trustAnchors: [{ certificate: root.der }],
    time,
    purpose: 'emailProtection',
    emailAddress: 'buerger@example.org',
    leafKeyUsage: ['keyEncipherment'],
    revocation: 'require',
    ...more,
  });

  it('validates the same inputs once within the time allowed, and again after it', async () => {
    const cache = createPathValidationCache({ ttlMs: MINUTE });
    const fetcher = countingFetcher();
    const first = await cache.validate(input(leaf, START), fetcher);
    assert.ok(first.ok, first.ok ? '' : first.reason);
    const again = await cache.validate(input(leaf, new Date(START.getTime() + 59_000)), fetcher);
    assert.equal(again, first);
    assert.equal(fetcher.calls, 1);
    const later = await cache.validate(input(leaf, new Date(START.getTime() + MINUTE)), fetcher);
    assert.ok(later.ok);
    assert.equal(fetcher.calls, 2, 'validated again once the time allowed is over');
  });

  it('validates again for another address, key usage, revocation mode, set of anchors or intermediates', async () => {
    const cache = createPathValidationCache({ ttlMs: HOUR });
    const fetcher = countingFetcher();
    assert.ok((await cache.validate(input(leaf, START), fetcher)).ok);
    const other = await cache.validate(input(leaf, START, { emailAddress: 'jemand@example.org' }), fetcher);
    assert.equal(other.ok, false, 'another address is not in the certificate');
    assert.ok((await cache.validate(input(leaf, START, { leafKeyUsage: ['digitalSignature'] }), fetcher)).ok);
    assert.ok((await cache.validate(input(leaf, START, { revocation: 'prefer' }), fetcher)).ok);
    const withoutOurRoot = await cache.validate(
      input(leaf, START, { trustAnchors: [{ certificate: otherRoot.der }] }),
      fetcher,
    );
    assert.equal(withoutOurRoot.ok, false, 'an anchor removed is felt at once');
    const withoutCa = await cache.validate(input(leaf, START, { intermediates: [] }), fetcher);
    assert.equal(withoutCa.ok, false);
    // Only the first and the two other successes fetched (failures before reaching an anchor fetch nothing).
    assert.equal(fetcher.calls, 3);
    await cache.validate(input(leaf, START), fetcher);
    assert.equal(fetcher.calls, 3, 'the first inputs are still reused');
  });

  it('never reuses a success past a certificate’s notAfter or a revocation answer’s nextUpdate', async () => {
    const cache = createPathValidationCache({ ttlMs: DAY });
    const fetcher = countingFetcher();
    assert.ok((await cache.validate(input(shortLived, START), fetcher)).ok);
    const expired = await cache.validate(input(shortLived, new Date(START.getTime() + 3 * MINUTE)), fetcher);
    assert.equal(expired.ok, false, 'validated again, and expired');
    assert.equal(!expired.ok && expired.code, 'EXPIRED');

    const shortCrls = countingFetcher(1);
    assert.ok((await cache.validate(input(leaf, START), shortCrls)).ok);
    await cache.validate(input(leaf, new Date(START.getTime() + 30 * MINUTE)), shortCrls);
    assert.equal(shortCrls.calls, 1);
    await cache.validate(input(leaf, new Date(START.getTime() + HOUR)), shortCrls);
    assert.equal(shortCrls.calls, 2, 'the CRLs it rested on are no longer current');
  });

  it('validates a failure every time, and never reuses a result for an earlier time', async () => {
    const cache = createPathValidationCache({ ttlMs: HOUR });
    const fetcher = countingFetcher();
    for (let i = 0; i < 2; i++) {
      const result = await cache.validate(input(revoked, START), fetcher);
      assert.equal(!result.ok && result.code, 'REVOKED');
    }
    assert.equal(fetcher.calls, 2);
    assert.ok((await cache.validate(input(leaf, START), fetcher)).ok);
    await cache.validate(input(leaf, new Date(START.getTime() - MINUTE)), fetcher);
    assert.equal(fetcher.calls, 4);
  });

  it('validates inputs that bring their own CRLs or OCSP answers every time', async () => {
    const cache = createPathValidationCache({ ttlMs: HOUR });
    const fetcher = countingFetcher();
    const validity = { thisUpdate: new Date(START.getTime() - HOUR), nextUpdate: new Date(START.getTime() + DAY) };
    // The root's CRL at hand; the CA's is fetched, every time.
    const own = { crls: [await crlOf(root, [], validity)] };
    for (let i = 0; i < 2; i++) assert.ok((await cache.validate(input(leaf, START, own), fetcher)).ok);
    assert.equal(fetcher.calls, 2);
  });
});
