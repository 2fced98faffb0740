// The PKITS S/MIME messages (smime/Signed<Test>.eml): each signature is checked with pkijs SignedData
// (signer 0, no pkijs chain check) and the signer's path with validateCertificatePath, from only the
// certificates and CRLs the message carries plus the PKITS trust anchor.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import { type PathValidationResult, validateCertificatePath } from '../src/pkix/index.ts';
import { type PkitsCase, pkitsCases } from './pkix-pkits-cases.ts';
import { listFiles, PKITS_DIR, readDer } from './pkix-vectors.ts';

const TIME = new Date('2020-06-15T00:00:00Z');
const SMIME_DIR = join(PKITS_DIR, 'smime');
const PKIJS_NO_DSA =
  'pkijs verifies CMS signatures through WebCrypto, which has no DSA: the message signature cannot be checked';
/** Messages we still get wrong, with the reason. */
const KNOWN_WRONG = new Map<string, string>([
  ['ValidDSASignaturesTest4', PKIJS_NO_DSA],
  ['ValidDSAParameterInheritanceTest5', PKIJS_NO_DSA],
]);
/** Ratchet: the pass rate may only go up. */
const MINIMUM_RIGHT = 222;

interface SignedMessage {
  signedBytes: Uint8Array;
  signature: Uint8Array;
}

/** Splits a multipart/signed message: the signed part (with its own trailing CRLF) and the decoded signature. */
function splitSignedMessage(text: string): SignedMessage {
  const boundary = /boundary="([^"]+)"/.exec(text)?.[1];
  if (!boundary) throw new Error('no boundary');
  const delimiter = `--${boundary}`;
  const parts = text.split(`\n${delimiter}`);
  const first = text.indexOf(`${delimiter}\n`) + delimiter.length + 1;
  const signedEnd = text.indexOf(`\n${delimiter}`, first);
  const signedBytes = new Uint8Array(Buffer.from(text.slice(first, signedEnd), 'latin1'));
  const signaturePart = parts[2] ?? '';
  const body = signaturePart.slice(signaturePart.indexOf('\n\n') + 2);
  return { signedBytes, signature: new Uint8Array(Buffer.from(body.replace(/\s+/g, ''), 'base64')) };
}

/** The expectation for a message: from its name, else under the settings of the first matching PKITS case
 * (a few message names differ from the certificate names, e.g. SignedValidSignaturesTest1). */
function caseFor(testName: string, cases: PkitsCase[]): PkitsCase | undefined {
  if (testName.startsWith('Valid') || testName.startsWith('Invalid'))
    return { name: testName, endEntity: testName, valid: testName.startsWith('Valid') };
  if (testName === 'MissingCRLTest1') return { name: testName, endEntity: testName, valid: false };
  if (testName === 'AllCertificatesSamePolicyTest1') return { name: testName, endEntity: testName, valid: true };
  return cases.find((c) => c.endEntity.toLowerCase() === `${testName}EE`.toLowerCase());
}

async function verifyMessage(
  message: SignedMessage,
  testCase: PkitsCase,
  anchor: Uint8Array,
): Promise<PathValidationResult | string> {
  const contentInfo = pkijs.ContentInfo.fromBER(message.signature);
  const signedData = new pkijs.SignedData({ schema: contentInfo.content });
  let signerCertificate: pkijs.Certificate | undefined;
  try {
    const verified = await signedData.verify({
      signer: 0,
      data: message.signedBytes.slice().buffer as ArrayBuffer,
      extendedMode: true,
      checkChain: false,
    });
    if (!verified.signatureVerified) return 'the message signature does not verify';
    signerCertificate = verified.signerCertificate ?? undefined;
  } catch (error) {
    return `the message signature could not be verified: ${(error as Error).message}`;
  }
  if (!signerCertificate) return 'no signer certificate';
  const certificates = (signedData.certificates ?? []).filter(
    (c): c is pkijs.Certificate => c instanceof pkijs.Certificate,
  );
  const crls = (signedData.crls ?? []).filter(
    (c): c is pkijs.CertificateRevocationList => c instanceof pkijs.CertificateRevocationList,
  );
  return validateCertificatePath({
    endEntity: new Uint8Array(signerCertificate.toSchema().toBER()),
    intermediates: certificates.map((c) => new Uint8Array(c.toSchema().toBER())),
    trustAnchors: [{ certificate: anchor }],
    time: TIME,
    purpose: 'emailProtection',
    crls: crls.map((c) => new Uint8Array(c.toSchema().toBER())),
    revocation: 'require',
    algorithmPolicy: { allowSha1: true, minRsaBits: 1024 },
    ...(testCase.initialPolicySet ? { initialPolicySet: testCase.initialPolicySet } : {}),
    ...(testCase.initialExplicitPolicy ? { initialExplicitPolicy: true } : {}),
    ...(testCase.initialPolicyMappingInhibit ? { initialPolicyMappingInhibit: true } : {}),
    ...(testCase.initialAnyPolicyInhibit ? { initialAnyPolicyInhibit: true } : {}),
  });
}

describe('PKITS S/MIME messages', () => {
  const anchor = readDer(join(PKITS_DIR, 'certs', 'TrustAnchorRootCertificate.crt'));
  const cases = pkitsCases();
  const files = listFiles(SMIME_DIR, '.eml');
  const wrong: string[] = [];
  let right = 0;

  after(() => {
    console.log(`PKITS S/MIME: ${right}/${files.length} right`);
    for (const line of wrong) console.log(`  wrong: ${line}`);
  });

  for (const file of files) {
    const testName = file.replace(/^Signed/, '').replace(/\.eml$/, '');
    const testCase = caseFor(testName, cases);
    it(`${testName} is ${testCase?.valid ? 'accepted' : 'refused'}`, async () => {
      assert.ok(testCase, `no expectation for ${testName}`);
      const message = splitSignedMessage(readFileSync(join(SMIME_DIR, file), 'latin1'));
      const result = await verifyMessage(message, testCase, anchor);
      const accepted = typeof result !== 'string' && result.ok;
      const outcome =
        typeof result === 'string' ? result : result.ok ? 'accepted' : `refused ${result.code}: ${result.reason}`;
      if (accepted === testCase.valid) right++;
      else wrong.push(`${testName}: ${outcome} (${KNOWN_WRONG.get(testName) ?? 'unexplained'})`);
      if (KNOWN_WRONG.has(testName)) return;
      assert.equal(accepted, testCase.valid, outcome);
    });
  }

  it('keeps the pass rate at or above the ratchet', () => {
    assert.ok(right >= MINIMUM_RIGHT, `PKITS S/MIME: ${right}/${files.length} right, ratchet is ${MINIMUM_RIGHT}`);
  });
});
