// Signature timestamps and embedded revocation data in mail signatures, made by the real openssl: `openssl cms -sign`,
// `openssl ts` (a TSA made here) for the token over the signature value (added as the unsigned attribute
// id-aa-signatureTimeStampToken, as RFC 3161 Appendix A says, since `openssl cms` cannot), `openssl ca -gencrl` and
// `openssl ocsp` for revocation data put into the SignedData's crls field or the CAdES revocationValues attribute
// (again by the test: `openssl cms -sign` has no option for either). A CRL server of the test counts its requests,
// so "no network" is seen, not assumed.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createRevocationFetcher } from '@smgw/crypto';
import { parseContentInfo, summaryHeader, type VerifyMessageOptions, verifyMessage } from '../src/index.ts';
import { addRevocationInfo, addUnsignedAttribute, REVOCATION_VALUES_OID, revocationValues } from './cms-surgery.ts';
import {
  type Authority,
  attachment,
  message,
  multipartMixed,
  multipartSigned,
  type Signer,
  TestPki,
  textPart,
} from './openssl-pki.ts';

const DAY = 24 * 60 * 60 * 1000;
/** DER of the OID id-aa-signatureTimeStampToken (1.2.840.113549.1.9.16.2.14). */
const SIGNATURE_TIME_STAMP_OID = Buffer.from('060b2a864886f70d010910020e', 'hex');
const entity = textPart('Bescheid über die Genehmigung\r\n');
const stamp = (d: Date) => `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;

describe('long-term validation data in mail signatures', () => {
  let pki: TestPki;
  let forger: TestPki;
  let root: Authority;
  let ca: Authority;
  let tsa: Signer;
  let shortLived: Signer;
  let alice: Signer;
  let revoked: Signer;
  let crlServer: Server;
  let crlPort: number;
  let crlRequests = 0;
  const clock = new Date(Date.now() + 60 * 60 * 1000);
  const from = (signer: Signer) => [`From: ${signer.name} <${signer.email}>`, 'To: poststelle@behoerde.example'];
  const sign = (signer: Signer, extra: string[] = []) =>
    pki.sign(entity, [signer], { certfile: ca.certificatePath, extra });
  const signatureValueOf = (cms: Buffer) => {
    const parsed = parseContentInfo(cms);
    if (parsed.kind !== 'signed-data') throw new Error('not signed-data');
    return parsed.signedData.signerInfos[0]?.signature as Buffer;
  };
  /** The signature with a token over its signature value (or over other bytes: a forged imprint). */
  const timestamped = async (cms: Buffer, over?: Buffer) =>
    addUnsignedAttribute(
      cms,
      SIGNATURE_TIME_STAMP_OID,
      await pki.timestamp(over ?? signatureValueOf(cms), tsa, root.certificatePath),
    );
  /** Revocation required, a fetcher that may reach only the test's CRL server. */
  const online = (extra: Partial<VerifyMessageOptions> = {}): VerifyMessageOptions => ({
    trustAnchors: [{ certificate: root.der }],
    now: () => clock,
    revocation: 'require',
    fetcher: createRevocationFetcher({
      now: () => clock,
      allow: { networks: [], endpoints: [{ host: '127.0.0.1', port: crlPort }] },
    }),
    ...extra,
  });

  before(async () => {
    pki = await TestPki.create();
    forger = await TestPki.create();
    root = await pki.root('LT Root');
    ca = await pki.intermediate(root, 'LT Signing CA');
    // The TSA outlives the signers: its token still validates when theirs have expired.
    tsa = await pki.timestampAuthority(root, 'LT TSA', {
      start: stamp(new Date(Date.now() - DAY)),
      end: stamp(new Date(Date.now() + 3 * 365 * DAY)),
    });
    shortLived = await pki.signer(ca, 'short-lived', {
      dates: { start: stamp(new Date(Date.now() - DAY)), end: stamp(new Date(Date.now() + DAY)) },
    });
    crlServer = createServer((request, response) => {
      crlRequests++;
      if (request.url !== '/ca.crl') {
        response.writeHead(503).end();
        return;
      }
      pki.crl(ca).then(
        (crl) => response.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(crl),
        () => response.writeHead(500).end(),
      );
    });
    await new Promise<void>((resolve) => crlServer.listen(0, '127.0.0.1', resolve));
    crlPort = (crlServer.address() as AddressInfo).port;
    const crlUrl = `http://127.0.0.1:${crlPort}/ca.crl`;
    alice = await pki.signer(ca, 'alice', { crlUrl });
    revoked = await pki.signer(ca, 'revoked', { crlUrl });
    await pki.revoke(ca, revoked);
  });
  after(async () => {
    await new Promise((resolve) => crlServer.close(resolve));
    await pki.remove();
    await forger.remove();
  });

  describe('signature timestamps (RFC 3161 Appendix A)', () => {
    const later = new Date(Date.now() + 400 * DAY);
    const offline = (): VerifyMessageOptions => ({
      trustAnchors: [{ certificate: root.der }],
      now: () => later,
      revocation: 'off',
    });

    it('passes a signer expired since signing when a timestamp proves the signature existed while it was valid', async () => {
      const cms = await timestamped(await sign(shortLived, ['-cades']));
      const result = await verifyMessage(message(from(shortLived), multipartSigned(entity, cms)), offline());
      const [signature] = result.signatures;
      assert.equal(signature?.indication, 'TOTAL_PASSED', signature?.reasons.join('; '));
      assert.equal(summaryHeader(result), 'TOTAL_PASSED; level=AdES; signatures=1');
      assert.ok(signature?.proofOfExistence instanceof Date);
      assert.ok((signature?.proofOfExistence as Date) < (signature?.chain?.certificates[0]?.notAfter as Date));
      assert.equal(signature?.timestamp?.indication, 'TOTAL_PASSED');
      assert.match(signature?.reasons.join(' ') ?? '', /expired since/);
    });

    it('leaves the same signer without a timestamp INDETERMINATE OUT_OF_BOUNDS_NO_POE', async () => {
      const cms = await sign(shortLived, ['-cades']);
      const result = await verifyMessage(message(from(shortLived), multipartSigned(entity, cms)), offline());
      assert.equal(summaryHeader(result), 'INDETERMINATE; sub=OUT_OF_BOUNDS_NO_POE');
      assert.equal(result.signatures[0]?.proofOfExistence, undefined);
    });

    it('does not use a forged timestamp whose imprint is of other data', async () => {
      const cms = await timestamped(await sign(shortLived, ['-cades']), Buffer.from('some other signature value'));
      const result = await verifyMessage(message(from(shortLived), multipartSigned(entity, cms)), offline());
      const [signature] = result.signatures;
      assert.equal(summaryHeader(result), 'INDETERMINATE; sub=OUT_OF_BOUNDS_NO_POE');
      assert.equal(signature?.timestamp?.subIndication, 'HASH_FAILURE');
      assert.equal(signature?.proofOfExistence, undefined);
      assert.match(signature?.reasons.join(' ') ?? '', /proves nothing/);
    });

    it('does not use a timestamp from a TSA outside the trust anchors', async () => {
      const untrusted = await forger.root('Untrusted TSA Root');
      const strangeTsa = await forger.timestampAuthority(untrusted, 'Strange TSA');
      const cms = await sign(shortLived, ['-cades']);
      const token = await forger.timestamp(signatureValueOf(cms), strangeTsa, untrusted.certificatePath);
      const withToken = addUnsignedAttribute(cms, SIGNATURE_TIME_STAMP_OID, token);
      const result = await verifyMessage(message(from(shortLived), multipartSigned(entity, withToken)), offline());
      assert.equal(summaryHeader(result), 'INDETERMINATE; sub=OUT_OF_BOUNDS_NO_POE');
      assert.equal(result.signatures[0]?.timestamp?.subIndication, 'NO_CERTIFICATE_CHAIN_FOUND');
    });

    it('reads the timestamp of a CAdES .p7s beside its document too', async () => {
      const document = Buffer.from('%PDF-1.4 Antrag\n');
      const cms = await timestamped(
        await pki.sign(document, [alice], { certfile: ca.certificatePath, extra: ['-cades'] }),
      );
      const mail = message(
        from(alice),
        multipartMixed([
          textPart('Anbei der Antrag.'),
          attachment('antrag.pdf', 'application/pdf', document),
          attachment('antrag.pdf.p7s', 'application/pkcs7-signature', cms),
        ]),
      );
      const result = await verifyMessage(mail, { ...offline(), now: () => clock });
      assert.equal(result.signatures[0]?.indication, 'TOTAL_PASSED', result.signatures[0]?.reasons.join('; '));
      assert.ok(result.signatures[0]?.proofOfExistence instanceof Date);
    });
  });

  describe('revocation data embedded in the signature', () => {
    it('fails a signer revoked per an embedded CRL without asking the network', async () => {
      const cms = addRevocationInfo(await sign(revoked), { crls: [await pki.crl(ca), await pki.crl(root)] });
      const before = crlRequests;
      const result = await verifyMessage(message(from(revoked), multipartSigned(entity, cms)), online());
      assert.equal(summaryHeader(result), 'TOTAL_FAILED; sub=REVOKED');
      assert.equal(crlRequests, before, 'no CRL was fetched');
      const signer = result.signatures[0]?.chain?.certificates[0];
      assert.equal(signer?.revocation, 'revoked');
      assert.equal(signer?.revocationData?.source, 'embedded');
      assert.equal(signer?.revocationData?.kind, 'crl');
    });

    it('passes with embedded CRLs covering the chain, naming them and their time, with no fetch', async () => {
      const caCrl = await pki.crl(ca);
      const cms = addRevocationInfo(await sign(alice), { crls: [caCrl, await pki.crl(root)] });
      const before = crlRequests;
      const result = await verifyMessage(message(from(alice), multipartSigned(entity, cms)), online());
      assert.equal(
        summaryHeader(result),
        'TOTAL_PASSED; level=basic; signatures=1',
        result.signatures[0]?.reasons.join(),
      );
      assert.equal(crlRequests, before);
      const chain = result.signatures[0]?.chain?.certificates ?? [];
      assert.deepEqual(
        chain.map((c) => [c.revocation, c.revocationData?.source]),
        [
          ['good-crl', 'embedded'],
          ['good-crl', 'embedded'],
          ['trust-anchor', undefined],
        ],
      );
      assert.ok(chain[0]?.revocationData?.time instanceof Date);
      assert.ok((chain[0]?.revocationData?.time as Date) <= clock);
    });

    it('uses an embedded OCSP response (RFC 5940 id-ri-ocsp-response) made by openssl ocsp', async () => {
      const ocsp = await pki.ocspResponse(ca, alice);
      const cms = addRevocationInfo(await sign(alice), { crls: [await pki.crl(root)], ocspResponses: [ocsp] });
      const before = crlRequests;
      const result = await verifyMessage(message(from(alice), multipartSigned(entity, cms)), online());
      assert.equal(result.signatures[0]?.indication, 'TOTAL_PASSED', result.signatures[0]?.reasons.join());
      assert.equal(crlRequests, before);
      const signer = result.signatures[0]?.chain?.certificates[0];
      assert.equal(signer?.revocation, 'good-ocsp');
      assert.equal(signer?.revocationData?.source, 'embedded');
      assert.equal(signer?.revocationData?.kind, 'ocsp');
    });

    it('fails a signer revoked per an embedded OCSP response', async () => {
      const ocsp = await pki.ocspResponse(ca, revoked);
      const cms = addRevocationInfo(await sign(revoked), { crls: [await pki.crl(root)], ocspResponses: [ocsp] });
      const result = await verifyMessage(message(from(revoked), multipartSigned(entity, cms)), online());
      assert.equal(summaryHeader(result), 'TOTAL_FAILED; sub=REVOKED');
      assert.equal(result.signatures[0]?.chain?.certificates[0]?.revocationData?.kind, 'ocsp');
    });

    it('uses the CAdES revocationValues attribute (crlVals, ocspVals)', async () => {
      const values = revocationValues([await pki.crl(root)], [await pki.ocspResponse(ca, alice)]);
      const cms = addUnsignedAttribute(await sign(alice, ['-cades']), REVOCATION_VALUES_OID, values);
      const before = crlRequests;
      const result = await verifyMessage(message(from(alice), multipartSigned(entity, cms)), online());
      assert.equal(
        summaryHeader(result),
        'TOTAL_PASSED; level=AdES; signatures=1',
        result.signatures[0]?.reasons.join(),
      );
      assert.equal(crlRequests, before);
      assert.deepEqual(
        result.signatures[0]?.chain?.certificates.map((c) => c.revocationData?.kind),
        ['ocsp', 'crl', undefined],
      );
    });

    it('ignores a stale embedded CRL and fetches a current one', async () => {
      const stale = await pki.crl(ca, {
        lastUpdate: stamp(new Date(Date.now() - 60 * DAY)),
        nextUpdate: stamp(new Date(Date.now() - 30 * DAY)),
      });
      const cms = addRevocationInfo(await sign(alice), { crls: [stale, await pki.crl(root)] });
      const before = crlRequests;
      const result = await verifyMessage(message(from(alice), multipartSigned(entity, cms)), online());
      assert.equal(result.signatures[0]?.indication, 'TOTAL_PASSED', result.signatures[0]?.reasons.join());
      assert.equal(crlRequests, before + 1);
      assert.deepEqual(
        result.signatures[0]?.chain?.certificates.map((c) => c.revocationData?.source),
        ['fetched', 'embedded', undefined],
      );
    });

    it('ignores an embedded CRL signed by someone else under the CA’s name: fetched instead, or TRY_LATER', async () => {
      // Another key under the same name "LT Signing CA" lists alice as revoked.
      const impostor = await forger.root('LT Signing CA');
      await forger.revoke(impostor, alice);
      const forged = await forger.crl(impostor);
      const cms = addRevocationInfo(await sign(alice), { crls: [forged, await pki.crl(root)] });
      const mail = message(from(alice), multipartSigned(entity, cms));
      const before = crlRequests;
      const result = await verifyMessage(mail, online());
      assert.equal(
        summaryHeader(result),
        'TOTAL_PASSED; level=basic; signatures=1',
        result.signatures[0]?.reasons.join(),
      );
      assert.equal(crlRequests, before + 1);
      // With nothing reachable (the fetcher's guard refuses loopback), the forged CRL still counts for nothing.
      const unreachable = await verifyMessage(mail, online({ fetcher: createRevocationFetcher({ now: () => clock }) }));
      assert.equal(summaryHeader(unreachable), 'INDETERMINATE; sub=TRY_LATER');
    });
  });
});
