// parseCertificate on a stranger's DER: the certificates of every signed inbound message reach it (signature-verify's
// certificate facts, path validation). pkijs reads them with asn1js, which builds an object per arc of an OID: one
// certificate of 4 MB holding OIDs took 5.7 s of the verifier's event loop, one of 16 MB (asn1js reads no more) 30 s.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { parseCertificate } from '../src/index.ts';
import { MalformedCertificateError } from '../src/pkix/certificate.ts';
import { parseCrl } from '../src/pkix/revocation-crl.ts';
import { parseOcspResponse } from '../src/pkix/revocation-ocsp.ts';
import { longOid, tlv } from './der-elements.ts';
import { issue, rsaKeys } from './pkix-test-pki.ts';

/** A certificate's outline (tbsCertificate, signatureAlgorithm, signature) with `oid` where an algorithm's OID stands. */
function certificateAround(oid: Buffer, extensions: Buffer = Buffer.alloc(0)): Buffer {
  const tbs = tlv(
    0x30,
    Buffer.concat([tlv(0xa0, tlv(0x02, Buffer.from([2]))), tlv(0x02, Buffer.from([1])), tlv(0x30, oid), extensions]),
  );
  return tlv(0x30, Buffer.concat([tbs, tlv(0x30, oid), tlv(0x03, Buffer.from([0, 1]))]));
}

const isLongOid = (error: unknown) =>
  error instanceof MalformedCertificateError && /OID longer than 256 bytes/.test(error.message);

describe('parseCertificate bounds', () => {
  let real: Uint8Array;
  before(async () => {
    const keys = await rsaKeys();
    real = (await issue({ name: 'Bürgerin', keys, serial: '01', emails: ['b@buerger.example'] }, new Date())).der;
  });

  it('refuses a certificate of 16 MB of OIDs (the most asn1js reads) before pkijs reads it', () => {
    const der = certificateAround(longOid(4_000_000));
    assert.ok(der.length > 16_000_000 && der.length < 16 * 1024 * 1024);
    assert.throws(() => parseCertificate(der), isLongOid);
  });

  it('refuses one hiding the OID in an extension value (pkijs parses those too)', () => {
    const extension = tlv(
      0x30,
      Buffer.concat([tlv(0x06, Buffer.from('551d20', 'hex')), tlv(0x04, tlv(0x30, longOid(2_000_000)))]),
    );
    const extensions = tlv(0xa3, tlv(0x30, extension));
    assert.throws(
      () => parseCertificate(certificateAround(tlv(0x06, Buffer.from('2a864886f70d01010b', 'hex')), extensions)),
      isLongOid,
    );
  });

  it('reads a CRL or OCSP response of 16 MB of OIDs as unreadable, at once (both come from URLs a stranger names)', () => {
    const outline = certificateAround(longOid(4_000_000));
    assert.equal(parseCrl(outline), undefined);
    const basic = tlv(0x04, tlv(0x30, Buffer.concat([tlv(0x30, longOid(4_000_000))])));
    const response = tlv(
      0x30,
      Buffer.concat([
        tlv(0x0a, Buffer.from([0])),
        tlv(0xa0, tlv(0x30, Buffer.concat([tlv(0x06, Buffer.from('2b0601050507300101', 'hex')), basic]))),
      ]),
    );
    assert.equal(parseOcspResponse(response), undefined);
  });

  it('still reads a real certificate, and says of a short OID outline only what pkijs says', () => {
    const parsed = parseCertificate(real);
    assert.deepEqual(
      parsed.subjectAltNames.map((name) => name.value),
      ['b@buerger.example'],
    );
    assert.throws(
      () => parseCertificate(certificateAround(longOid(100))),
      (error) => error instanceof MalformedCertificateError && !isLongOid(error),
    );
  });
});
