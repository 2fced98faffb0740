// A list the test writes and signs itself: a test CA listed as a granted CA/QC with QCWithSSCD and QCForESig
// for its qualified policy, later withdrawn; qualified status before and after, and the list's own signature
// under attack (wrong key, tampering, a second signature, a signature over less than the list, expired signer).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { type LoadedTrustedList, loadTrustedList, qualifiedStatusAt, TrustedListError } from '../src/index.ts';
import {
  CA_EXTENSIONS,
  OTHER_POLICY,
  QUALIFIED_POLICY,
  signerExtensions,
  type TestKeyPair,
  TestPki,
} from './test-pki.ts';
import { FOR_E_SIGNATURES, QUALIFIER, STATUS, signList, type TestList, writeList } from './write-list.ts';

const DAY = 86_400_000;
const pki = new TestPki();
let root: TestKeyPair;
let qualifiedCa: TestKeyPair;
let otherCa: TestKeyPair;
let qualifiedSigner: TestKeyPair;
let otherPolicySigner: TestKeyPair;
let strangerSigner: TestKeyPair;
let listSigner: TestKeyPair;
let wrongSigner: TestKeyPair;
/** The test clock: inside the list signer's validity, derived from the certificate, not from the wall clock. */
let now: Date;
let granted: Date;
let withdrawn: Date;

function description(): TestList {
  return {
    territory: 'XA',
    sequence: 7,
    issued: new Date(now.getTime() - DAY),
    nextUpdate: new Date(now.getTime() + 180 * DAY),
    providers: [
      {
        name: 'Test Trust Services <&> GmbH',
        services: [
          {
            name: 'Test Qualified CA',
            cert: qualifiedCa.der,
            additionalServiceInformation: [FOR_E_SIGNATURES],
            current: { status: STATUS('withdrawn'), since: withdrawn },
            history: [
              {
                status: STATUS('granted'),
                since: granted,
                qualifications: [
                  { qualifiers: [QUALIFIER('QCWithSSCD'), QUALIFIER('QCForESig')], policy: QUALIFIED_POLICY },
                ],
              },
            ],
          },
        ],
      },
    ],
  };
}

function load(xml: string, signer: TestKeyPair = listSigner, at = now): LoadedTrustedList {
  return loadTrustedList(Buffer.from(xml), { signerCertificates: [signer.certPem], now: at, source: 'XA.xml' });
}

function refusedWith(code: string): (err: unknown) => boolean {
  return (err) => err instanceof TrustedListError && err.code === code;
}

before(() => {
  root = pki.selfSigned('root');
  qualifiedCa = pki.issued('qualified-ca', root, CA_EXTENSIONS);
  otherCa = pki.issued('other-ca', root, CA_EXTENSIONS);
  // The certificate itself has QcCompliance but no QcSSCD: the list's QCWithSSCD supplies it.
  qualifiedSigner = pki.issued(
    'signer',
    qualifiedCa,
    signerExtensions({ policy: QUALIFIED_POLICY, qcCompliance: true, qcSSCD: false }),
  );
  otherPolicySigner = pki.issued(
    'signer-other-policy',
    qualifiedCa,
    signerExtensions({ policy: OTHER_POLICY, qcCompliance: true, qcSSCD: false }),
  );
  strangerSigner = pki.issued(
    'stranger',
    otherCa,
    signerExtensions({ policy: QUALIFIED_POLICY, qcCompliance: true, qcSSCD: true }),
  );
  listSigner = pki.selfSigned('list-signer', ['keyUsage=critical,digitalSignature,nonRepudiation']);
  wrongSigner = pki.selfSigned('wrong-signer', ['keyUsage=critical,digitalSignature,nonRepudiation']);
  now = new Date(listSigner.cert.validFromDate.getTime() + 10 * DAY);
  granted = new Date(now.getTime() - 400 * DAY);
  withdrawn = new Date(now.getTime() - 100 * DAY);
});
after(() => pki.remove());

