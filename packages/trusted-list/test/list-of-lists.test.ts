// EU list-of-lists mode with a LOTL the test writes: it points at two national lists and names a signer
// certificate for each; the one signed with the wrong key is refused and reported while the other is used.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadListOfTrustedListsFromFiles, qualifiedStatusAt, TrustedListError } from '../src/index.ts';
import { CA_EXTENSIONS, QUALIFIED_POLICY, signerExtensions, type TestKeyPair, TestPki } from './test-pki.ts';
import { QUALIFIER, STATUS, signList, type TestList, writeList } from './write-list.ts';

const DAY = 86_400_000;
const pki = new TestPki();
let dir: string;
let now: Date;
let lotlSigner: TestKeyPair;
let signerXA: TestKeyPair;
let signerXB: TestKeyPair;
let attacker: TestKeyPair;
let caXA: TestKeyPair;
let caXB: TestKeyPair;
let userXA: TestKeyPair;
let userXB: TestKeyPair;

function national(territory: string, ca: TestKeyPair): TestList {
  return {
    territory,
    sequence: 3,
    issued: new Date(now.getTime() - DAY),
    nextUpdate: new Date(now.getTime() + 100 * DAY),
    providers: [
      {
        name: `TSP ${territory}`,
        services: [
          {
            name: `Qualified CA ${territory}`,
            cert: ca.der,
            current: {
              status: STATUS('granted'),
              since: new Date(now.getTime() - 300 * DAY),
              qualifications: [{ qualifiers: [QUALIFIER('QCWithQSCD')], policy: QUALIFIED_POLICY }],
            },
          },
        ],
      },
    ],
  };
}

function lotl(): TestList {
  return {
    territory: 'EU',
    sequence: 300,
    tslType: 'http://uri.etsi.org/TrstSvc/TrustedList/TSLType/EUlistofthelists',
    issued: new Date(now.getTime() - DAY),
    nextUpdate: new Date(now.getTime() + 100 * DAY),
    providers: [],
    pointers: [
      { territory: 'XA', location: 'https://xa.example/tl.xml', certs: [signerXA.der] },
      { territory: 'XB', location: 'https://xb.example/tl.xml', certs: [signerXB.der] },
      // The human-readable copy of XB's list: never a source of signer certificates for the XML list.
      { territory: 'XB', location: 'https://xb.example/tl.pdf', certs: [attacker.der], mimeType: 'application/pdf' },
    ],
  };
}

/** Each test has its own operator folder. */
function freshDir(): string {
  return mkdtempSync(join(dir, 'case-'));
}

function write(d: string, name: string, xml: string): string {
  const path = join(d, name);
  writeFileSync(path, xml);
  return path;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'smgw-lotl-'));
  const root = pki.selfSigned('root');
  const listKey = ['keyUsage=critical,digitalSignature,nonRepudiation'];
  lotlSigner = pki.selfSigned('lotl-signer', listKey);
  signerXA = pki.selfSigned('signer-xa', listKey);
  signerXB = pki.selfSigned('signer-xb', listKey);
  attacker = pki.selfSigned('attacker', listKey);
  caXA = pki.issued('ca-xa', root, CA_EXTENSIONS);
  caXB = pki.issued('ca-xb', root, CA_EXTENSIONS);
  const qc = signerExtensions({ policy: QUALIFIED_POLICY, qcCompliance: true, qcSSCD: false });
  userXA = pki.issued('user-xa', caXA, qc);
  userXB = pki.issued('user-xb', caXB, qc);
  now = new Date(lotlSigner.cert.validFromDate.getTime() + DAY);
});
after(() => {
  pki.remove();
  rmSync(dir, { recursive: true, force: true });
});

