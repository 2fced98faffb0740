// The ETSI TS 119 102-2 report: schema-valid (checked by xmllint against testdata/etsi-xsd, offline, through its
// catalog), fields read back with an XML parser, hostile values from a message kept as text, and inconsistent
// indications refused by the builder.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DOMParser, type Element } from '@xmldom/xmldom';
import {
  buildValidationReport,
  loadTrustedList,
  qualifiedStatusAt,
  type ReportInput,
  type ReportSignature,
  SMGW_VR_NS,
  VR_NS,
  xmlText,
} from '../src/index.ts';
import { CA_EXTENSIONS, QUALIFIED_POLICY, signerExtensions, type TestKeyPair, TestPki } from './test-pki.ts';
import { QUALIFIER, STATUS, signList, writeList } from './write-list.ts';

const XSD_DIR = join(import.meta.dirname, '../../../testdata/etsi-xsd');
const HOSTILE_NAME = 'Mallory <evil/> & "Co" ]]> <![CDATA[x]]> \u0001\u0008\u000b\u001f\ufffe end';

let work: string;
const pki = new TestPki();
let root: TestKeyPair;
let ca: TestKeyPair;
let signer: TestKeyPair;
let listSigner: TestKeyPair;

before(() => {
  work = mkdtempSync(join(tmpdir(), 'smgw-vr-'));
  root = pki.selfSigned('root');
  ca = pki.issued('qualified-ca', root, CA_EXTENSIONS);
  signer = pki.issued('signer', ca, signerExtensions({ policy: QUALIFIED_POLICY, qcCompliance: true, qcSSCD: false }));
  listSigner = pki.selfSigned('list-signer', ['keyUsage=critical,digitalSignature']);
});
after(() => {
  rmSync(work, { recursive: true, force: true });
  pki.remove();
});

/** Validates with xmllint; a missing xmllint fails the test (deploy/local/test-tools.sh installs libxml2-utils). */
function validateWithXmllint(xml: string): void {
  const file = join(work, `report-${Math.random().toString(36).slice(2)}.xml`);
  writeFileSync(file, xml);
  const run = spawnSync('xmllint', ['--nonet', '--noout', '--schema', join(XSD_DIR, '1910202xmlSchema.xsd'), file], {
    env: { ...process.env, XML_CATALOG_FILES: join(XSD_DIR, 'catalog.xml') },
    encoding: 'utf8',
  });
  assert.ok(!run.error, `xmllint could not run (${run.error?.message}): install libxml2-utils`);
  assert.equal(run.status, 0, `the report is not schema-valid:\n${run.stderr}`);
}

function parse(xml: string) {
  const errors: string[] = [];
  const doc = new DOMParser({ onError: (level, msg) => void errors.push(`${level} ${msg}`) }).parseFromString(
    xml,
    'text/xml',
  );
  assert.deepEqual(errors, []);
  return doc;
}

function texts(
  scope: { getElementsByTagNameNS(ns: string, name: string): ArrayLike<Element> },
  ns: string,
  name: string,
): string[] {
  return Array.from(scope.getElementsByTagNameNS(ns, name)).map((e) => e.textContent ?? '');
}

