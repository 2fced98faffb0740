// validateCertificatePath with certificates, CRLs and OCSP responses generated in the test: every refusal
// comes with its stable code.
import assert from 'node:assert/strict';
import type { webcrypto } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { type PathValidationInput, type PathValidationResult, validateCertificatePath } from '../src/pkix/index.ts';
import {
  crlOf,
  EMAIL_PROTECTION,
  type Issued,
  issue,
  OCSP_SIGNING_EKU,
  ocspResponseFor,
  rsaKeys,
  SERVER_AUTH,
} from './pkix-test-pki.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
const ADDRESS = 'Alice.Agent@agency.example';

function refusedWith(result: PathValidationResult, code: string): void {
  assert.equal(result.ok, false, 'expected a refusal');
  assert.ok(!result.ok);
  assert.equal(result.code, code, result.reason);
  assert.ok(result.reason.length > 10);
}

describe('validateCertificatePath', () => {
  let keys: webcrypto.CryptoKeyPair;
  let root: Issued;
  let intermediate: Issued;
  let leaf: Issued;
  let goodCrls: Uint8Array[];

  before(async () => {
    keys = await rsaKeys();
    root = await issue({ name: 'SMGW Test Root', keys, serial: '01', ca: true }, NOW);
    intermediate = await issue(
      { name: 'SMGW Test Mail CA', keys, issuer: root, serial: '02', ca: true, pathLength: 0 },
      NOW,
    );
    leaf = await issue(
      {
        name: 'Alice Agent',
        keys,
        issuer: intermediate,
        serial: '10',
        extendedKeyUsage: [EMAIL_PROTECTION],
        emails: [ADDRESS],
      },
      NOW,
    );
    goodCrls = [
      await crlOf(root, [], {
        thisUpdate: new Date(NOW.getTime() - DAY),
        nextUpdate: new Date(NOW.getTime() + 7 * DAY),
      }),
      await crlOf(intermediate, ['77'], {
        thisUpdate: new Date(NOW.getTime() - DAY),
        nextUpdate: new Date(NOW.getTime() + 7 * DAY),
      }),
    ];
  });

  function input(endEntity: Issued, overrides: Partial<PathValidationInput> = {}): PathValidationInput {
    return {
      endEntity: endEntity.der,
      intermediates: [intermediate.der],
      trustAnchors: [{ certificate: root.der }],
      time: NOW,
      purpose: 'emailProtection',
      emailAddress: ADDRESS,
      crls: goodCrls,
      ...overrides,
    };
  }

  async function leafWith(options: Partial<Parameters<typeof issue>[0]>): Promise<Issued> {
    return issue(
      {
        name: 'Alice Agent',
        keys,
        issuer: intermediate,
        serial: '11',
        extendedKeyUsage: [EMAIL_PROTECTION],
        emails: [ADDRESS],
        ...options,
      },
      NOW,
    );
  }

  it('accepts a valid S/MIME certificate for its address and says how revocation was checked', () => {
    const result = validateCertificatePath(input(leaf));
    assert.ok(result.ok, result.ok ? '' : result.reason);
    assert.equal(result.path.length, 3);
    assert.deepEqual(result.revocation, ['good-crl', 'good-crl']);
    assert.deepEqual(result.policies, []);
  });

  it('compares the domain of the address case-insensitively', () => {
    assert.ok(validateCertificatePath(input(leaf, { emailAddress: 'Alice.Agent@AGENCY.example' })).ok);
  });

  it('refuses an expired certificate with EXPIRED', async () => {
    const expired = await leafWith({
      notBefore: new Date(NOW.getTime() - 400 * DAY),
      notAfter: new Date(NOW.getTime() - DAY),
    });
    const result = validateCertificatePath(input(expired));
    refusedWith(result, 'EXPIRED');
    assert.equal(!result.ok && result.certificateIndex, 0);
  });

  it('refuses a certificate that is not yet valid with NOT_YET_VALID', async () => {
    const early = await leafWith({
      notBefore: new Date(NOW.getTime() + DAY),
      notAfter: new Date(NOW.getTime() + 400 * DAY),
    });
    refusedWith(validateCertificatePath(input(early)), 'NOT_YET_VALID');
  });

  it('refuses a certificate without emailProtection in its extendedKeyUsage with EXTENDED_KEY_USAGE', async () => {
    const tlsOnly = await leafWith({ extendedKeyUsage: [SERVER_AUTH] });
    refusedWith(validateCertificatePath(input(tlsOnly)), 'EXTENDED_KEY_USAGE');
    assert.ok(validateCertificatePath(input(tlsOnly, { purpose: 'any' })).ok);
  });

  it('refuses a certificate from a CA that is not a trust anchor with UNTRUSTED_ROOT', async () => {
    const otherRoot = await issue({ name: 'Somebody Else Root', keys, serial: '05', ca: true }, NOW);
    const stranger = await issue(
      {
        name: 'Mallory',
        keys,
        issuer: otherRoot,
        serial: '06',
        extendedKeyUsage: [EMAIL_PROTECTION],
        emails: [ADDRESS],
      },
      NOW,
    );
    refusedWith(
      validateCertificatePath(input(stranger, { intermediates: [intermediate.der, otherRoot.der] })),
      'UNTRUSTED_ROOT',
    );
  });

  it('gives up, instead of trying every order, on a bag of certificates that issue each other under one name', async () => {
    // 14 CAs all named "Loop CA" and issued by "Loop CA": without a bound on the chains tried the builder walks
    // 14!/3! orders of them (hours); a stranger's signature can carry such a bag.
    const loopKeys = await rsaKeys();
    const loop: Issued[] = [];
    for (let i = 0; i < 14; i++) {
      loop.push(await issue({ name: 'Loop CA', keys: loopKeys, serial: (0x40 + i).toString(16), ca: true }, NOW));
    }
    const looped = await issue(
      {
        name: 'Mallory',
        keys: loopKeys,
        issuer: loop[0] as Issued,
        serial: '60',
        extendedKeyUsage: [EMAIL_PROTECTION],
        emails: [ADDRESS],
      },
      NOW,
    );
    refusedWith(validateCertificatePath(input(looped, { intermediates: loop.map((c) => c.der) })), 'NO_PATH');
    // Beside the real intermediate, the same bag does not hide the real path.
    const result = validateCertificatePath(
      input(leaf, { intermediates: [...loop.map((c) => c.der), intermediate.der] }),
    );
    assert.ok(result.ok, result.ok ? '' : result.reason);
  });

  it('refuses a certificate whose issuer is missing with NO_PATH', () => {
    refusedWith(validateCertificatePath(input(leaf, { intermediates: [] })), 'NO_PATH');
  });

  it('refuses a SHA-1 signed certificate with WEAK_SIGNATURE', async () => {
    const sha1 = await leafWith({ signatureHash: 'SHA-1' });
    refusedWith(validateCertificatePath(input(sha1)), 'WEAK_SIGNATURE');
  });

  it('refuses an RSA 1024 key with WEAK_KEY', async () => {
    const small = await leafWith({ keys: await rsaKeys(1024) });
    refusedWith(validateCertificatePath(input(small)), 'WEAK_KEY');
  });

  it('refuses a certificate not issued for the address with ADDRESS_NOT_IN_CERTIFICATE', () => {
    refusedWith(
      validateCertificatePath(input(leaf, { emailAddress: 'bob@agency.example' })),
      'ADDRESS_NOT_IN_CERTIFICATE',
    );
    // RFC 5280 §7.5: the local part is compared exactly.
    refusedWith(
      validateCertificatePath(input(leaf, { emailAddress: 'alice.agent@agency.example' })),
      'ADDRESS_NOT_IN_CERTIFICATE',
    );
  });

  it('accepts the emailAddress attribute of the subject when the certificate has no rfc822Name', async () => {
    const legacy = await leafWith({ subjectEmail: ADDRESS, emails: undefined });
    assert.ok(validateCertificatePath(input(legacy)).ok);
  });

  it('refuses a certificate whose keyUsage allows none of the required uses with KEY_USAGE', async () => {
    const signOnly = await leafWith({ keyUsage: ['digitalSignature'] });
    refusedWith(validateCertificatePath(input(signOnly, { leafKeyUsage: ['keyEncipherment'] })), 'KEY_USAGE');
    assert.ok(validateCertificatePath(input(signOnly, { leafKeyUsage: ['digitalSignature'] })).ok);
  });

  it('refuses a path through a CA beyond its pathLenConstraint with PATH_LENGTH_EXCEEDED', async () => {
    const subCa = await issue({ name: 'SMGW Test Sub CA', keys, issuer: intermediate, serial: '20', ca: true }, NOW);
    const deep = await issue(
      { name: 'Deep Leaf', keys, issuer: subCa, serial: '21', extendedKeyUsage: [EMAIL_PROTECTION], emails: [ADDRESS] },
      NOW,
    );
    const result = validateCertificatePath(
      input(deep, { intermediates: [intermediate.der, subCa.der], revocation: 'off' }),
    );
    refusedWith(result, 'PATH_LENGTH_EXCEEDED');
    assert.equal(!result.ok && result.certificateIndex, 1);
  });

  it('refuses a path through a certificate that is not a CA with NOT_A_CA', async () => {
    const notCa = await issue(
      { name: 'Not A CA', keys, issuer: root, serial: '30', ca: false, keyUsage: ['keyCertSign'] },
      NOW,
    );
    const below = await issue(
      { name: 'Below', keys, issuer: notCa, serial: '31', extendedKeyUsage: [EMAIL_PROTECTION], emails: [ADDRESS] },
      NOW,
    );
    refusedWith(validateCertificatePath(input(below, { intermediates: [notCa.der], revocation: 'off' })), 'NOT_A_CA');
  });

  it('refuses an invalid validation time with INVALID_INPUT instead of passing every date check', () => {
    refusedWith(validateCertificatePath(input(leaf, { time: new Date(Number.NaN) })), 'INVALID_INPUT');
  });

  it('refuses bytes that are not a certificate with MALFORMED_CERTIFICATE', () => {
    refusedWith(
      validateCertificatePath(input(leaf, { endEntity: new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]) })),
      'MALFORMED_CERTIFICATE',
    );
  });

  describe('revocation by CRL', () => {
    it('refuses a certificate listed on its issuer’s CRL with REVOKED', async () => {
      const revoked = await leafWith({ serial: '77' });
      refusedWith(validateCertificatePath(input(revoked)), 'REVOKED');
    });

    it('fails closed with REVOCATION_UNKNOWN when no CRL is at hand in require mode', () => {
      refusedWith(validateCertificatePath(input(leaf, { crls: [] })), 'REVOCATION_UNKNOWN');
    });

    it('accepts with status unknown in prefer mode and skips checking in off mode', () => {
      const preferred = validateCertificatePath(input(leaf, { crls: [], revocation: 'prefer' }));
      assert.ok(preferred.ok);
      assert.deepEqual(preferred.revocation, ['unknown', 'unknown']);
      const off = validateCertificatePath(input(leaf, { crls: [], revocation: 'off' }));
      assert.ok(off.ok);
      assert.deepEqual(off.revocation, ['not-checked', 'not-checked']);
    });

    it('still refuses a revoked certificate in prefer mode', async () => {
      const revoked = await leafWith({ serial: '77' });
      refusedWith(validateCertificatePath(input(revoked, { revocation: 'prefer' })), 'REVOKED');
    });

    it('does not use a CRL past its nextUpdate', async () => {
      const stale = await crlOf(intermediate, [], {
        thisUpdate: new Date(NOW.getTime() - 10 * DAY),
        nextUpdate: new Date(NOW.getTime() - DAY),
      });
      refusedWith(
        validateCertificatePath(input(leaf, { crls: [goodCrls[0] as Uint8Array, stale] })),
        'REVOCATION_UNKNOWN',
      );
    });

    it('does not use a CRL signed by another key', async () => {
      const impostor = await issue({ name: 'SMGW Test Mail CA', keys: await rsaKeys(), serial: '40', ca: true }, NOW);
      const forged = await crlOf(impostor, [], {
        thisUpdate: new Date(NOW.getTime() - DAY),
        nextUpdate: new Date(NOW.getTime() + DAY),
      });
      refusedWith(
        validateCertificatePath(input(leaf, { crls: [goodCrls[0] as Uint8Array, forged] })),
        'REVOCATION_UNKNOWN',
      );
    });
  });

  describe('revocation by OCSP', () => {
    const current = { thisUpdate: new Date(NOW.getTime() - HOUR), nextUpdate: new Date(NOW.getTime() + DAY) };

    it('accepts a good answer signed by the issuer', async () => {
      const answer = await ocspResponseFor(leaf, intermediate, 'good', current);
      const result = validateCertificatePath(
        input(leaf, { ocspResponses: [answer], crls: [goodCrls[0] as Uint8Array] }),
      );
      assert.ok(result.ok, result.ok ? '' : result.reason);
      assert.deepEqual(result.revocation, ['good-ocsp', 'good-crl']);
    });

    it('refuses a certificate the responder reports revoked with REVOKED', async () => {
      const answer = await ocspResponseFor(leaf, intermediate, 'revoked', current);
      refusedWith(validateCertificatePath(input(leaf, { ocspResponses: [answer] })), 'REVOKED');
    });

    it('accepts a good answer from a delegated responder the issuer authorised for OCSPSigning', async () => {
      const responder = await issue(
        { name: 'SMGW OCSP Responder', keys, issuer: intermediate, serial: '50', extendedKeyUsage: [OCSP_SIGNING_EKU] },
        NOW,
      );
      const answer = await ocspResponseFor(leaf, intermediate, 'good', current, { keys, certificate: responder });
      const result = validateCertificatePath(
        input(leaf, { ocspResponses: [answer], crls: [goodCrls[0] as Uint8Array] }),
      );
      assert.ok(result.ok, result.ok ? '' : result.reason);
    });

    it('ignores an answer signed by a key the issuer did not authorise', async () => {
      const answer = await ocspResponseFor(leaf, intermediate, 'good', current, { keys: await rsaKeys() });
      refusedWith(
        validateCertificatePath(input(leaf, { ocspResponses: [answer], crls: [goodCrls[0] as Uint8Array] })),
        'REVOCATION_UNKNOWN',
      );
    });

    it('ignores an answer past its nextUpdate and an unknown status', async () => {
      const stale = await ocspResponseFor(leaf, intermediate, 'good', {
        thisUpdate: new Date(NOW.getTime() - 3 * DAY),
        nextUpdate: new Date(NOW.getTime() - 2 * DAY),
      });
      const unknown = await ocspResponseFor(leaf, intermediate, 'unknown', current);
      for (const answer of [stale, unknown]) {
        refusedWith(
          validateCertificatePath(input(leaf, { ocspResponses: [answer], crls: [goodCrls[0] as Uint8Array] })),
          'REVOCATION_UNKNOWN',
        );
      }
    });
  });
});
