// What the encrypt stage has to do with an inbound message, read from its header fields and body head: the one
// predicate encrypt acts on and ingest routes by (plain mail skips encrypt).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseHeaderFields } from '@smgw/mime';
import { BODY_HEAD_BYTES, encryptStageReasons, inboundCryptoWork } from '../src/inbound-work/inbound-crypto-work.ts';

const ARMORED = '-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA0xyz\r\n=abcd\r\n-----END PGP MESSAGE-----\r\n';

function reasonsFor(header: string, body = 'Guten Tag.\r\n'): string[] {
  return encryptStageReasons(inboundCryptoWork(parseHeaderFields(header), Buffer.from(body, 'latin1')));
}

describe('what an inbound message holds for the encrypt stage', () => {
  const cases: Array<[string, string, string, string[]]> = [
    ['plain text', 'Subject: x\r\nContent-Type: text/plain; charset=utf-8', 'Guten Tag.\r\n', []],
    ['plain text without any Content-Type', 'Subject: x', 'Guten Tag.\r\n', []],
    ['HTML alone', 'Content-Type: text/html; charset=utf-8', '<p>Guten Tag.</p>\r\n', []],
    ['a PDF alone', 'Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64', 'JVBERi0=\r\n', []],
    [
      'S/MIME enveloped-data',
      'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m',
      'MIAGCSqGSIb3DQEHA6CAMIACAQAx\r\n',
      ['smime-encrypted'],
    ],
    [
      'S/MIME authEnveloped-data (x- type, quoted)',
      'Content-Type: application/x-pkcs7-mime; smime-type="authEnveloped-data"',
      'MIAG\r\n',
      ['smime-encrypted'],
    ],
    [
      'PGP/MIME',
      'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary=b',
      '--b\r\n',
      ['pgp-encrypted', 'may-offer-pgp-keys'],
    ],
    ['inline PGP', 'Content-Type: text/plain; charset=us-ascii', ARMORED, ['inline-pgp']],
    ['inline PGP without a Content-Type', 'Subject: x', ARMORED, ['inline-pgp']],
    ['a quoted PGP block among other text (left as it is)', 'Subject: x', `Sie schrieben:\r\n${ARMORED}`, []],
    ['an armored block in base64 (not inline PGP)', 'Content-Transfer-Encoding: base64', ARMORED, []],
    [
      'multipart/mixed (may carry a key)',
      'Content-Type: multipart/mixed; boundary=b',
      '--b\r\n',
      ['may-offer-pgp-keys'],
    ],
    ['multipart/alternative', 'Content-Type: multipart/alternative; boundary=b', '--b\r\n', ['may-offer-pgp-keys']],
    [
      'a key alone',
      'Content-Type: application/pgp-keys',
      '-----BEGIN PGP PUBLIC KEY BLOCK-----\r\n',
      ['may-offer-pgp-keys'],
    ],
    ['an Autocrypt header', 'Autocrypt: addr=a@x.example; keydata=mQENBF', 'Hallo\r\n', ['may-offer-pgp-keys']],
    [
      'multipart/signed',
      'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary=b',
      '--b\r\n',
      ['may-offer-pgp-keys', 'may-sign-smime'],
    ],
    [
      'opaque signed S/MIME',
      'Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m',
      'MIAG\r\n',
      ['may-sign-smime'],
    ],
    [
      'a folded Content-Type',
      'Content-Type:\r\n\tmultipart/encrypted;\r\n protocol="application/pgp-encrypted"',
      '',
      ['pgp-encrypted', 'may-offer-pgp-keys'],
    ],
    [
      'a Content-Type in capitals',
      'CONTENT-TYPE: Application/PKCS7-MIME; SMIME-TYPE=Enveloped-Data',
      '',
      ['smime-encrypted'],
    ],
  ];
  for (const [name, header, body, reasons] of cases) {
    it(`reads ${name} as ${reasons.length ? reasons.join(', ') : 'nothing to do'}`, () => {
      assert.deepEqual(reasonsFor(header, body), reasons);
    });
  }

  it('says how an inline PGP message is encrypted, as encrypt needs it', () => {
    const work = inboundCryptoWork(parseHeaderFields('Subject: x'), Buffer.from(ARMORED));
    assert.deepEqual(work, {
      encryptedForm: 'pgp',
      inlinePgp: true,
      mayOfferPgpKeys: false,
      maySignSmime: false,
    });
  });

  it('judges a text/plain body longer than the head plain, as encrypt does: inline PGP is only a whole body', () => {
    const hostile = Buffer.concat([Buffer.alloc(BODY_HEAD_BYTES, 'a'), Buffer.from(`\r\n${ARMORED}`)]);
    const work = inboundCryptoWork(parseHeaderFields('Subject: x'), hostile.subarray(0, BODY_HEAD_BYTES));
    assert.equal(work.encryptedForm, undefined, 'encrypt leaves it as it is');
    assert.deepEqual(encryptStageReasons(work), [], 'so the hop would do nothing');
    const armoredFirst = Buffer.concat([Buffer.from(`${ARMORED}\r\n`), Buffer.alloc(BODY_HEAD_BYTES, 'a')]);
    const long = inboundCryptoWork(parseHeaderFields('Subject: x'), armoredFirst.subarray(0, BODY_HEAD_BYTES));
    assert.equal(long.inlinePgp, false, 'a block followed by more text than the head is not inline PGP either');
    const html = inboundCryptoWork(parseHeaderFields('Content-Type: text/html'), Buffer.alloc(BODY_HEAD_BYTES, 'a'));
    assert.deepEqual(encryptStageReasons(html), [], 'only text/plain can be inline PGP');
  });

  it('reads the first Content-Type field, as every reader of the header does', () => {
    const header = 'Content-Type: text/plain\r\nContent-Type: multipart/encrypted; boundary=b';
    assert.deepEqual(reasonsFor(header), []);
  });
});
