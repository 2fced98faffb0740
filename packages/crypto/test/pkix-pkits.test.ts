// NIST PKITS (Test Certificates 2011) through validateCertificatePath: every case, table-driven from the
// file names plus the settings-dependent §4.8 cases. Source and format: testdata/nist-pkits/README.md.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type PathValidationInput, type PathValidationResult, validateCertificatePath } from '../src/pkix/index.ts';
import { type PkitsCase, pkitsCases } from './pkix-pkits-cases.ts';
import { listFiles, PKITS_DIR, readDer } from './pkix-vectors.ts';

const TIME = new Date('2020-06-15T00:00:00Z');
/** Cases we still get wrong, with the reason. Empty: every case is right. */
const KNOWN_WRONG = new Map<string, string>();
/** Ratchet: the pass rate may only go up. */
const MINIMUM_RIGHT = 242;

const certificateFiles = listFiles(join(PKITS_DIR, 'certs'), '.crt');
const anchor = readDer(join(PKITS_DIR, 'certs', 'TrustAnchorRootCertificate.crt'));
const candidateBag = certificateFiles
  .filter((file) => !file.endsWith('EE.crt') && file !== 'TrustAnchorRootCertificate.crt')
  .map((file) => readDer(join(PKITS_DIR, 'certs', file)));
const crls = listFiles(join(PKITS_DIR, 'crls'), '.crl').map((file) => readDer(join(PKITS_DIR, 'crls', file)));

function inputFor(testCase: PkitsCase, overrides: Partial<PathValidationInput> = {}): PathValidationInput {
  return {
    endEntity: readDer(join(PKITS_DIR, 'certs', `${testCase.endEntity}.crt`)),
    intermediates: candidateBag,
    trustAnchors: [{ certificate: anchor }],
    time: TIME,
    purpose: 'any',
    crls,
    revocation: 'require',
    // PKITS's DSA cases use 1024-bit DSA with SHA-1; relaxed here so they test path logic. The default
    // policy refuses them, which a separate test below asserts.
    algorithmPolicy: { allowSha1: true, minRsaBits: 1024 },
    ...(testCase.initialPolicySet ? { initialPolicySet: testCase.initialPolicySet } : {}),
    ...(testCase.initialExplicitPolicy ? { initialExplicitPolicy: true } : {}),
    ...(testCase.initialPolicyMappingInhibit ? { initialPolicyMappingInhibit: true } : {}),
    ...(testCase.initialAnyPolicyInhibit ? { initialAnyPolicyInhibit: true } : {}),
    ...overrides,
  };
}

function describeOutcome(result: PathValidationResult): string {
  return result.ok ? 'accepted' : `refused ${result.code}: ${result.reason}`;
}

