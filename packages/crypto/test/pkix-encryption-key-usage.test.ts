// Whether we can encrypt to a certificate by its key alone (RFC 8550 §4.4.2): the rule the encrypt stage applies in
// path validation (leafKeyUsage) and the key directory applies before storing a certificate.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { checkEncryptionKeyUsage } from '../src/pkix/index.ts';
import { createTestPki, type LeafOptions, type TestCa, type TestPki } from '../src/testing/openssl-pki.ts';

describe('checkEncryptionKeyUsage', () => {
  let pki: TestPki;
  let ca: TestCa;
  before(async () => {
    pki = await createTestPki();
    ca = await pki.ca('KU-CA');
  });
  after(async () => {
    await pki?.remove();
  });

  const cases: Array<{ what: string; leaf: LeafOptions; result: string }> = [
    { what: 'RSA with keyEncipherment', leaf: { key: 'rsa-2048', keyUsage: 'keyEncipherment' }, result: 'rsa' },
    {
      what: 'RSA signing-only',
      leaf: { key: 'rsa-2048', keyUsage: 'digitalSignature,nonRepudiation' },
      result: 'KEY_USAGE',
    },
    { what: 'RSA with keyAgreement only', leaf: { key: 'rsa-2048', keyUsage: 'keyAgreement' }, result: 'KEY_USAGE' },
    { what: 'EC with keyAgreement', leaf: { key: 'p-256', keyUsage: 'digitalSignature,keyAgreement' }, result: 'ec' },
    { what: 'EC signing-only', leaf: { key: 'p-256', keyUsage: 'digitalSignature' }, result: 'KEY_USAGE' },
    { what: 'EC with keyEncipherment only', leaf: { key: 'p-384', keyUsage: 'keyEncipherment' }, result: 'KEY_USAGE' },
  ];
  for (const { what, leaf, result } of cases) {
    it(`${result === 'KEY_USAGE' ? 'refuses' : 'takes'} ${what}`, async () => {
      const certificate = await pki.leaf(ca, 'holder@example.org', leaf);
      const check = checkEncryptionKeyUsage(certificate.der);
      assert.equal(check.ok ? check.keyType : check.code, result, check.ok ? '' : check.reason);
    });
  }

  it('refuses what is not a certificate as MALFORMED_CERTIFICATE', () => {
    const check = checkEncryptionKeyUsage(Buffer.from('not a certificate'));
    assert.equal(!check.ok && check.code, 'MALFORMED_CERTIFICATE');
  });
});