describe('a list the test writes and signs', () => {
  it('loads with its signer certificate and reads the service, its history and its qualifiers', () => {
    const loaded = load(signList(writeList(description()), listSigner));
    assert.equal(loaded.list.territory, 'XA');
    assert.equal(loaded.list.sequenceNumber, 7);
    assert.equal(loaded.stale, false);
    const [provider] = loaded.list.providers;
    assert.equal(provider?.name[0]?.value, 'Test Trust Services <&> GmbH');
    const service = provider?.services[0];
    assert.equal(service?.current.status, STATUS('withdrawn'));
    assert.equal(service?.history[0]?.status, STATUS('granted'));
    assert.deepEqual(service?.history[0]?.extensions.qualifications[0]?.qualifiers, [
      QUALIFIER('QCWithSSCD'),
      QUALIFIER('QCForESig'),
    ]);
    assert.deepEqual(service?.history[0]?.extensions.qualifications[0]?.criteria.policySets, [[QUALIFIED_POLICY]]);
  });

  it('a signer of the listed CA signing while it was granted is qualified, with a QSCD from QCWithSSCD', () => {
    const lists = [load(signList(writeList(description()), listSigner))];
    const at = new Date(withdrawn.getTime() - 30 * DAY);
    const status = qualifiedStatusAt(lists, { chain: [qualifiedSigner.der, qualifiedCa.der, root.der] }, at);
    assert.equal(status.qualified, true, status.reason);
    assert.equal(status.qscd, true);
    assert.equal(status.type, 'esign');
    assert.equal(status.qualifiedForESignatureWithQscd, true);
    assert.equal(status.status, 'granted');
    assert.equal(status.statusSince?.getTime(), granted.getTime());
    assert.equal(status.serviceName, 'Test Qualified CA');
    assert.equal(status.territory, 'XA');
    assert.equal(status.matchedBy, 'certificate');
    assert.deepEqual(status.qualifiersApplied, ['QCWithSSCD', 'QCForESig']);
  });

  it('the same signer signing after the withdrawal is not qualified, and the status says withdrawn', () => {
    const lists = [load(signList(writeList(description()), listSigner))];
    const at = new Date(withdrawn.getTime() + DAY);
    const status = qualifiedStatusAt(lists, { chain: [qualifiedSigner.der, qualifiedCa.der] }, at);
    assert.equal(status.qualified, false);
    assert.equal(status.status, 'withdrawn');
    assert.match(status.reason, /withdrawn/);
  });

  it('before the service was listed, the signer is not qualified', () => {
    const lists = [load(signList(writeList(description()), listSigner))];
    const status = qualifiedStatusAt(
      lists,
      { chain: [qualifiedSigner.der, qualifiedCa.der] },
      new Date(granted.getTime() - DAY),
    );
    assert.equal(status.qualified, false);
    assert.match(status.reason, /not yet listed/);
  });

  it("a certificate outside the qualifiers' policy keeps its own QC statements: qualified, but no QSCD", () => {
    const lists = [load(signList(writeList(description()), listSigner))];
    const at = new Date(withdrawn.getTime() - 30 * DAY);
    const status = qualifiedStatusAt(lists, { chain: [otherPolicySigner.der, qualifiedCa.der] }, at);
    assert.equal(status.qualified, true);
    assert.equal(status.qscd, false);
    assert.deepEqual(status.qualifiersApplied, []);
    assert.equal(status.qualifiedForESignatureWithQscd, false);
  });

  it('a certificate without QcCompliance from the listed CA is not qualified', () => {
    const lists = [load(signList(writeList(description()), listSigner))];
    const at = new Date(withdrawn.getTime() - 30 * DAY);
    const status = qualifiedStatusAt(lists, { chain: [qualifiedSigner.der, qualifiedCa.der] }, at, {
      qcCompliance: false,
      qcSSCD: false,
    });
    assert.equal(status.qualified, false);
    assert.match(status.reason, /no QcCompliance/);
  });

  it('a signer from a CA the list does not name is not qualified, whatever its certificate claims', () => {
    const lists = [load(signList(writeList(description()), listSigner))];
    const status = qualifiedStatusAt(
      lists,
      { chain: [strangerSigner.der, otherCa.der] },
      new Date(withdrawn.getTime() - DAY),
    );
    assert.equal(status.qualified, false);
    assert.match(status.reason, /not a service in any trusted list/);
  });

  it("a CA with the listed CA's name but another key is not taken for it", () => {
    const impostor = pki.issued('impostor-ca', root, CA_EXTENSIONS, '/C=XA/O=SMGW Test/CN=qualified-ca');
    const lists = [load(signList(writeList(description()), listSigner))];
    const status = qualifiedStatusAt(lists, { issuer: impostor.der }, new Date(withdrawn.getTime() - DAY), {
      qcCompliance: true,
      qcSSCD: true,
    });
    assert.equal(status.qualified, false);
  });

  it('a service listed by SKI and subject name only is matched by them', () => {
    const desc = description();
    const service = desc.providers[0]?.services[0];
    assert.ok(service);
    service.cert = undefined;
    service.skiAndSubject = {
      ski: skiOf(qualifiedCa),
      subject: 'CN=qualified-ca, O=SMGW Test, C=XA',
    };
    const lists = [load(signList(writeList(desc), listSigner))];
    const status = qualifiedStatusAt(
      lists,
      { chain: [qualifiedSigner.der, qualifiedCa.der] },
      new Date(withdrawn.getTime() - DAY),
    );
    assert.equal(status.qualified, true, status.reason);
    assert.equal(status.matchedBy, 'skiAndSubject');
  });

  it('two services for the same CA that disagree at signing time give not qualified, never the favourable one', () => {
    const desc = description();
    desc.providers[0]?.services.push({
      name: 'Test Qualified CA (second entry)',
      cert: qualifiedCa.der,
      current: {
        status: STATUS('granted'),
        since: granted,
        qualifications: [{ qualifiers: [QUALIFIER('NotQualified')], policy: QUALIFIED_POLICY }],
      },
    });
    const lists = [load(signList(writeList(desc), listSigner))];
    const status = qualifiedStatusAt(
      lists,
      { chain: [qualifiedSigner.der, qualifiedCa.der] },
      new Date(withdrawn.getTime() - DAY),
    );
    assert.equal(status.qualified, false);
    assert.match(status.reason, /conflicting services/);
  });

  it('a list past its NextUpdate is still used but flagged stale, and so is the status drawn from it', () => {
    const desc = { ...description(), nextUpdate: new Date(now.getTime() - DAY) };
    const loaded = load(signList(writeList(desc), listSigner));
    assert.equal(loaded.stale, true);
    const status = qualifiedStatusAt(
      [loaded],
      { chain: [qualifiedSigner.der, qualifiedCa.der] },
      new Date(withdrawn.getTime() - DAY),
    );
    assert.equal(status.listStale, true);
    assert.match(status.reason, /past its NextUpdate/);
  });
});

