// From fields a reader takes for another sender than the signer's: an obs-syntax second From (`From :`, which the
// header parser dropped) and at signs that only look like one (fullwidth, small), which NFKC makes `@`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { verifyMessage } from '../src/index.ts';
import { type Authority, message, multipartSigned, type Signer, TestPki, textPart } from './openssl-pki.ts';

const entity = textPart('Bitte ueberweisen Sie den Betrag.\r\n');

describe('identity against From fields that only look harmless', () => {
  let pki: TestPki;
  let root: Authority;
  let ca: Authority;
  let alice: Signer;
  before(async () => {
    pki = await TestPki.create();
    root = await pki.root('Test Root');
    ca = await pki.intermediate(root, 'Test Signing CA');
    alice = await pki.signer(ca, 'alice');
  });
  after(async () => pki.remove());
  const signedBy = async (fields: string[]) =>
    verifyMessage(
      message(fields, multipartSigned(entity, await pki.sign(entity, [alice], { certfile: ca.certificatePath }))),
      {
        trustAnchors: [{ certificate: root.der }],
        now: () => new Date(Date.now() + 3600_000),
        revocation: 'off',
      },
    );
  const ew = (s: string) => `=?UTF-8?B?${Buffer.from(s).toString('base64')}?=`;
  const cases: Array<[string, string[]]> = [
    [
      'a second From written "From :" (obs-syntax, read by many clients)',
      ['From: alice@partner.example', 'From : ceo@behoerde.example'],
    ],
    ['a fullwidth at sign in the display name', [`From: ${ew('ceo\uFF20behoerde.example')} <alice@partner.example>`]],
    ['a small commercial at in the display name', [`From: ${ew('ceo\uFE6Bbehoerde.example')} <alice@partner.example>`]],
  ];
  for (const [label, fields] of cases) {
    it(`flags identity=mismatch for ${label}`, async () => {
      const result = await signedBy(fields);
      assert.equal(result.identity.status, 'mismatch', JSON.stringify(result.identity));
    });
  }
});
