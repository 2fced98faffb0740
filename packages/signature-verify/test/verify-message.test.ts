// verifyMessage against signatures made by `openssl cms -sign` in a PKI made by the test: what passes, what fails,
// what stays indeterminate, and the structural attacks on signed mail (extra SignerInfos, zero SignerInfos, eContent
// confusion, signed parts under unsigned content, a broken inner layer under a valid outer one, From ≠ signer).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ber, createRevocationFetcher } from '@smgw/crypto';
import { type QualifiedStatusSource, summaryHeader, type VerifyMessageOptions, verifyMessage } from '../src/index.ts';
import {
  attributeIs,
  changeSignedAttributes,
  flipSignatureByte,
  joinSignedData,
  replaceInContent,
  splitSignedData,
  tlv,
} from './cms-surgery.ts';
import {
  type Authority,
  attachment,
  message,
  multipartMixed,
  multipartSigned,
  opaqueSigned,
  type Signer,
  TestPki,
  textPart,
} from './openssl-pki.ts';

const entity = textPart('Sehr geehrte Damen und Herren,\r\n\r\nanbei der Antrag.\r\n\r\nMit freundlichen Grüßen\r\n');
const DAY = 24 * 60 * 60 * 1000;

describe('verifyMessage', () => {
  let pki: TestPki;
  let root: Authority;
  let signingCa: Authority;
  let untrustedRoot: Authority;
  let alice: Signer;
  let bob: Signer;
  let ec256: Signer;
  let ec384: Signer;
  let expired: Signer;
  let revoked: Signer;
  let qualified: Signer;
  let stranger: Signer;
  let subjectOnly: Signer;
  let withCrlUrl: Signer;
  let withDeadCrlUrl: Signer;
  let crlServer: Server;
  let crlPort: number;
  const clock = new Date(Date.now() + 60 * 60 * 1000);

  const options = (extra: Partial<VerifyMessageOptions> = {}): VerifyMessageOptions => ({
    trustAnchors: [{ certificate: root.der }],
    now: () => clock,
    revocation: 'off',
    ...extra,
  });
  const sign = (content: Buffer, signers: Signer[], extra: { opaque?: boolean; extra?: string[] } = {}) =>
    pki.sign(content, signers, { certfile: signingCa.certificatePath, ...extra });
  const from = (signer: Signer) => [`From: ${signer.name} <${signer.email}>`, 'To: poststelle@behoerde.example'];

  before(async () => {
    pki = await TestPki.create();
    root = await pki.root('Test Root');
    signingCa = await pki.intermediate(root, 'Test Signing CA');
    untrustedRoot = await pki.root('Untrusted Root');
    // One at a time: `openssl ca` keeps its serial and index in files.
    alice = await pki.signer(signingCa, 'alice');
    bob = await pki.signer(signingCa, 'bob');
    ec256 = await pki.signer(signingCa, 'ec256', { spec: 'p-256' });
    ec384 = await pki.signer(signingCa, 'ec384', { spec: 'p-384' });
    qualified = await pki.signer(signingCa, 'qualified', { qualified: true });
    subjectOnly = await pki.signer(signingCa, 'subject-only', { subjectEmailOnly: true });
    expired = await pki.signer(signingCa, 'expired', {
      dates: { start: '20200101000000Z', end: '20200201000000Z' },
    });
    revoked = await pki.signer(signingCa, 'revoked');
    stranger = await pki.signer(untrustedRoot, 'stranger');
    // The signing CA's CRL over HTTP on loopback, as an internal CRL server (SMGW_REVOCATION_ALLOW lists it).
    crlServer = createServer((request, response) => {
      if (request.url !== '/signing-ca.crl') {
        response.writeHead(503).end();
        return;
      }
      pki.crl(signingCa).then(
        (crl) => response.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(crl),
        () => response.writeHead(500).end(),
      );
    });
    await new Promise<void>((resolve) => crlServer.listen(0, '127.0.0.1', resolve));
    crlPort = (crlServer.address() as AddressInfo).port;
    withCrlUrl = await pki.signer(signingCa, 'fetched', { crlUrl: `http://127.0.0.1:${crlPort}/signing-ca.crl` });
    withDeadCrlUrl = await pki.signer(signingCa, 'fetched-down', { crlUrl: `http://127.0.0.1:${crlPort}/down.crl` });
  });
  after(async () => {
    await new Promise((resolve) => crlServer.close(resolve));
    await pki.remove();
  });

  describe('a valid signature', () => {
    for (const [label, who, extra] of [
      ['RSA PKCS#1 v1.5', () => alice, []],
      ['RSA-PSS', () => alice, ['-keyopt', 'rsa_padding_mode:pss']],
      ['ECDSA P-256', () => ec256, []],
      ['ECDSA P-384', () => ec384, ['-md', 'sha384']],
    ] as const) {
      it(`passes a detached multipart/signed message from openssl with ${label}`, async () => {
        const signer = who();
        const cms = await sign(entity, [signer], { extra: [...extra] });
        const result = await verifyMessage(message(from(signer), multipartSigned(entity, cms)), options());
        const [signature] = result.signatures;
        assert.equal(signature?.indication, 'TOTAL_PASSED', signature?.reasons.join('; '));
        assert.equal(signature?.signer?.subject.includes(`CN=${signer.name}`), true);
        assert.deepEqual(signature?.signer?.emailAddresses, [signer.email]);
        assert.equal(signature?.algorithms.digest?.acceptable, true);
        assert.equal(signature?.algorithms.signature?.acceptable, true);
        assert.ok(signature?.claimedSigningTime instanceof Date);
        assert.equal(signature?.chain?.certificates.length, 3);
        assert.equal(result.coverage.status, 'full');
        assert.equal(result.identity.status, 'match');
        assert.equal(summaryHeader(result), 'TOTAL_PASSED; level=basic; signatures=1');
      });
    }

    it('names RSASSA-PSS and the ECDSA curve in the algorithms', async () => {
      const pss = await sign(entity, [alice], { extra: ['-keyopt', 'rsa_padding_mode:pss'] });
      const pssResult = await verifyMessage(message(from(alice), multipartSigned(entity, pss)), options());
      assert.equal(pssResult.signatures[0]?.algorithms.signature?.name, 'RSASSA-PSS with SHA-256');
      const ec = await sign(entity, [ec384], { extra: ['-md', 'sha384'] });
      const ecResult = await verifyMessage(message(from(ec384), multipartSigned(entity, ec)), options());
      assert.equal(ecResult.signatures[0]?.algorithms.key?.description, 'EC secp384r1');
      assert.equal(ecResult.signatures[0]?.algorithms.digest?.name, 'SHA-384');
    });

    it('passes an opaque signed-data message and walks the content inside', async () => {
      const cms = await sign(entity, [alice], { opaque: true });
      const result = await verifyMessage(message(from(alice), opaqueSigned(cms)), options());
      assert.equal(summaryHeader(result), 'TOTAL_PASSED; level=basic; signatures=1');
      assert.equal(result.layers[0]?.kind, 'smime-opaque');
      assert.deepEqual(
        result.parts.map((p) => [p.path, p.coveredBy]),
        [['/content', ['L1']]],
      );
    });

    it('says AdES when the signed attributes bind the certificate (openssl -cades), and why not QES', async () => {
      const cms = await sign(entity, [qualified], { extra: ['-cades'] });
      const result = await verifyMessage(message(from(qualified), multipartSigned(entity, cms)), options());
      const [signature] = result.signatures;
      assert.equal(signature?.signingCertificateBound, true);
      assert.equal(signature?.level, 'AdES');
      assert.match(signature?.qualification?.reason ?? '', /QcCompliance, QcSSCD.*no trusted list/);
      assert.equal(summaryHeader(result), 'TOTAL_PASSED; level=AdES; signatures=1');
    });

    it('says QES only when the trusted-list hook confirms a qualified certificate with QSCD', async () => {
      const seen: string[] = [];
      const qualifiedStatus: QualifiedStatusSource = (signer, atTime, chain) => {
        seen.push(`${signer.subject}|${chain.length}|${atTime <= clock}`);
        return signer.qcStatements.compliance && signer.qcStatements.sscd
          ? { status: 'qualified-qscd', source: 'test list', reason: 'granted in the test list' }
          : { status: 'not-qualified', source: 'test list', reason: 'not in the test list' };
      };
      const cms = await sign(entity, [qualified, alice], { extra: ['-cades'] });
      const result = await verifyMessage(
        message(from(qualified), multipartSigned(entity, cms)),
        options({ qualifiedStatus }),
      );
      assert.deepEqual(result.signatures.map((s) => [s.signer?.emailAddresses[0], s.level]).sort(), [
        [alice.email, 'AdES'],
        [qualified.email, 'QES'],
      ]);
      assert.equal(seen.length, 2);
      assert.ok(seen.some((s) => /CN=qualified.*\|3\|true/.test(s)));
      // The worst level wins in the summary.
      assert.equal(summaryHeader(result), 'TOTAL_PASSED; level=AdES; signatures=2');
      const onlyQualified = await verifyMessage(
        message(from(qualified), multipartSigned(entity, await sign(entity, [qualified], { extra: ['-cades'] }))),
        options({ qualifiedStatus }),
      );
      assert.equal(summaryHeader(onlyQualified), 'TOTAL_PASSED; level=QES; signatures=1');
    });

    it('asks the trusted list at the validation time, never at the claimed signing time (no back-dating into QES)', async () => {
      // The issuer was granted until a moment after the signature's signingTime claims, withdrawn before the
      // validation time: the claim is the sender's word and must not reach back into the granted period.
      const withdrawnAt = new Date(Date.now() + 30 * 60 * 1000);
      const asked: Date[] = [];
      const qualifiedStatus: QualifiedStatusSource = (_signer, atTime) => {
        asked.push(atTime);
        return atTime < withdrawnAt
          ? { status: 'qualified-qscd', source: 'test list', reason: 'granted' }
          : { status: 'not-qualified', source: 'test list', reason: 'withdrawn' };
      };
      const cms = await sign(entity, [qualified], { extra: ['-cades'] });
      const result = await verifyMessage(
        message(from(qualified), multipartSigned(entity, cms)),
        options({ qualifiedStatus }),
      );
      const [signature] = result.signatures;
      assert.ok(signature?.claimedSigningTime && signature.claimedSigningTime < withdrawnAt);
      assert.deepEqual(asked, [clock]);
      assert.equal(signature?.level, 'AdES');
      assert.equal(summaryHeader(result), 'TOTAL_PASSED; level=AdES; signatures=1');
    });

    it('never says QES for a signature that does not bind its certificate, whatever the list says', async () => {
      const cms = await sign(entity, [qualified]);
      const result = await verifyMessage(
        message(from(qualified), multipartSigned(entity, cms)),
        options({ qualifiedStatus: () => ({ status: 'qualified-qscd', source: 'test', reason: 'granted' }) }),
      );
      assert.equal(result.signatures[0]?.level, 'basic');
    });

    it('reads the address from the subject emailAddress when the certificate has no SAN rfc822Name', async () => {
      const cms = await sign(entity, [subjectOnly]);
      const result = await verifyMessage(message(from(subjectOnly), multipartSigned(entity, cms)), options());
      assert.deepEqual(result.signatures[0]?.signer?.emailAddresses, [subjectOnly.email]);
      assert.equal(result.identity.status, 'match');
    });

    it('accepts a message stored with bare LF line ends', async () => {
      const cms = await sign(entity, [alice]);
      const lf = Buffer.from(
        message(from(alice), multipartSigned(entity, cms)).toString('latin1').replace(/\r\n/g, '\n'),
        'latin1',
      );
      const result = await verifyMessage(lf, options());
      assert.equal(summaryHeader(result), 'TOTAL_PASSED; level=basic; signatures=1');
    });
  });

  describe('integrity', () => {
    it('fails a message whose signed part was changed: TOTAL_FAILED HASH_FAILURE', async () => {
      const cms = await sign(entity, [alice]);
      const changed = Buffer.from(entity.toString('latin1').replace('Antrag', 'Auftrag'), 'latin1');
      const result = await verifyMessage(message(from(alice), multipartSigned(changed, cms)), options());
      assert.equal(summaryHeader(result), 'TOTAL_FAILED; sub=HASH_FAILURE');
      assert.match(result.signatures[0]?.sentence.de ?? '', /verändert/);
      assert.match(result.signatures[0]?.sentence.en ?? '', /changed after signing/);
    });

    it('fails a signature value with one bit flipped: TOTAL_FAILED SIG_CRYPTO_FAILURE', async () => {
      for (const signer of [alice, ec256]) {
        const cms = flipSignatureByte(await sign(entity, [signer]));
        const result = await verifyMessage(message(from(signer), multipartSigned(entity, cms)), options());
        assert.equal(summaryHeader(result), 'TOTAL_FAILED; sub=SIG_CRYPTO_FAILURE', signer.name);
      }
    });

    it('fails opaque signed-data whose encapsulated content was changed', async () => {
      const cms = replaceInContent(await sign(entity, [alice], { opaque: true }), 'Antrag', 'Auftra');
      const result = await verifyMessage(message(from(alice), opaqueSigned(cms)), options());
      assert.equal(summaryHeader(result), 'TOTAL_FAILED; sub=HASH_FAILURE');
    });

    it('never fails an intact MD5 signature it cannot check, and fails a changed one as changed', async () => {
      const cms = await sign(entity, [alice], { extra: ['-md', 'md5'] });
      const intact = await verifyMessage(message(from(alice), multipartSigned(entity, cms)), options());
      assert.equal(summaryHeader(intact), 'INDETERMINATE; sub=CRYPTO_CONSTRAINTS_FAILURE');
      const changed = Buffer.from(entity.toString('latin1').replace('Antrag', 'Auftrag'), 'latin1');
      const tampered = await verifyMessage(message(from(alice), multipartSigned(changed, cms)), options());
      assert.equal(summaryHeader(tampered), 'TOTAL_FAILED; sub=HASH_FAILURE');
    });

    it('checks integrity before algorithm policy: intact SHA-1 is INDETERMINATE, tampered SHA-1 is TOTAL_FAILED', async () => {
      const cms = await sign(entity, [alice], { extra: ['-md', 'sha1'] });
      const intact = await verifyMessage(message(from(alice), multipartSigned(entity, cms)), options());
      assert.equal(summaryHeader(intact), 'INDETERMINATE; sub=CRYPTO_CONSTRAINTS_FAILURE');
      assert.equal(intact.signatures[0]?.algorithms.digest?.name, 'SHA-1');
      assert.equal(intact.signatures[0]?.algorithms.digest?.acceptable, false);
      const changed = Buffer.from(entity.toString('latin1').replace('Antrag', 'Auftrag'), 'latin1');
      const tampered = await verifyMessage(message(from(alice), multipartSigned(changed, cms)), options());
      assert.equal(summaryHeader(tampered), 'TOTAL_FAILED; sub=HASH_FAILURE');
      const forged = await verifyMessage(
        message(from(alice), multipartSigned(entity, flipSignatureByte(cms))),
        options(),
      );
      assert.equal(summaryHeader(forged), 'TOTAL_FAILED; sub=SIG_CRYPTO_FAILURE');
    });
  });

  describe('the signer’s certificate', () => {
    it('is INDETERMINATE NO_CERTIFICATE_CHAIN_FOUND for a signer from an untrusted CA', async () => {
      const cms = await pki.sign(entity, [stranger]);
      const result = await verifyMessage(message(from(stranger), multipartSigned(entity, cms)), options());
      assert.equal(summaryHeader(result), 'INDETERMINATE; sub=NO_CERTIFICATE_CHAIN_FOUND');
      assert.match(result.signatures[0]?.sentence.en ?? '', /does not lead to a trusted issuer/);
    });

    it('is INDETERMINATE OUT_OF_BOUNDS_NO_POE for an expired signer, never failed', async () => {
      const cms = await sign(entity, [expired]);
      const result = await verifyMessage(message(from(expired), multipartSigned(entity, cms)), options());
      assert.equal(summaryHeader(result), 'INDETERMINATE; sub=OUT_OF_BOUNDS_NO_POE');
    });

    it('is INDETERMINATE NOT_YET_VALID when the clock is before the certificate', async () => {
      const cms = await sign(entity, [alice]);
      const result = await verifyMessage(
        message(from(alice), multipartSigned(entity, cms)),
        options({ now: () => new Date(clock.getTime() - 30 * DAY) }),
      );
      assert.equal(summaryHeader(result), 'INDETERMINATE; sub=NOT_YET_VALID');
    });

    it('is TOTAL_FAILED REVOKED for a signer on the CA’s CRL, and passes others with that CRL', async () => {
      await pki.revoke(signingCa, revoked);
      const crl = await pki.crl(signingCa);
      const rootCrl = await pki.crl(root);
      const revocation = { revocation: 'require' as const, crls: [crl, rootCrl] };
      const cms = await sign(entity, [revoked]);
      const result = await verifyMessage(message(from(revoked), multipartSigned(entity, cms)), options(revocation));
      assert.equal(summaryHeader(result), 'TOTAL_FAILED; sub=REVOKED');
      const good = await verifyMessage(
        message(from(alice), multipartSigned(entity, await sign(entity, [alice]))),
        options(revocation),
      );
      assert.equal(summaryHeader(good), 'TOTAL_PASSED; level=basic; signatures=1');
      assert.deepEqual(
        good.signatures[0]?.chain?.certificates.map((c) => c.revocation),
        ['good-crl', 'good-crl', 'trust-anchor'],
      );
    });

    it('fetches the CRL through the fetcher when its server is allowed, and refuses loopback otherwise', async () => {
      const rootCrl = await pki.crl(root);
      const mail = message(from(withCrlUrl), multipartSigned(entity, await sign(entity, [withCrlUrl])));
      const allow = { networks: [], endpoints: [{ host: '127.0.0.1', port: crlPort }] };
      const fetched = await verifyMessage(
        mail,
        options({
          revocation: 'require',
          crls: [rootCrl],
          fetcher: createRevocationFetcher({ now: () => clock, allow }),
        }),
      );
      assert.equal(
        summaryHeader(fetched),
        'TOTAL_PASSED; level=basic; signatures=1',
        fetched.signatures[0]?.reasons.join(),
      );
      assert.equal(fetched.signatures[0]?.chain?.certificates[0]?.revocation, 'good-crl');
      // Without the allow list the fetcher's guard refuses loopback: no answer, so TRY_LATER, never passed.
      const guarded = await verifyMessage(
        mail,
        options({ revocation: 'require', crls: [rootCrl], fetcher: createRevocationFetcher({ now: () => clock }) }),
      );
      assert.equal(summaryHeader(guarded), 'INDETERMINATE; sub=TRY_LATER');
      assert.match(guarded.signatures[0]?.reasons.join(' ') ?? '', /SMGW_REVOCATION_ALLOW/);
    });

    it('is INDETERMINATE TRY_LATER when the revocation source answers with an error', async () => {
      const rootCrl = await pki.crl(root);
      const allow = { networks: [], endpoints: [{ host: '127.0.0.1', port: crlPort }] };
      const mail = message(from(withDeadCrlUrl), multipartSigned(entity, await sign(entity, [withDeadCrlUrl])));
      const result = await verifyMessage(
        mail,
        options({
          revocation: 'require',
          crls: [rootCrl],
          fetcher: createRevocationFetcher({ now: () => clock, allow }),
        }),
      );
      assert.equal(summaryHeader(result), 'INDETERMINATE; sub=TRY_LATER');
      assert.match(result.signatures[0]?.sentence.de ?? '', /Sperrstatus/);
    });
  });

  describe('several SignerInfos', () => {
    it('reports every signer: two valid signers pass with signatures=2', async () => {
      const cms = await sign(entity, [alice, bob]);
      const result = await verifyMessage(message(from(alice), multipartSigned(entity, cms)), options());
      assert.equal(summaryHeader(result), 'TOTAL_PASSED; level=basic; signatures=2');
      // DER sorts the SET OF SignerInfo: the order is the encoding's, not the signers'.
      assert.deepEqual(result.signatures.map((s) => s.signer?.emailAddresses[0]).sort(), [alice.email, bob.email]);
    });

    it('is not TOTAL_PASSED when one of two signers is forged', async () => {
      const cms = flipSignatureByte(await sign(entity, [alice, bob]), 1);
      const result = await verifyMessage(message(from(alice), multipartSigned(entity, cms)), options());
      assert.deepEqual(
        result.signatures.map((s) => s.indication),
        ['TOTAL_PASSED', 'TOTAL_FAILED'],
      );
      assert.match(summaryHeader(result), /^TOTAL_FAILED; sub=SIG_CRYPTO_FAILURE(; identity=mismatch)?$/);
    });

    for (const where of ['appended', 'prepended'] as const) {
      it(`fails a valid signature with a forged SignerInfo ${where}`, async () => {
        const good = splitSignedData(await sign(entity, [alice]));
        const other = textPart('Bitte überweisen Sie 10.000 EUR.');
        const forged = splitSignedData(await pki.sign(other, [stranger]));
        const signerInfos =
          where === 'appended'
            ? [...good.signerInfos, ...forged.signerInfos]
            : [...forged.signerInfos, ...good.signerInfos];
        const cms = joinSignedData({
          ...good,
          certificates: [...good.certificates, ...forged.certificates],
          signerInfos,
        });
        const result = await verifyMessage(message(from(alice), multipartSigned(entity, cms)), options());
        assert.equal(result.signatures.length, 2);
        const forgedResult = result.signatures.find((s) => s.signer?.emailAddresses[0] === stranger.email);
        assert.equal(forgedResult?.indication, 'TOTAL_FAILED');
        assert.equal(forgedResult?.subIndication, 'HASH_FAILURE');
        assert.equal(summaryHeader(result), 'TOTAL_FAILED; sub=HASH_FAILURE');
      });
    }

    it('treats a SignedData with zero SignerInfos as not signed', async () => {
      const parts = splitSignedData(await sign(entity, [alice]));
      const cms = joinSignedData({ ...parts, signerInfos: [] });
      const result = await verifyMessage(message(from(alice), multipartSigned(entity, cms)), options());
      assert.equal(summaryHeader(result), 'NONE');
      assert.equal(result.layers[0]?.kind, 'no-signers');
      assert.equal(result.coverage.status, 'none');
    });

    it('judges a detached signature on the shown part, never on content it carries itself', async () => {
      // A valid opaque signature over other text, put under a multipart/signed showing the entity.
      const other = textPart('Ich stimme zu.');
      const cms = await sign(other, [alice], { opaque: true });
      const result = await verifyMessage(message(from(alice), multipartSigned(entity, cms)), options());
      assert.equal(summaryHeader(result), 'TOTAL_FAILED; sub=HASH_FAILURE');
      assert.match(result.layers[0]?.notes.join(' ') ?? '', /carries content of its own; it was ignored/);
      // The same signature shown with the content it signs passes: the shown part is what counts.
      const honest = await verifyMessage(message(from(alice), multipartSigned(other, cms)), options());
      assert.equal(honest.signatures[0]?.indication, 'TOTAL_PASSED');
    });

    it('refuses a second messageDigest attribute or a missing contentType as FORMAT_FAILURE', async () => {
      const cms = await sign(entity, [alice]);
      const MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
      const CONTENT_TYPE = '1.2.840.113549.1.9.3';
      const twice = changeSignedAttributes(cms, (attributes) => [
        ...attributes,
        ...attributes.filter((a) => attributeIs(a, MESSAGE_DIGEST)),
      ]);
      const result = await verifyMessage(message(from(alice), multipartSigned(entity, twice)), options());
      assert.equal(summaryHeader(result), 'TOTAL_FAILED; sub=FORMAT_FAILURE');
      assert.match(result.signatures[0]?.reasons[0] ?? '', /appears twice/);
      const noType = changeSignedAttributes(cms, (attributes) =>
        attributes.filter((a) => !attributeIs(a, CONTENT_TYPE)),
      );
      const missing = await verifyMessage(message(from(alice), multipartSigned(entity, noType)), options());
      assert.equal(summaryHeader(missing), 'TOTAL_FAILED; sub=FORMAT_FAILURE');
      assert.match(missing.signatures[0]?.reasons[0] ?? '', /content-type signed attribute is missing/);
    });

    it('never counts SignerInfos beyond the limit as verified', async () => {
      const parts = splitSignedData(await sign(entity, [alice]));
      const many = joinSignedData({ ...parts, signerInfos: Array(5).fill(parts.signerInfos[0]) });
      const mail = message(from(alice), multipartSigned(entity, many));
      const limited = await verifyMessage(mail, options({ limits: { maxSignersPerLayer: 3 } }));
      assert.deepEqual(
        limited.signatures.map((s) => s.indication),
        ['TOTAL_PASSED', 'TOTAL_PASSED', 'TOTAL_PASSED', 'INDETERMINATE'],
      );
      assert.equal(summaryHeader(limited), 'INDETERMINATE; sub=SIG_CONSTRAINTS_FAILURE');
      const all = await verifyMessage(mail, options());
      assert.equal(summaryHeader(all), 'TOTAL_PASSED; level=basic; signatures=5');
    });

    it('is INDETERMINATE when one signer is trusted and the other is not', async () => {
      const cms = await sign(entity, [alice, stranger]);
      const result = await verifyMessage(message(from(alice), multipartSigned(entity, cms)), options());
      assert.deepEqual(result.signatures.map((s) => s.indication).sort(), ['INDETERMINATE', 'TOTAL_PASSED']);
      assert.equal(summaryHeader(result), 'INDETERMINATE; sub=NO_CERTIFICATE_CHAIN_FOUND');
    });

    it('fails a signature structure that cannot be read: TOTAL_FAILED FORMAT_FAILURE', async () => {
      const result = await verifyMessage(
        message(from(alice), multipartSigned(entity, Buffer.from('not cms'))),
        options(),
      );
      assert.equal(summaryHeader(result), 'TOTAL_FAILED; sub=FORMAT_FAILURE');
    });
  });

  describe('layers and coverage', () => {
    it('marks a signed part under a prepended unsigned text as partial and names what is covered', async () => {
      const cms = await sign(entity, [alice]);
      const mail = message(
        from(alice),
        multipartMixed([textPart('Zahlen Sie bitte sofort an IBAN DE00 0000.'), multipartSigned(entity, cms)]),
      );
      const result = await verifyMessage(mail, options());
      assert.equal(summaryHeader(result), 'TOTAL_PASSED; level=basic; signatures=1; coverage=partial');
      assert.deepEqual(
        result.coverage.covered.map((p) => p.path),
        ['/2/1'],
      );
      assert.deepEqual(
        result.coverage.uncovered.map((p) => p.path),
        ['/1'],
      );
      assert.deepEqual(result.signatures[0]?.covers, { path: '/2/1', description: 'text/plain' });
    });

    it('marks a signed message demoted to an attachment (message/rfc822) as partial', async () => {
      const cms = await sign(entity, [alice]);
      const inner = message(from(alice), multipartSigned(entity, cms));
      const forwarded = Buffer.concat([
        Buffer.from('Content-Type: message/rfc822\r\nContent-Disposition: attachment; filename="original.eml"\r\n\r\n'),
        inner,
      ]);
      const mail = message(from(alice), multipartMixed([textPart('Siehe unten, bestätigt.'), forwarded]));
      const result = await verifyMessage(mail, options());
      assert.equal(summaryHeader(result), 'TOTAL_PASSED; level=basic; signatures=1; coverage=partial');
      assert.equal(result.signatures[0]?.covers?.path, '/2/message/1');
    });

    it('reports a broken inner layer under a valid outer one: the worst result wins', async () => {
      const innerCms = await sign(entity, [bob]);
      const changed = Buffer.from(entity.toString('latin1').replace('Antrag', 'Auftrag'), 'latin1');
      const innerBroken = multipartSigned(changed, innerCms, 'inner-boundary');
      const outerCms = await sign(innerBroken, [alice]);
      const result = await verifyMessage(
        message(from(alice), multipartSigned(innerBroken, outerCms, 'outer')),
        options(),
      );
      assert.deepEqual(
        result.signatures.map((s) => [s.path, s.indication]),
        [
          ['/', 'TOTAL_PASSED'],
          ['/1', 'TOTAL_FAILED'],
        ],
      );
      assert.equal(summaryHeader(result).startsWith('TOTAL_FAILED; sub=HASH_FAILURE'), true);
      assert.equal(result.coverage.status, 'full');
    });

    it('passes signed inside signed (opaque inside detached) with both reported', async () => {
      const inner = opaqueSigned(await sign(entity, [alice], { opaque: true }));
      const outer = await sign(inner, [bob]);
      const result = await verifyMessage(message(from(alice), multipartSigned(inner, outer)), options());
      assert.deepEqual(
        result.layers.map((l) => [l.path, l.kind]),
        [
          ['/', 'smime-detached'],
          ['/1', 'smime-opaque'],
        ],
      );
      assert.equal(summaryHeader(result), 'TOTAL_PASSED; level=basic; signatures=2');
    });

    it('never counts as verified what lies beyond the depth limit', async () => {
      let nested = multipartSigned(entity, await sign(entity, [alice]));
      for (let i = 0; i < 4; i++) nested = multipartMixed([nested], `b${i}`);
      const result = await verifyMessage(message(from(alice), nested), options({ limits: { maxDepth: 3 } }));
      assert.equal(summaryHeader(result), 'INDETERMINATE; sub=SIG_CONSTRAINTS_FAILURE');
      const deepEnough = await verifyMessage(message(from(alice), nested), options());
      assert.equal(summaryHeader(deepEnough), 'TOTAL_PASSED; level=basic; signatures=1');
    });

    it('never lets a signed message pass beside a PDF or an attached message left out at the depth limit', async () => {
      // The PDF's own signatures, had it been examined, could have failed: not examined, it is not passed either.
      const signedText = multipartSigned(entity, await sign(entity, [alice]));
      for (const hidden of [
        Buffer.from('Content-Type: application/pdf; name="bescheid.pdf"\r\n\r\n%PDF-1.7\r\n'),
        Buffer.from('Content-Type: message/rfc822\r\n\r\nSubject: innen\r\n\r\ntext\r\n'),
      ]) {
        let deep: Buffer = hidden;
        for (let i = 0; i < 3; i++) deep = multipartMixed([deep], `d${i}`);
        const mail = message(from(alice), multipartMixed([signedText, deep], 'top'));
        const result = await verifyMessage(mail, options({ limits: { maxDepth: 3 } }));
        assert.equal(summaryHeader(result).startsWith('TOTAL_PASSED'), false, summaryHeader(result));
      }
    });

    it('marks an unsigned HTML alternative beside a signed text as partial', async () => {
      const cms = await sign(entity, [alice]);
      const html = Buffer.from('Content-Type: text/html; charset=utf-8\r\n\r\n<p>Bitte an IBAN DE00 0000 zahlen.</p>');
      const alternative = Buffer.from(
        multipartMixed([multipartSigned(entity, cms), html], 'alt-1')
          .toString('latin1')
          .replace('multipart/mixed', 'multipart/alternative'),
        'latin1',
      );
      const result = await verifyMessage(message(from(alice), alternative), options());
      assert.equal(summaryHeader(result), 'TOTAL_PASSED; level=basic; signatures=1; coverage=partial');
      assert.deepEqual(
        result.coverage.uncovered.map((p) => [p.path, p.description]),
        [['/2', 'text/html']],
      );
    });

    it('refuses to judge a multipart that names its boundary twice (readers may split it differently)', async () => {
      const cms = await sign(entity, [alice]);
      // Split at B (the last boundary parameter, as parseContentType reads it) only the signed part is there; a reader
      // that takes the first (A) shows only the unsigned text.
      const body = Buffer.concat([
        Buffer.from('Content-Type: multipart/mixed; boundary="A"; boundary="B"\r\n\r\n'),
        Buffer.from('--A\r\nContent-Type: text/plain\r\n\r\nBitte an IBAN DE00 0000 zahlen.\r\n--A--\r\n'),
        Buffer.from('--B\r\n'),
        multipartSigned(entity, cms),
        Buffer.from('\r\n--B--\r\n'),
      ]);
      const result = await verifyMessage(message(from(alice), body), options());
      assert.equal(summaryHeader(result), 'TOTAL_FAILED; sub=FORMAT_FAILURE');
      assert.match(result.signatures[0]?.reasons[0] ?? '', /parameter boundary more than once/);
      // A repeated parameter that does not decide the structure is no ambiguity.
      const charset = Buffer.from(
        multipartSigned(entity, cms).toString('latin1').replace('multipart/signed;', 'multipart/signed; x=1; x=2;'),
        'latin1',
      );
      assert.equal(
        summaryHeader(await verifyMessage(message(from(alice), charset), options())),
        'TOTAL_PASSED; level=basic; signatures=1',
      );
    });

    it('refuses to judge a multipart whose Content-Type is too long to read, in time linear in its length', async () => {
      // 1 MB of parameter text without `=`: the regular expression that read it took quadratic time (100 KB: 9 s).
      const cms = await sign(entity, [alice]);
      const signed = multipartSigned(entity, cms).toString('latin1');
      const padded = (length: number) =>
        Buffer.from(signed.replace('multipart/signed;', `multipart/signed; ${'a'.repeat(length)};`), 'latin1');
      const result = await verifyMessage(message(from(alice), padded(1_000_000)), options());
      assert.equal(summaryHeader(result), 'TOTAL_FAILED; sub=FORMAT_FAILURE');
      assert.match(result.signatures[0]?.reasons[0] ?? '', /content-type field too long to read/);
      // A header block over 1 MiB is not read at all: not examined.
      const beyond = await verifyMessage(message(from(alice), padded(1024 * 1024)), options());
      assert.equal(summaryHeader(beyond), 'INDETERMINATE; sub=SIG_CONSTRAINTS_FAILURE');
      assert.match(beyond.signatures[0]?.reasons[0] ?? '', /a header block longer than 1048576 bytes/);
    });

    it('refuses to judge an entity with two Content-Type fields, which readers may take differently', async () => {
      const cms = await sign(entity, [alice]);
      const signed = multipartSigned(entity, cms);
      const doubled = Buffer.concat([Buffer.from('Content-Type: text/plain\r\n'), signed]);
      const result = await verifyMessage(message(from(alice), doubled), options());
      assert.equal(summaryHeader(result), 'TOTAL_FAILED; sub=FORMAT_FAILURE');
      assert.match(result.signatures[0]?.reasons[0] ?? '', /more than one content-type field/);
      // The same inside a signed part: the outer signature holds, the ambiguous part is refused.
      const inner = Buffer.concat([
        Buffer.from('Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n'),
        entity,
      ]);
      const outer = await verifyMessage(
        message(from(alice), multipartSigned(inner, await sign(inner, [alice]))),
        options(),
      );
      assert.deepEqual(
        outer.signatures.map((s) => s.indication),
        ['TOTAL_PASSED', 'TOTAL_FAILED'],
      );
      // Doubled fields on a plain unsigned text are only noted.
      const plain = Buffer.concat([Buffer.from('Content-Type: text/html\r\n'), entity]);
      const unsigned = await verifyMessage(message(from(alice), plain), options());
      assert.equal(summaryHeader(unsigned), 'NONE');
      assert.match(unsigned.parts[0]?.description ?? '', /ambiguous header/);
    });

    it('reports an encrypted layer as encrypted and not verified', async () => {
      const encrypted = Buffer.from(
        'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHA6CAMIACAQAxggE=\r\n',
      );
      const result = await verifyMessage(message(from(alice), encrypted), options());
      assert.equal(summaryHeader(result), 'NONE');
      assert.equal(result.layers[0]?.kind, 'encrypted');
      assert.match(result.parts[0]?.description ?? '', /encrypted, not verified/);
    });

    it('says NONE for an unsigned message', async () => {
      const result = await verifyMessage(message(from(alice), entity), options());
      assert.equal(summaryHeader(result), 'NONE');
      assert.equal(result.identity.status, 'not-applicable');
    });
  });

  describe('CAdES attachments', () => {
    const pdf = Buffer.from('%PDF-1.7\n% a document\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n');

    it('verifies a .p7s against the document it is named after', async () => {
      const p7s = await sign(pdf, [alice], { extra: ['-cades'] });
      const mail = message(
        from(alice),
        multipartMixed([
          textPart('Anbei der Vertrag.'),
          attachment('vertrag.pdf', 'application/pdf', pdf),
          attachment('anlage.pdf', 'application/pdf', Buffer.from('%PDF-1.7 other')),
          attachment('vertrag.pdf.p7s', 'application/pkcs7-signature', p7s),
        ]),
      );
      const result = await verifyMessage(mail, options());
      assert.equal(result.layers[0]?.kind, 'cades-detached');
      assert.equal(result.signatures[0]?.covers?.path, '/2');
      assert.equal(summaryHeader(result), 'TOTAL_PASSED; level=AdES; signatures=1; coverage=partial');
      assert.deepEqual(
        result.coverage.uncovered.map((p) => p.path),
        ['/1', '/3'],
      );
    });

    it('pairs an unnamed .p7s with the document before it', async () => {
      const p7s = await sign(pdf, [alice]);
      const mail = message(
        from(alice),
        multipartMixed([
          attachment('a.pdf', 'application/pdf', pdf),
          attachment('signatur.p7s', 'application/pkcs7-signature', p7s),
        ]),
      );
      const result = await verifyMessage(mail, options());
      assert.equal(summaryHeader(result), 'TOTAL_PASSED; level=basic; signatures=1');
    });

    it('is INDETERMINATE SIGNED_DATA_NOT_FOUND with coverage partial for a .p7s without its document', async () => {
      const p7s = await sign(pdf, [alice]);
      const mail = message(
        from(alice),
        multipartMixed([textPart('Anbei.'), attachment('vertrag.pdf.p7s', 'application/pkcs7-signature', p7s)]),
      );
      const result = await verifyMessage(mail, options());
      // The signature covers nothing the reader sees: the text stands unsigned beside it.
      assert.equal(summaryHeader(result), 'INDETERMINATE; sub=SIGNED_DATA_NOT_FOUND; coverage=partial');
      assert.deepEqual(
        result.coverage.uncovered.map((p) => p.path),
        ['/1'],
      );
    });

    it('fails a .p7s whose document was exchanged', async () => {
      const p7s = await sign(pdf, [alice]);
      const mail = message(
        from(alice),
        multipartMixed([
          attachment('vertrag.pdf', 'application/pdf', Buffer.from('%PDF-1.7 a different contract')),
          attachment('vertrag.pdf.p7s', 'application/pkcs7-signature', p7s),
        ]),
      );
      const result = await verifyMessage(mail, options());
      assert.equal(summaryHeader(result), 'TOTAL_FAILED; sub=HASH_FAILURE');
    });

    it('verifies a .p7m and returns its document unwrapped', async () => {
      const p7m = await sign(pdf, [alice], { opaque: true });
      const mail = message(
        from(alice),
        multipartMixed([textPart('Anbei.'), attachment('vertrag.pdf.p7m', 'application/pkcs7-mime', p7m)]),
      );
      const result = await verifyMessage(mail, options());
      assert.equal(result.layers[0]?.kind, 'cades-enveloping');
      assert.equal(summaryHeader(result), 'TOTAL_PASSED; level=basic; signatures=1; coverage=partial');
      assert.equal(result.unwrapped.length, 1);
      assert.equal(result.unwrapped[0]?.filename, 'vertrag.pdf');
      assert.deepEqual(result.unwrapped[0]?.content, pdf);
      assert.deepEqual(result.unwrapped[0]?.signatureIds, ['S1']);
    });
  });

  describe('limits on a stranger’s structure', () => {
    /** A multipart of `count` tiny parts, with `withP7s` every second a `.p7s` (1.2 MB of those cost 30 s). */
    const manyParts = (count: number, withP7s: boolean) =>
      Buffer.from(
        `Content-Type: multipart/mixed; boundary="many"\r\n\r\n${Array.from({ length: count }, (_, i) =>
          withP7s && i % 2 === 1
            ? `--many\r\nContent-Type: application/octet-stream; name="z${i}.p7s"\r\n\r\nx\r\n`
            : `--many\r\nContent-Type: text/plain; name="d${i}.txt"\r\n\r\nx\r\n`,
        ).join('')}--many--\r\n`,
      );

    it('examines 500 parts of a 20,000-part message and reports the rest as one entry, not examined', async () => {
      const result = await verifyMessage(message(from(alice), manyParts(20_000, true)), options());
      // The root and 499 of its parts (250 documents, 249 .p7s), then one part for the 19,501 never parsed.
      assert.equal(result.parts.length, 500);
      assert.deepEqual(
        [result.parts.at(-1)?.path, result.parts.at(-1)?.description],
        ['/500', '19501 of the 20000 parts of multipart/mixed (from /500 on), not examined'],
      );
      // 16 unreadable .p7s, one entry for the 233 beyond the signature-layer limit, one for the parts not examined.
      assert.equal(result.layers.length, 18);
      assert.equal(result.signatures.length, 18);
      const notExamined = result.signatures.filter((s) => s.format === 'not examined');
      assert.deepEqual(
        notExamined.map((s) => [s.path, s.indication, s.subIndication, s.reasons[0]]),
        [
          [
            '/34',
            'INDETERMINATE',
            'SIG_CONSTRAINTS_FAILURE',
            'more than 16 signature layers: this one and 232 further (the last at /498) were not examined',
          ],
          [
            '/',
            'INDETERMINATE',
            'SIG_CONSTRAINTS_FAILURE',
            '19501 of its 20000 parts (from /500 on) beyond the limit of 500 parts: not examined',
          ],
        ],
      );
      // The worst result still leads the summary; nothing there is passed.
      assert.equal(summaryHeader(result), 'TOTAL_FAILED; sub=FORMAT_FAILURE');
      assert.equal(
        result.signatures.some((s) => s.indication === 'TOTAL_PASSED'),
        false,
      );
    });

    it('never passes a signed message whose parts lie beyond the limit, and still verifies its signature', async () => {
      const inner = manyParts(2_000, false);
      const result = await verifyMessage(message(from(alice), multipartSigned(inner, await sign(inner, [alice]))), {
        ...options(),
        limits: { maxParts: 100 },
      });
      assert.deepEqual(
        result.signatures.map((s) => [s.path, s.indication, s.subIndication]),
        [
          ['/', 'TOTAL_PASSED', undefined],
          ['/1', 'INDETERMINATE', 'SIG_CONSTRAINTS_FAILURE'],
        ],
      );
      assert.match(result.signatures[1]?.reasons[0] ?? '', /^1902 of its 2000 parts \(from \/1\/99 on\)/);
      assert.equal(summaryHeader(result), 'INDETERMINATE; sub=SIG_CONSTRAINTS_FAILURE');
      // What was not examined is still inside the outer signature: covered, and listed as one part.
      assert.equal(result.parts.length, 99);
      assert.equal(result.coverage.status, 'full');
    });

    it('parses no more parts of a multipart/signed with too many parts than the limit leaves', async () => {
      const body = manyParts(2_000, false)
        .toString('latin1')
        .replace('multipart/mixed;', 'multipart/signed; protocol="application/pkcs7-signature";');
      const result = await verifyMessage(message(from(alice), Buffer.from(body, 'latin1')), {
        ...options(),
        limits: { maxParts: 100 },
      });
      assert.deepEqual(
        result.signatures.map((s) => [s.path, s.indication, s.subIndication, s.reasons[0]]),
        [
          ['/', 'TOTAL_FAILED', 'FORMAT_FAILURE', 'multipart/signed has 2000 parts instead of 2'],
          [
            '/',
            'INDETERMINATE',
            'SIG_CONSTRAINTS_FAILURE',
            '1901 of its 2000 parts (from /100 on) beyond the limit of 100 parts: not examined',
          ],
        ],
      );
      assert.equal(result.parts.length, 100);
    });

    it('counts every signature layer beyond the limit in one entry, not examined', async () => {
      const signed = await Promise.all(
        [1, 2, 3, 4].map(async (n) => {
          const text = textPart(`Teil ${n}`);
          return multipartSigned(text, await sign(text, [alice]), `sig-${n}`);
        }),
      );
      const result = await verifyMessage(message(from(alice), multipartMixed(signed)), {
        ...options(),
        limits: { maxSignatureLayers: 2 },
      });
      assert.deepEqual(
        result.signatures.map((s) => [s.path, s.indication, s.reasons[0] ?? '']),
        [
          ['/1', 'TOTAL_PASSED', ''],
          ['/2', 'TOTAL_PASSED', ''],
          [
            '/3',
            'INDETERMINATE',
            'more than 2 signature layers: this one and 1 further (the last at /4) were not examined',
          ],
        ],
      );
      assert.equal(result.layers.length, 3);
      assert.equal(summaryHeader(result), 'INDETERMINATE; sub=SIG_CONSTRAINTS_FAILURE; coverage=partial');
    });

    it('lists at most maxReportedSignatures entries: those beyond stand as one, with their worst result', async () => {
      const texts = [1, 2, 3, 4].map((n) => textPart(`Teil ${n}`));
      const cms = await Promise.all(texts.map((t) => sign(t, [alice])));
      // The fourth signature is over other text: HASH_FAILURE, beyond the listed two.
      const tampered = textPart('Teil 4, geändert');
      const signed = texts.map((t, i) => multipartSigned(i === 3 ? tampered : t, cms[i] as Buffer, `sig-${i}`));
      const result = await verifyMessage(message(from(alice), multipartMixed(signed)), {
        ...options(),
        limits: { maxReportedSignatures: 2 },
      });
      assert.deepEqual(
        result.signatures.map((s) => [s.id, s.indication, s.subIndication]),
        [
          ['S1', 'TOTAL_PASSED', undefined],
          ['S2', 'TOTAL_PASSED', undefined],
          ['S3', 'TOTAL_FAILED', 'HASH_FAILURE'],
        ],
      );
      assert.equal(
        result.signatures[2]?.reasons[0],
        "2 further signature entries beyond the report's limit of 2 are not listed; the worst of them: TOTAL_FAILED HASH_FAILURE (S/MIME multipart/signed (CMS, detached) at /4)",
      );
      assert.equal(summaryHeader(result), 'TOTAL_FAILED; sub=HASH_FAILURE');
      // Every layer names listed entries only.
      assert.deepEqual(
        result.layers.map((l) => l.signatureIds),
        [['S1'], ['S2'], ['S3'], ['S3']],
      );
    });

    it('never passes a message whose signature entries are not all listed, though every one passed', async () => {
      const parts = splitSignedData(await sign(entity, [alice]));
      const many = joinSignedData({ ...parts, signerInfos: Array(5).fill(parts.signerInfos[0]) });
      const mail = message(from(alice), multipartSigned(entity, many));
      const result = await verifyMessage(mail, options({ limits: { maxReportedSignatures: 3 } }));
      assert.deepEqual(
        result.signatures.map((s) => [s.indication, s.subIndication]),
        [
          ['TOTAL_PASSED', undefined],
          ['TOTAL_PASSED', undefined],
          ['TOTAL_PASSED', undefined],
          ['INDETERMINATE', 'SIG_CONSTRAINTS_FAILURE'],
        ],
      );
      assert.match(
        result.signatures[3]?.reasons[0] ?? '',
        /^2 further signature entries .* the worst of them: TOTAL_PASSED/,
      );
      assert.equal(summaryHeader(result), 'INDETERMINATE; sub=SIG_CONSTRAINTS_FAILURE');
      assert.equal(summaryHeader(await verifyMessage(mail, options())), 'TOTAL_PASSED; level=basic; signatures=5');
    });

    /** A part whose header is `lines` short fields (1.2 MB for 150,000: 31 MB of them took 2.3–9.6 s of the walk). */
    const manyFieldsPart = (lines: number) =>
      Buffer.from(`${'X-A: b\r\n'.repeat(lines)}Content-Type: text/plain\r\n\r\nx`, 'latin1');

    it('does not read a part of more header lines than the walk has left: not examined, never passed', async () => {
      const signed = multipartSigned(entity, await sign(entity, [alice]));
      const mail = message(from(alice), multipartMixed([signed, manyFieldsPart(150_000), textPart('Danach.')]));
      const result = await verifyMessage(mail, options());
      assert.deepEqual(
        result.signatures.map((s) => [s.path, s.indication, s.subIndication, s.format]),
        // The parts' headers are read before any part is walked: the one beyond the limit is found first.
        [
          ['/2', 'INDETERMINATE', 'SIG_CONSTRAINTS_FAILURE', 'not examined'],
          ['/1', 'TOTAL_PASSED', undefined, 'S/MIME multipart/signed (CMS, detached)'],
        ],
      );
      assert.equal(
        result.signatures[0]?.reasons[0],
        'the header of this entity is beyond the limit of 100000 header lines in all, or of 1048576 bytes for one header (more than 99995 header lines left to read): not examined',
      );
      // It stands as a part the reader sees, not examined (listed when its header was tried); the part after it is
      // read (its header fits).
      assert.deepEqual(
        result.parts.map((p) => [p.path, p.description]),
        [
          ['/2', 'an entity whose header was not read (beyond the limit), not examined'],
          ['/1/1', 'text/plain'],
          ['/3', 'text/plain'],
        ],
      );
      assert.equal(summaryHeader(result), 'INDETERMINATE; sub=SIG_CONSTRAINTS_FAILURE; coverage=partial');
    });

    it('counts header lines over the whole walk, folded ones and those of attached messages too', async () => {
      const folded = Buffer.from(`X-A: b${'\r\n b'.repeat(40)}\r\nSubject: x\r\n\r\ntext`, 'latin1');
      const attached = (n: number) =>
        Buffer.from(`Content-Type: message/rfc822\r\nX-N: ${n}\r\n\r\n${folded.toString('latin1')}`, 'latin1');
      const mail = message(from(alice), multipartMixed([attached(1), attached(2), attached(3), attached(4)]));
      const result = await verifyMessage(mail, options({ limits: { maxHeaderLines: 120 } }));
      // The root's 4 lines, the parts' 2 each, then each message's 42: 12 + 2 × 42 = 96, and the third is beyond 120.
      assert.deepEqual(
        result.signatures.map((s) => [s.path, s.indication, s.reasons[0]]),
        [
          [
            '/3/message',
            'INDETERMINATE',
            'headers beyond the limit of 120 header lines in all, or of 1048576 bytes for one header: this entity and 1 further (the last at /4/message) were not examined',
          ],
        ],
      );
      assert.deepEqual(
        result.parts.map((p) => p.path),
        ['/1/message', '/2/message', '/3/message', '/4/message'],
      );
      assert.equal(summaryHeader(result), 'INDETERMINATE; sub=SIG_CONSTRAINTS_FAILURE');
    });

    it('examines nothing of a message whose own header is beyond the limit, and checks no sender', async () => {
      const signed = multipartSigned(entity, await sign(entity, [alice]));
      const fields = [...from(alice), ...Array.from({ length: 150_000 }, () => 'X-A: b')];
      const result = await verifyMessage(message(fields, signed), options());
      assert.deepEqual(
        result.signatures.map((s) => [s.path, s.indication, s.subIndication]),
        [['/', 'INDETERMINATE', 'SIG_CONSTRAINTS_FAILURE']],
      );
      assert.match(result.signatures[0]?.reasons[0] ?? '', /more than 100000 header lines left to read/);
      assert.equal(summaryHeader(result), 'INDETERMINATE; sub=SIG_CONSTRAINTS_FAILURE');
    });
  });

  describe('identity', () => {
    const signedBy = async (signer: Signer, fields: string[]) =>
      verifyMessage(message(fields, multipartSigned(entity, await sign(entity, [signer]))), options());

    it('matches the From address case-insensitively in the domain only', async () => {
      const ok = await signedBy(alice, ['From: Alice <alice@PARTNER.example>']);
      assert.equal(ok.identity.status, 'match');
      const local = await signedBy(alice, ['From: Alice <Alice@partner.example>']);
      assert.equal(local.identity.status, 'mismatch');
    });

    const variants: Array<[string, string[]]> = [
      ['another From address', ['From: Mallory <mallory@evil.example>']],
      ['several From fields', ['From: alice@partner.example', 'From: mallory@evil.example']],
      ['two addresses in one From', ['From: alice@partner.example, mallory@evil.example']],
      ['an empty From', ['From: ']],
      ['no From at all', ['To: poststelle@behoerde.example']],
      ['a name without address', ['From: Alice']],
      ['the signer’s address only in the display name', ['From: "alice@partner.example" <mallory@evil.example>']],
      ['another address shown in the display name', ['From: "ceo@behoerde.example" <alice@partner.example>']],
      ['a Sender that is not the signer', ['From: alice@partner.example', 'Sender: mallory@evil.example']],
    ];
    for (const [label, fields] of variants) {
      it(`flags identity=mismatch for ${label}`, async () => {
        const result = await signedBy(alice, fields);
        assert.equal(result.identity.status, 'mismatch', JSON.stringify(result.identity));
        assert.ok(result.identity.problems.length > 0);
        assert.equal(summaryHeader(result), 'TOTAL_PASSED; level=basic; signatures=1; identity=mismatch');
      });
    }

    it('matches two From addresses when each is a signer’s', async () => {
      const cms = await sign(entity, [alice, bob]);
      const result = await verifyMessage(
        message(['From: alice@partner.example, bob@partner.example'], multipartSigned(entity, cms)),
        options(),
      );
      assert.equal(result.identity.status, 'match');
    });

    it('does not take a forged signer’s certificate as proof of identity', async () => {
      const both = await sign(entity, [alice, bob]);
      const signedBoth = await verifyMessage(message(from(alice), multipartSigned(entity, both)), options());
      const aliceIndex = signedBoth.signatures.find((s) => s.signer?.emailAddresses[0] === alice.email)?.signerIndex;
      const cms = flipSignatureByte(both, aliceIndex);
      const result = await verifyMessage(message(from(alice), multipartSigned(entity, cms)), options());
      assert.equal(result.identity.status, 'mismatch');
      assert.deepEqual(result.identity.signerAddresses, [bob.email]);
      assert.equal(summaryHeader(result), 'TOTAL_FAILED; sub=SIG_CRYPTO_FAILURE; identity=mismatch');
      const alone = await verifyMessage(
        message(from(alice), multipartSigned(entity, flipSignatureByte(await sign(entity, [alice])))),
        options(),
      );
      assert.equal(alone.identity.status, 'not-applicable');
    });

    // RFC 8551 §3.1: a signer may wrap a whole message (message/rfc822) to protect its header, and a reader may show
    // that inner header as the message's; so may protected headers (RFC 9788: From on the signed entity itself). A
    // From there is signed by the signer, not proven to be the signer: it must be held by a signer like the outer one.
    const wrapped = (inner: string[]) =>
      Buffer.concat([
        Buffer.from('Content-Type: message/rfc822\r\n\r\n'),
        message([...inner, 'Subject: Zahlungsanweisung'], entity),
      ]);
    const protectedHeaders = (inner: string[]) =>
      Buffer.concat([
        Buffer.from(
          `Content-Type: text/plain; charset=utf-8; protected-headers="v1"\r\n${inner.map((f) => `${f}\r\n`).join('')}\r\nText\r\n`,
        ),
      ]);
    for (const [label, content] of [
      ['a wrapped message (RFC 8551 §3.1)', wrapped(['From: Chef <ceo@behoerde.example>'])],
      ['protected headers on the signed entity', protectedHeaders(['From: Chef <ceo@behoerde.example>'])],
      ['a Sender in a wrapped message', wrapped(['From: alice@partner.example', 'Sender: ceo@behoerde.example'])],
    ] as const) {
      it(`flags identity=mismatch for a From or Sender the signer signed but does not hold: ${label}`, async () => {
        const mail = message(from(alice), opaqueSigned(await sign(content, [alice], { opaque: true })));
        const result = await verifyMessage(mail, options());
        assert.equal(result.identity.status, 'mismatch', JSON.stringify(result.identity));
        assert.match(result.identity.problems.join(' '), /ceo@behoerde\.example/);
        assert.equal(summaryHeader(result), 'TOTAL_PASSED; level=basic; signatures=1; identity=mismatch');
        const detached = await verifyMessage(
          message(from(alice), multipartSigned(content, await sign(content, [alice]))),
          options(),
        );
        assert.equal(detached.identity.status, 'mismatch', JSON.stringify(detached.identity));
      });
    }

    it('matches a wrapped message whose From is the signer’s, and a forwarded message inside the signed content', async () => {
      const same = wrapped(['From: Alice <alice@partner.example>']);
      const result = await verifyMessage(
        message(from(alice), multipartSigned(same, await sign(same, [alice]))),
        options(),
      );
      assert.equal(result.identity.status, 'match', JSON.stringify(result.identity));
      // A message the signer forwards as an attachment beside its own text is someone else's: not the signer's From.
      const forwarded = multipartMixed([
        entity,
        Buffer.concat([
          Buffer.from('Content-Type: message/rfc822\r\n\r\n'),
          message(['From: ceo@behoerde.example'], entity),
        ]),
      ]);
      const beside = await verifyMessage(
        message(from(alice), multipartSigned(forwarded, await sign(forwarded, [alice]))),
        options(),
      );
      assert.equal(beside.identity.status, 'match', JSON.stringify(beside.identity));
    });

    it('takes a signing time with a field out of range for no time, and years 0–99 as written', async () => {
      // Month 13 or second 99 rolled over into another time: 9999-13-… became the year 10000, which the XML report's
      // xs:dateTime cannot state (`+010000-…`), so a report failing its schema was attached. Years below 100 were
      // read as 19xx (Date.UTC).
      const cms = await sign(entity, [alice]);
      const claimed = async (time: string) => {
        const changed = changeSignedAttributes(cms, (attributes) =>
          attributes.map((a) =>
            attributeIs(a, '1.2.840.113549.1.9.5')
              ? tlv(
                  0x30,
                  Buffer.concat([ber.readBer(a).children[0]?.raw as Buffer, tlv(0x31, tlv(0x18, Buffer.from(time)))]),
                )
              : a,
          ),
        );
        const result = await verifyMessage(message(from(alice), multipartSigned(entity, changed)), options());
        return result.signatures[0]?.claimedSigningTime?.toISOString();
      };
      assert.equal(await claimed('99991231235959Z'), '9999-12-31T23:59:59.000Z');
      assert.equal(await claimed('99991301000000Z'), undefined);
      assert.equal(await claimed('20260230120000Z'), undefined);
      assert.equal(await claimed('20260101129960Z'), undefined);
      assert.equal(await claimed('00500101000000Z'), '0050-01-01T00:00:00.000Z');
    });

    it('flags a signing time after the Date header and one in the future', async () => {
      const cms = await sign(entity, [alice]);
      const mail = message([...from(alice), 'Date: Mon, 1 Jan 2024 10:00:00 +0000'], multipartSigned(entity, cms));
      const now = await verifyMessage(mail, options());
      assert.deepEqual(
        now.signingTimeFindings.map((f) => f.kind),
        ['AFTER_DATE_HEADER'],
      );
      const earlier = await verifyMessage(mail, options({ now: () => new Date(clock.getTime() - 2 * 60 * 60 * 1000) }));
      assert.deepEqual(earlier.signingTimeFindings.map((f) => f.kind).sort(), ['AFTER_DATE_HEADER', 'IN_FUTURE']);
    });
  });
});