describe('the list signature under attack', () => {
  it('a list signed with another key is refused', () => {
    assert.throws(() => load(signList(writeList(description()), wrongSigner)), refusedWith('TL_SIGNATURE_INVALID'));
  });

  it('a list signed with SHA-1, or whose reference over the list is a SHA-1 digest, is refused', () => {
    const sha256 = {
      signature: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
      digest: 'http://www.w3.org/2001/04/xmlenc#sha256',
    };
    const sha1Signature = { ...sha256, signature: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1' };
    const sha1Digest = { ...sha256, digest: 'http://www.w3.org/2000/09/xmldsig#sha1' };
    assert.throws(
      () => load(signList(writeList(description()), listSigner, '/*', sha1Signature)),
      refusedWith('TL_SIGNATURE_INVALID'),
    );
    assert.throws(
      () => load(signList(writeList(description()), listSigner, '/*', sha1Digest)),
      refusedWith('TL_SIGNATURE_INVALID'),
    );
    assert.ok(load(signList(writeList(description()), listSigner, '/*', sha256)));
  });

  it('a list changed after signing (withdrawn turned back into granted) is refused', () => {
    const signed = signList(writeList(description()), listSigner);
    const tampered = signed.replace(STATUS('withdrawn'), STATUS('granted'));
    assert.notEqual(tampered, signed);
    assert.throws(() => load(tampered), refusedWith('TL_SIGNATURE_INVALID'));
  });

  it('a service added after signing is refused', () => {
    const signed = signList(writeList(description()), listSigner);
    const forged = signed.replace('</TSPServices>', `<TSPService><ServiceInformation/></TSPService></TSPServices>`);
    assert.throws(() => load(forged), refusedWith('TL_SIGNATURE_INVALID'));
  });

  it('a second signature in the list is refused', () => {
    const signed = signList(writeList(description()), listSigner);
    const signature = /<ds:Signature[\s\S]*<\/ds:Signature>/.exec(signed)?.[0] ?? '';
    const twice = signed.replace(
      '</TrustServiceStatusList>',
      `<SchemeInformation>${signature}</SchemeInformation></TrustServiceStatusList>`,
    );
    assert.throws(() => load(twice), refusedWith('TL_SIGNATURE_NOT_ENVELOPING_LIST'));
  });

  it('a valid signature over only part of the list is refused', () => {
    const partial = signList(writeList(description()), listSigner, "//*[local-name(.)='SchemeInformation']");
    assert.throws(() => load(partial), refusedWith('TL_SIGNATURE_NOT_ENVELOPING_LIST'));
  });

  it('a list whose signer certificate has expired at the clock is refused', () => {
    const signed = signList(writeList(description()), listSigner);
    const later = new Date(listSigner.cert.validToDate.getTime() + DAY);
    assert.throws(() => load(signed, listSigner, later), refusedWith('TL_SIGNER_CERT_NOT_VALID'));
  });

  it('an unsigned list is refused', () => {
    assert.throws(() => load(writeList(description())), refusedWith('TL_SIGNATURE_MISSING'));
  });
});

/** The CA's subjectKeyIdentifier as openssl prints it (an independent reading of the certificate). */
function skiOf(pair: TestKeyPair): Uint8Array {
  const text = execFileSync(
    'openssl',
    ['x509', '-noout', '-ext', 'subjectKeyIdentifier', '-in', `${pki.dir}/${pair.name}.crt`],
    {
      encoding: 'utf8',
    },
  );
  const hex = /\n\s*([0-9A-F:]+)\s*$/.exec(text)?.[1] ?? '';
  assert.ok(hex.length > 0, 'openssl printed no subjectKeyIdentifier');
  return new Uint8Array(Buffer.from(hex.replace(/:/g, ''), 'hex'));
}