function qualifiedSignature(): ReportSignature {
  const now = new Date(listSigner.cert.validFromDate.getTime() + 86_400_000);
  const list = loadTrustedList(
    Buffer.from(
      signList(
        writeList({
          territory: 'XA',
          sequence: 1,
          issued: now,
          nextUpdate: new Date(now.getTime() + 86_400_000 * 100),
          providers: [
            {
              name: 'TSP',
              services: [
                {
                  name: 'Qualified CA',
                  cert: ca.der,
                  current: {
                    status: STATUS('granted'),
                    since: new Date('2020-01-01T00:00:00Z'),
                    qualifications: [{ qualifiers: [QUALIFIER('QCWithSSCD')], policy: QUALIFIED_POLICY }],
                  },
                },
              ],
            },
          ],
        }),
        listSigner,
      ),
    ),
    { signerCertificates: [listSigner.der], now, source: '/etc/smgw/tl/XA.xml' },
  );
  const signingTime = new Date('2025-03-01T10:00:00Z');
  const q = qualifiedStatusAt([list], { chain: [signer.der, ca.der, root.der] }, signingTime);
  assert.equal(q.qualifiedForESignatureWithQscd, true, q.reason);
  const cert = (pair: TestKeyPair, status: 'good' | 'notApplicable') => ({
    der: pair.der,
    subject: pair.cert.subject.replace(/\n/g, ', '),
    issuer: pair.cert.issuer.replace(/\n/g, ', '),
    serialNumber: pair.cert.serialNumber,
    notBefore: pair.cert.validFromDate,
    notAfter: pair.cert.validToDate,
    validAtSigningTime: true,
    revocation: { status, ...(status === 'good' ? { source: 'OCSP', time: signingTime } : {}) },
  });
  return {
    id: 'message body, layer 1, signer 1',
    indication: 'TOTAL_PASSED',
    signer: { name: 'Erika Mustermann', emailAddresses: ['erika@example.org'] },
    format: 'CAdES (S/MIME multipart/signed)',
    level: 'QES',
    claimedSigningTime: signingTime,
    covers: {
      description: 'the whole message body (text/plain and attachment antrag.pdf)',
      partial: false,
      digestAlgorithmUri: 'http://www.w3.org/2001/04/xmlenc#sha256',
      digest: new Uint8Array(32).fill(7),
    },
    chain: [{ ...cert(signer, 'good'), qualified: true }, cert(ca, 'good'), cert(root, 'notApplicable')],
    trustAnchorKnown: true,
    algorithms: [
      { name: 'SHA-256', acceptable: true },
      { name: 'RSA with SHA-256', oid: '1.2.840.113549.1.1.11', acceptable: true },
    ],
    qualification: {
      ...q,
      type: q.type,
      listSource: '/etc/smgw/tl/XA.xml',
      statusSince: q.statusSince,
      status: q.status,
      serviceName: q.serviceName,
    },
    messages: [{ de: 'Die Signatur ist gültig (qualifiziert).', en: 'The signature is valid (qualified).' }],
  };
}

function failedSignature(): ReportSignature {
  return {
    id: `attachment "${HOSTILE_NAME}.p7s"`,
    indication: 'TOTAL_FAILED',
    subIndication: 'HASH_FAILURE',
    signer: { name: HOSTILE_NAME, emailAddresses: ['a@b.example</smgw:EmailAddress><smgw:Injected/>'] },
    format: 'CAdES (detached .p7s)',
    level: 'unknown',
    claimedSigningTime: new Date('2025-03-02T00:00:00Z'),
    timestampTime: new Date('2025-03-02T00:05:00Z'),
    covers: { description: `document ${HOSTILE_NAME}`, partial: true },
    chain: [
      {
        subject: `CN=${HOSTILE_NAME}`,
        notBefore: new Date('2024-01-01T00:00:00Z'),
        notAfter: new Date('2024-12-31T00:00:00Z'),
        validAtSigningTime: false,
        revocation: {
          status: 'revoked',
          source: 'CRL',
          revokedAt: new Date('2024-06-01T00:00:00Z'),
          reason: 'keyCompromise',
        },
      },
    ],
    trustAnchorKnown: false,
    algorithms: [{ name: 'SHA-1', acceptable: false, notAfter: new Date('2019-01-01T00:00:00Z') }],
    messages: [{ de: `Signatur von ${HOSTILE_NAME} ist ungültig`, en: `Signature of ${HOSTILE_NAME} is invalid` }],
  };
}

function input(): ReportInput {
  return {
    validationTime: new Date('2025-03-03T12:00:00Z'),
    validatorName: 'SecureMail Gateway <test>',
    trustedLists: [{ source: '/etc/smgw/tl/XA.xml', territory: 'XA', sequenceNumber: 1, stale: false }],
    signatures: [qualifiedSignature(), failedSignature()],
  };
}