describe('the EU list of trusted lists and the national lists it names', () => {
  it('uses the list signed by the key the LOTL gives and refuses the one signed with another key', async () => {
    const d = freshDir();
    const lotlPath = write(d, 'eu-lotl.xml', signList(writeList(lotl()), lotlSigner));
    write(d, 'XA.xml', signList(writeList(national('XA', caXA)), signerXA));
    write(d, 'XB.xml', signList(writeList(national('XB', caXB)), attacker));
    const result = await loadListOfTrustedListsFromFiles(lotlPath, d, {
      lotlSignerCertificates: [lotlSigner.certPem],
      now,
    });
    assert.equal(result.lotl.list.territory, 'EU');
    assert.deepEqual(
      result.lists.map((l) => l.list.territory),
      ['XA'],
    );
    assert.deepEqual(
      result.refused.map((r) => [r.territory, r.code]),
      [['XB', 'TL_SIGNATURE_INVALID']],
    );
    assert.equal(result.refused[0]?.source, join(d, 'XB.xml'));

    const at = new Date(now.getTime() - 10 * DAY);
    const fromXA = qualifiedStatusAt(result.lists, { chain: [userXA.der, caXA.der] }, at);
    assert.equal(fromXA.qualified, true, fromXA.reason);
    assert.equal(fromXA.qscd, true);
    const fromXB = qualifiedStatusAt(result.lists, { chain: [userXB.der, caXB.der] }, at);
    assert.equal(fromXB.qualified, false);
  });

  it('a national list signed with the key of another territory is refused', async () => {
    const d = freshDir();
    const lotlPath = write(d, 'eu-lotl.xml', signList(writeList(lotl()), lotlSigner));
    write(d, 'XA.xml', signList(writeList(national('XA', caXA)), signerXB));
    write(d, 'XB.xml', signList(writeList(national('XB', caXB)), signerXB));
    const result = await loadListOfTrustedListsFromFiles(lotlPath, d, {
      lotlSignerCertificates: [lotlSigner.certPem],
      now,
    });
    assert.deepEqual(
      result.lists.map((l) => l.list.territory),
      ['XB'],
    );
    assert.deepEqual(
      result.refused.map((r) => [r.territory, r.code]),
      [['XA', 'TL_SIGNATURE_INVALID']],
    );
  });

  it('a list for a territory the LOTL does not name is refused, as are unreadable and hostile files', async () => {
    const d = freshDir();
    const lotlPath = write(d, 'eu-lotl.xml', signList(writeList(lotl()), lotlSigner));
    write(d, 'XA.xml', signList(writeList(national('XA', caXA)), signerXA));
    write(d, 'XB.xml', signList(writeList(national('XB', caXB)), signerXB));
    write(d, 'XZ.xml', signList(writeList(national('XZ', caXA)), attacker));
    write(d, 'evil.xml', '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>');
    write(d, 'garbage.xml', 'not xml at all');
    const result = await loadListOfTrustedListsFromFiles(lotlPath, d, {
      lotlSignerCertificates: [lotlSigner.certPem],
      now,
    });
    assert.deepEqual(result.lists.map((l) => l.list.territory).sort(), ['XA', 'XB']);
    const refused = Object.fromEntries(result.refused.map((r) => [r.source.slice(d.length + 1), r.code]));
    assert.deepEqual(refused, {
      'XZ.xml': 'TL_NO_SIGNER_CERT',
      'evil.xml': 'TL_DTD_REFUSED',
      'garbage.xml': 'TL_NOT_XML',
    });
  });

  it('of two lists for one territory the one with the higher sequence number is used', async () => {
    const d = freshDir();
    const lotlPath = write(d, 'eu-lotl.xml', signList(writeList(lotl()), lotlSigner));
    write(d, 'XA.xml', signList(writeList(national('XA', caXA)), signerXA));
    write(d, 'XA-newer.xml', signList(writeList({ ...national('XA', caXA), sequence: 4 }), signerXA));
    const result = await loadListOfTrustedListsFromFiles(lotlPath, d, {
      lotlSignerCertificates: [lotlSigner.certPem],
      now,
    });
    const xa = result.lists.find((l) => l.list.territory === 'XA');
    assert.equal(xa?.list.sequenceNumber, 4);
    assert.deepEqual(
      result.refused.map((r) => [r.source.slice(d.length + 1), r.code]),
      [['XA.xml', 'TL_DUPLICATE_TERRITORY']],
    );
  });

  it('a LOTL signed with another key is refused, and with it every national list', async () => {
    const d = freshDir();
    const lotlPath = write(d, 'eu-lotl.xml', signList(writeList(lotl()), attacker));
    await assert.rejects(
      loadListOfTrustedListsFromFiles(lotlPath, d, { lotlSignerCertificates: [lotlSigner.certPem], now }),
      (err) => err instanceof TrustedListError && err.code === 'TL_SIGNATURE_INVALID',
    );
  });
});