/** Refusal codes checked against the PKITS test descriptions, one or more per family. */
const EXPECTED_CODES: Record<string, string> = {
  InvalidCASignatureTest2EE: 'BAD_SIGNATURE',
  InvalidEESignatureTest3EE: 'BAD_SIGNATURE',
  InvalidDSASignatureTest6EE: 'BAD_SIGNATURE',
  InvalidCAnotBeforeDateTest1EE: 'NOT_YET_VALID',
  InvalidEEnotBeforeDateTest2EE: 'NOT_YET_VALID',
  InvalidCAnotAfterDateTest5EE: 'EXPIRED',
  InvalidEEnotAfterDateTest6EE: 'EXPIRED',
  Invalidpre2000UTCEEnotAfterDateTest7EE: 'EXPIRED',
  InvalidNameChainingTest1EE: 'NO_PATH',
  InvalidMissingCRLTest1EE: 'REVOCATION_UNKNOWN',
  InvalidRevokedCATest2EE: 'REVOKED',
  InvalidRevokedEETest3EE: 'REVOKED',
  InvalidBadCRLSignatureTest4EE: 'REVOCATION_UNKNOWN',
  InvalidOldCRLnextUpdateTest11EE: 'REVOCATION_UNKNOWN',
  InvalidUnknownCRLExtensionTest10EE: 'REVOCATION_UNKNOWN',
  InvalidMissingbasicConstraintsTest1EE: 'NOT_A_CA',
  InvalidcAFalseTest2EE: 'NOT_A_CA',
  InvalidpathLenConstraintTest6EE: 'PATH_LENGTH_EXCEEDED',
  InvalidSelfIssuedpathLenConstraintTest16EE: 'PATH_LENGTH_EXCEEDED',
  InvalidkeyUsageCriticalkeyCertSignFalseTest1EE: 'KEY_USAGE',
  InvalidkeyUsageCriticalcRLSignFalseTest4EE: 'REVOCATION_UNKNOWN',
  InvalidrequireExplicitPolicyTest3EE: 'POLICY_REQUIRED',
  InvalidPolicyMappingTest2EE: 'POLICY_REQUIRED',
  InvalidinhibitAnyPolicyTest1EE: 'POLICY_REQUIRED',
  InvalidDNnameConstraintsTest2EE: 'NAME_CONSTRAINTS_VIOLATED',
  InvalidRFC822nameConstraintsTest22EE: 'NAME_CONSTRAINTS_VIOLATED',
  InvalidDNSnameConstraintsTest31EE: 'NAME_CONSTRAINTS_VIOLATED',
  InvalidURInameConstraintsTest35EE: 'NAME_CONSTRAINTS_VIOLATED',
  InvalidUnknownCriticalCertificateExtensionTest2EE: 'UNKNOWN_CRITICAL_EXTENSION',
  InvaliddeltaCRLTest3EE: 'REVOKED',
  InvalidonlySomeReasonsTest15EE: 'REVOKED',
  InvalidcRLIssuerTest31EE: 'REVOKED',
};

describe('NIST PKITS path validation', () => {
  const cases = pkitsCases();
  const wrong: string[] = [];
  let right = 0;

  after(() => {
    console.log(`PKITS: ${right}/${cases.length} right`);
    for (const line of wrong) console.log(`  wrong: ${line}`);
  });

  for (const testCase of cases) {
    const label = `${testCase.name} is ${testCase.valid ? 'accepted' : 'refused'}`;
    it(label, () => {
      const result = validateCertificatePath(inputFor(testCase));
      if (result.ok === testCase.valid) right++;
      else
        wrong.push(`${testCase.name}: ${describeOutcome(result)} (${KNOWN_WRONG.get(testCase.name) ?? 'unexplained'})`);
      if (KNOWN_WRONG.has(testCase.name)) return;
      assert.equal(result.ok, testCase.valid, describeOutcome(result));
      const expectedCode = EXPECTED_CODES[testCase.name];
      if (expectedCode && !result.ok && testCase.name === testCase.endEntity)
        assert.equal(result.code, expectedCode, result.reason);
    });
  }

  it('keeps the pass rate at or above the ratchet', () => {
    assert.ok(right >= MINIMUM_RIGHT, `PKITS: ${right}/${cases.length} right, ratchet is ${MINIMUM_RIGHT}`);
  });

  it('refuses the SHA-1/1024-bit DSA cases under the default algorithm policy', () => {
    for (const endEntity of ['ValidDSASignaturesTest4EE', 'ValidDSAParameterInheritanceTest5EE']) {
      const result = validateCertificatePath(
        inputFor({ name: endEntity, endEntity, valid: true }, { algorithmPolicy: {} }),
      );
      assert.equal(result.ok, false);
      assert.ok(!result.ok && ['WEAK_SIGNATURE', 'WEAK_KEY'].includes(result.code), describeOutcome(result));
    }
  });

  it('reports the path and the policies of an accepted case', () => {
    const result = validateCertificatePath(
      inputFor({
        name: '4.8.6',
        endEntity: 'OverlappingPoliciesTest6EE',
        valid: true,
        initialPolicySet: ['2.16.840.1.101.3.2.1.48.1'],
      }),
    );
    assert.ok(result.ok, describeOutcome(result));
    assert.deepEqual(result.policies, ['2.16.840.1.101.3.2.1.48.1']);
    // EE, policies P1234 subsubCA, P1234 subCA, P1234 CA, then the trust anchor.
    assert.equal(result.path.length, 5);
    assert.deepEqual(result.revocation, ['good-crl', 'good-crl', 'good-crl', 'good-crl']);
  });
});