describe('the ETSI TS 119 102-2 validation report', () => {
  it('is valid against the ETSI schema (xmllint, offline catalog)', () => {
    validateWithXmllint(buildValidationReport(input()));
  });

  it('an empty-chain INDETERMINATE report with no optional parts is valid too', () => {
    validateWithXmllint(
      buildValidationReport({
        validationTime: new Date('2025-01-01T00:00:00Z'),
        signatures: [
          {
            id: 's',
            indication: 'INDETERMINATE',
            subIndication: 'NO_CERTIFICATE_CHAIN_FOUND',
            signer: { name: '' },
            format: 'CAdES',
            level: 'unknown',
            covers: { description: 'x', partial: false },
            chain: [],
            trustAnchorKnown: false,
            algorithms: [],
            messages: [],
          },
        ],
      }),
    );
  });

  it('states any date as xs:dateTime, also past the year 9999 and before the year 1 (a certificate says what it likes)', () => {
    // toISOString writes `+010000-…` and `0000-…`, which XML Schema 1.0 refuses: the report failed its schema.
    const [signature] = input().signatures as [ReportSignature];
    const far = new Date(Date.UTC(10_000, 0, 1));
    const early = new Date(0);
    early.setUTCFullYear(0, 0, 1);
    const xml = buildValidationReport({
      ...input(),
      signatures: [
        {
          ...signature,
          claimedSigningTime: far,
          chain: signature.chain.map((c) => ({ ...c, notBefore: early, notAfter: far })),
        },
      ],
    });
    validateWithXmllint(xml);
    assert.deepEqual(texts(parse(xml), VR_NS, 'Time'), ['10000-01-01T00:00:00.000Z']);
    assert.match(xml, /<smgw:NotBefore>-0001-01-01T00:00:00.000Z</);
  });

  it('carries indications, signer, times, chain, revocation, algorithms and qualification', () => {
    const doc = parse(buildValidationReport(input()));
    const reports = Array.from(doc.getElementsByTagNameNS(VR_NS, 'SignatureValidationReport')).filter(
      (r) =>
        (r.parentNode as Element).localName === 'ValidationReport' && (r.parentNode as Element).namespaceURI === VR_NS,
    );
    assert.equal(reports.length, 2);
    const [ok, bad] = reports as [Element, Element];
    assert.deepEqual(texts(ok, VR_NS, 'MainIndication').slice(0, 1), ['urn:etsi:019102:mainindication:total-passed']);
    assert.deepEqual(texts(ok, VR_NS, 'Signer'), ['Erika Mustermann']);
    assert.deepEqual(texts(ok, VR_NS, 'Time'), ['2025-03-01T10:00:00.000Z']);
    assert.deepEqual(texts(ok, VR_NS, 'SignatureQualityInformation'), ['urn:cef:dss:signatureQualification:QESig']);
    assert.deepEqual(texts(ok, VR_NS, 'Algorithm'), [
      'http://www.w3.org/2001/04/xmlenc#sha256',
      'urn:oid:1.2.840.113549.1.1.11',
    ]);
    const chain = ok.getElementsByTagNameNS(VR_NS, 'CertificateChain')[0];
    assert.ok(chain);
    assert.equal(chain.getElementsByTagNameNS(VR_NS, 'SigningCertificate')[0]?.getAttribute('VOReference'), 'C-1-1');
    assert.equal(
      chain.getElementsByTagNameNS(VR_NS, 'IntermediateCertificate')[0]?.getAttribute('VOReference'),
      'C-1-2',
    );
    assert.equal(chain.getElementsByTagNameNS(VR_NS, 'TrustAnchor')[0]?.getAttribute('VOReference'), 'C-1-3');
    const qualification = ok.getElementsByTagNameNS(SMGW_VR_NS, 'Qualification')[0];
    assert.equal(qualification?.getAttribute('qualified'), 'true');
    assert.equal(qualification?.getAttribute('qscd'), 'true');
    assert.deepEqual(texts(ok, SMGW_VR_NS, 'ServiceStatus'), ['granted']);
    assert.deepEqual(texts(ok, SMGW_VR_NS, 'Qualifier'), ['QCWithSSCD']);
    assert.deepEqual(texts(ok, SMGW_VR_NS, 'Message'), [
      'Die Signatur ist gültig (qualifiziert).',
      'The signature is valid (qualified).',
    ]);

    assert.deepEqual(texts(bad, VR_NS, 'MainIndication'), ['urn:etsi:019102:mainindication:total-failed']);
    assert.deepEqual(texts(bad, VR_NS, 'SubIndication'), ['urn:etsi:019102:subindication:HASH_FAILURE']);
    assert.deepEqual(texts(bad, VR_NS, 'TimeStampValue'), ['2025-03-02T00:05:00.000Z']);
    assert.deepEqual(texts(bad, VR_NS, 'SecureAlgorithm'), ['false']);
    assert.equal(bad.getElementsByTagNameNS(SMGW_VR_NS, 'Covers')[0]?.getAttribute('partial'), 'true');

    // The certificate objects: the signer's own status, its revocation source and time; the revoked one with time.
    const objects = Array.from(doc.getElementsByTagNameNS(VR_NS, 'ValidationObject'));
    const byId = new Map(objects.map((o) => [o.getAttribute('id'), o]));
    const signerObject = byId.get('C-1-1');
    assert.ok(signerObject);
    assert.deepEqual(texts(signerObject, VR_NS, 'MainIndication'), ['urn:etsi:019102:mainindication:total-passed']);
    assert.deepEqual(texts(signerObject, SMGW_VR_NS, 'Source'), ['OCSP']);
    assert.equal(texts(signerObject, VR_NS, 'base64')[0], Buffer.from(signer.der).toString('base64'));
    const revoked = byId.get('C-2-1');
    assert.ok(revoked);
    assert.deepEqual(texts(revoked, VR_NS, 'SubIndication'), ['urn:etsi:019102:subindication:REVOKED']);
    assert.deepEqual(texts(revoked, VR_NS, 'RevocationTime'), ['2024-06-01T00:00:00.000Z']);
    assert.deepEqual(texts(revoked, SMGW_VR_NS, 'Source'), ['CRL']);
  });

  it('keeps a hostile signer name as text: no element, no CDATA end, control characters shown as code points', () => {
    const xml = buildValidationReport(input());
    validateWithXmllint(xml);
    const doc = parse(xml);
    assert.equal(doc.getElementsByTagName('evil').length, 0);
    assert.equal(doc.getElementsByTagNameNS(SMGW_VR_NS, 'Injected').length, 0);
    assert.ok(!xml.includes('<![CDATA['), 'the builder never writes CDATA');
    const expected = xmlText(HOSTILE_NAME);
    assert.equal(expected, 'Mallory <evil/> & "Co" ]]> <![CDATA[x]]> [U+0001][U+0008][U+000B][U+001F][U+FFFE] end');
    assert.ok(texts(doc, VR_NS, 'Signer').includes(expected));
    assert.deepEqual(texts(doc, SMGW_VR_NS, 'EmailAddress'), [
      'erika@example.org',
      'a@b.example</smgw:EmailAddress><smgw:Injected/>',
    ]);
  });

  it('refuses to write an indication with a sub-indication of another kind', () => {
    const passedWithSub = { ...failedSignature(), indication: 'TOTAL_PASSED' as const };
    assert.throws(
      () => buildValidationReport({ ...input(), signatures: [passedWithSub] }),
      /TOTAL_PASSED has no sub-indication/,
    );
    // Indeterminate is never shown as failed: TRY_LATER under TOTAL_FAILED is a verifier bug.
    const failedTryLater = { ...failedSignature(), subIndication: 'TRY_LATER' };
    assert.throws(() => buildValidationReport({ ...input(), signatures: [failedTryLater] }), /does not belong/);
    const indeterminateHash = { ...failedSignature(), indication: 'INDETERMINATE' as const };
    assert.throws(() => buildValidationReport({ ...input(), signatures: [indeterminateHash] }), /does not belong/);
  });
});
