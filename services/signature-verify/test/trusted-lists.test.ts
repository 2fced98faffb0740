// The trusted lists as the service loads them (files named by the settings) and the verifier's qualifiedStatus
// hook on them: a signer under a CA the list grants with QCWithSSCD is qualified-qscd (QES), under a CA the list
// does not name unknown, and without lists never qualified. The list is written and signed with the helpers of
// @smgw/trusted-list's own tests.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { certificateFacts } from '@smgw/signature-verify';
import { parseTrustedListConfig, TrustedListError } from '@smgw/trusted-list';
import {
  CA_EXTENSIONS,
  QUALIFIED_POLICY,
  signerExtensions,
  type TestKeyPair,
  TestPki,
} from '../../../packages/trusted-list/test/test-pki.ts';
import {
  FOR_E_SIGNATURES,
  QUALIFIER,
  STATUS,
  signList,
  writeList,
} from '../../../packages/trusted-list/test/write-list.ts';
import { loadTrustedLists, qualifiedStatusFrom } from '../src/trusted-lists.ts';

const DAY = 86_400_000;
const pki = new TestPki();
let root: TestKeyPair;
let qualifiedCa: TestKeyPair;
let otherCa: TestKeyPair;
let listSigner: TestKeyPair;
let now: Date;

const facts = (k: TestKeyPair) => certificateFacts(Buffer.from(k.der));

function writeListFiles(signer: TestKeyPair): Record<string, string> {
  const xml = writeList({
    territory: 'XA',
    sequence: 3,
    issued: new Date(now.getTime() - DAY),
    nextUpdate: new Date(now.getTime() + 180 * DAY),
    providers: [
      {
        name: 'Test Trust Services',
        services: [
          {
            name: 'Test Qualified CA',
            cert: qualifiedCa.der,
            additionalServiceInformation: [FOR_E_SIGNATURES],
            current: {
              status: STATUS('granted'),
              since: new Date(now.getTime() - 400 * DAY),
              qualifications: [
                { qualifiers: [QUALIFIER('QCWithSSCD'), QUALIFIER('QCForESig')], policy: QUALIFIED_POLICY },
              ],
            },
            history: [],
          },
        ],
      },
    ],
  });
  const file = join(pki.dir, `XA-${signer.name}.xml`);
  writeFileSync(file, signList(xml, signer));
  const certFile = join(pki.dir, 'list-signer.pem');
  writeFileSync(certFile, listSigner.certPem);
  return { SMGW_TRUSTED_LIST_FILE: file, SMGW_TRUSTED_LIST_SIGNER_CERT: certFile };
}

before(() => {
  root = pki.selfSigned('root');
  qualifiedCa = pki.issued('qualified-ca', root, CA_EXTENSIONS);
  otherCa = pki.issued('other-ca', root, CA_EXTENSIONS);
  listSigner = pki.selfSigned('list-signer', ['keyUsage=critical,digitalSignature,nonRepudiation']);
  now = new Date(listSigner.cert.validFromDate.getTime() + 10 * DAY);
});
after(() => pki.remove());

describe('trusted lists in the service', () => {
  it('calls a signer under a CA the list grants with QCWithSSCD qualified-qscd, and one under another CA unknown', async () => {
    const { lists, refused } = await loadTrustedLists(parseTrustedListConfig(writeListFiles(listSigner)), now);
    assert.equal(lists.length, 1);
    assert.deepEqual(refused, []);
    const hook = qualifiedStatusFrom(lists);
    const signer = pki.issued(
      'signer',
      qualifiedCa,
      signerExtensions({ policy: QUALIFIED_POLICY, qcCompliance: true, qcSSCD: false }),
    );
    const answer = await hook(facts(signer), now, [facts(signer), facts(qualifiedCa), facts(root)]);
    assert.equal(answer.status, 'qualified-qscd', answer.reason);
    assert.match(answer.source, /^trusted list XA: Test Trust Services \/ Test Qualified CA$/);

    const stranger = pki.issued(
      'stranger',
      otherCa,
      signerExtensions({ policy: QUALIFIED_POLICY, qcCompliance: true, qcSSCD: true }),
    );
    const unknown = await hook(facts(stranger), now, [facts(stranger), facts(otherCa), facts(root)]);
    assert.equal(unknown.status, 'unknown', unknown.reason);
  });

  it('never says qualified without a list, and says why', async () => {
    const { lists } = await loadTrustedLists(parseTrustedListConfig({}), now);
    assert.equal(lists.length, 0);
    const signer = pki.issued(
      'signer-2',
      qualifiedCa,
      signerExtensions({ policy: QUALIFIED_POLICY, qcCompliance: true, qcSSCD: true }),
    );
    const answer = await qualifiedStatusFrom(lists)(facts(signer), now, [facts(signer), facts(qualifiedCa)]);
    assert.equal(answer.status, 'unknown');
    assert.match(answer.reason, /no trusted list is configured/);
  });

  it('refuses to start on a configured list signed by someone else', async () => {
    const impostor = pki.selfSigned('impostor', ['keyUsage=critical,digitalSignature,nonRepudiation']);
    await assert.rejects(
      loadTrustedLists(parseTrustedListConfig(writeListFiles(impostor)), now),
      (err) => err instanceof TrustedListError && err.code === 'TL_SIGNATURE_INVALID',
    );
  });
});
