// The real national lists in testdata/trusted-lists (ETSI TS 119 612, signed by their operators): they load with
// the clock pinned to their issue date, their statuses and qualifiers come out as the file has them (counted
// independently with a regular expression over the file), and the tampered and unsigned copies are refused.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  type LoadedTrustedList,
  loadTrustedList,
  loadTrustedListFile,
  qualifiedStatusAt,
  type ServicePeriod,
  statusName,
  TrustedListError,
} from '../src/index.ts';

const DIR = join(import.meta.dirname, '../../../testdata/trusted-lists');
const read = (name: string) => readFileSync(join(DIR, name));

/**
 * The certificate in the list's own signature KeyInfo. An operator gets it from the EU list of lists or the
 * Official Journal; here the copy in the file stands in for it (the broken copies are checked against CZ.xml's).
 */
function signerOf(name: string): Uint8Array {
  const text = read(name).toString('utf8');
  const keyInfo = text.slice(text.lastIndexOf('SignatureValue'));
  const b64 = /<(?:\w+:)?X509Certificate>([^<]+)</.exec(keyInfo)?.[1];
  assert.ok(b64, `no signer certificate in ${name}`);
  return new Uint8Array(Buffer.from(b64.replace(/\s+/g, ''), 'base64'));
}

function issueDate(name: string): Date {
  return new Date(/<ListIssueDateTime>([^<]+)</.exec(read(name).toString('utf8'))?.[1] ?? 'invalid');
}

function load(name: string, signer = signerOf(name), now = issueDate(name)): LoadedTrustedList {
  return loadTrustedList(read(name), { signerCertificates: [signer], now, source: name });
}

function periods(loaded: LoadedTrustedList): ServicePeriod[] {
  return loaded.list.providers.flatMap((p) => p.services.flatMap((s) => [s.current, ...s.history]));
}

function countInFile(name: string, pattern: RegExp): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of read(name).toString('utf8').matchAll(pattern))
    counts.set(m[1] as string, (counts.get(m[1] as string) ?? 0) + 1);
  return counts;
}

function countInModel(values: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}

const sorted = (m: Map<string, number>) => [...m.entries()].sort(([a], [b]) => a.localeCompare(b));

describe('the real national lists', () => {
  it('AT.xml loads at its issue date with every service status of the file', () => {
    const at = load('AT.xml');
    assert.equal(at.list.territory, 'AT');
    assert.equal(at.list.sequenceNumber, 42);
    assert.equal(at.list.issueDate.toISOString(), '2019-08-26T01:00:00.000Z');
    assert.equal(at.list.nextUpdate?.toISOString(), '2020-02-26T00:00:00.000Z');
    assert.equal(at.stale, false);
    assert.deepEqual(at.list.problems, []);
    assert.deepEqual(
      sorted(countInModel(periods(at).map((p) => p.status))),
      sorted(countInFile('AT.xml', /<ServiceStatus>([^<]+)<\/ServiceStatus>/g)),
    );
    // A-Trust's TrustSign-Sig-01 (key no. 1): withdrawn 2017, granted from eIDAS day, accredited and supervised before.
    const service = at.list.providers[0]?.services[0];
    assert.equal(service?.current.serviceName.find((n) => n.lang === 'en')?.value, 'TrustSign-Sig-01 (key no. 1)');
    assert.deepEqual(
      [service?.current, ...(service?.history ?? [])].map((p) => [
        statusName(p?.status ?? ''),
        p?.statusStartingTime.toISOString(),
      ]),
      [
        ['withdrawn', '2017-10-04T22:00:00.000Z'],
        ['granted', '2016-06-30T22:00:00.000Z'],
        ['accredited', '2002-03-11T23:00:00.000Z'],
        ['undersupervision', '2002-02-06T23:00:00.000Z'],
      ],
    );
    assert.deepEqual(service?.current.extensions.additionalServiceInformation, [
      'http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/ForeSignatures',
    ]);
    // AT.xml's LOTL pointer: the EU list and the certificates that may sign it.
    const lotl = at.list.pointers.find((p) => p.territory === 'EU');
    assert.equal(lotl?.mimeType, 'application/vnd.etsi.tsl+xml');
    assert.ok((lotl?.signerCertificates.length ?? 0) > 0);
  });

  it('CZ.xml loads with the statuses the README counts and every qualifier of the file', () => {
    const cz = load('CZ.xml');
    assert.equal(cz.list.territory, 'CZ');
    assert.equal(cz.list.sequenceNumber, 77);
    const statuses = countInModel(periods(cz).map((p) => statusName(p.status)));
    assert.equal(statuses.get('granted'), 78);
    assert.equal(statuses.get('withdrawn'), 59);
    assert.equal(statuses.get('accredited'), 70);
    const qualifiers = periods(cz).flatMap((p) => p.extensions.qualifications.flatMap((q) => q.qualifiers));
    assert.deepEqual(
      sorted(countInModel(qualifiers)),
      sorted(countInFile('CZ.xml', /<(?:\w+:)?Qualifier uri="([^"]+)"/g)),
    );
    assert.ok(qualifiers.includes('http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/QCQSCDStatusAsInCert'));
  });

  it('CZ_broken-sig.xml (one status changed after signing) is refused', () => {
    assert.throws(
      () => load('CZ_broken-sig.xml', signerOf('CZ.xml'), issueDate('CZ.xml')),
      (err) => err instanceof TrustedListError && err.code === 'TL_SIGNATURE_INVALID',
    );
  });

  it('CZ_no-sig.xml (signature removed) is refused', () => {
    assert.throws(
      () => load('CZ_no-sig.xml', signerOf('CZ.xml'), issueDate('CZ.xml')),
      (err) => err instanceof TrustedListError && err.code === 'TL_SIGNATURE_MISSING',
    );
  });

  it('CZ.xml checked against the Austrian signer is refused', () => {
    assert.throws(
      () => load('CZ.xml', signerOf('AT.xml')),
      (err) => err instanceof TrustedListError && err.code === 'TL_SIGNATURE_INVALID',
    );
  });

  it('AT.xml today is refused: its signer certificate expired in 2021', () => {
    assert.throws(
      () => load('AT.xml', signerOf('AT.xml'), new Date('2026-01-01T00:00:00Z')),
      (err) => err instanceof TrustedListError && err.code === 'TL_SIGNER_CERT_NOT_VALID',
    );
  });

  it('AT.xml after its NextUpdate (signer still valid) is used and flagged stale', () => {
    assert.equal(load('AT.xml', signerOf('AT.xml'), new Date('2020-06-01T00:00:00Z')).stale, true);
  });

  it('de-tl.xml loads and reports its malformed URIs instead of failing', async () => {
    const de = await loadTrustedListFile(join(DIR, 'de-tl.xml'), {
      signerCertificates: [signerOf('de-tl.xml')],
      now: issueDate('de-tl.xml'),
    });
    assert.equal(de.list.territory, 'DE');
    assert.ok(de.list.providers.length > 0);
    const values = de.list.problems.map((p) => p.problem).join('\n');
    assert.match(values, /https:\/\/https:\/\/www\.nrca-ds\.de/);
    assert.match(values, /http:\/\/https:\/\/pki1\.pki\.arbeitsagentur\.de/);
    assert.ok(de.list.problems.every((p) => p.where.startsWith('TrustServiceStatusList/')));
  });
});

describe('qualified status from the real lists', () => {
  const at = () => load('AT.xml');
  const trustSignKey1 = () => {
    const id = at().list.providers[0]?.services[0]?.current.digitalIdentities.find((d) => d.kind === 'certificate');
    assert.ok(id?.kind === 'certificate');
    return id.der;
  };
  const qc = { qcCompliance: true, qcSSCD: true };

  it('A-Trust TrustSign-Sig-01 was granted in 2017: qualified', () => {
    const status = qualifiedStatusAt([at()], { issuer: trustSignKey1() }, new Date('2017-03-01T00:00:00Z'), qc);
    assert.equal(status.qualified, true, status.reason);
    assert.equal(status.status, 'granted');
    assert.equal(status.territory, 'AT');
    assert.equal(status.qscd, true);
    assert.equal(status.type, 'esign');
  });

  it('the same CA after its withdrawal in October 2017: not qualified', () => {
    const status = qualifiedStatusAt([at()], { issuer: trustSignKey1() }, new Date('2018-01-01T00:00:00Z'), qc);
    assert.equal(status.qualified, false);
    assert.equal(status.status, 'withdrawn');
  });

  it('the same CA in 2010, accredited under the Signature Directive: qualified', () => {
    const status = qualifiedStatusAt([at()], { issuer: trustSignKey1() }, new Date('2010-01-01T00:00:00Z'), qc);
    assert.equal(status.qualified, true, status.reason);
    assert.equal(status.status, 'accredited');
  });

  it('an I.CA CA with QCNoQSCD for some policies: without the signer certificate the restriction is applied', () => {
    const cz = load('CZ.xml');
    const service = cz.list.providers
      .flatMap((p) => p.services)
      .find(
        (s) =>
          statusName(s.current.status) === 'granted' &&
          s.current.extensions.qualifications.some((q) => q.qualifiers.some((u) => u.endsWith('/QCNoQSCD'))),
      );
    const id = service?.current.digitalIdentities.find((d) => d.kind === 'certificate');
    assert.ok(id?.kind === 'certificate');
    const status = qualifiedStatusAt([cz], { issuer: id.der }, new Date('2019-08-01T00:00:00Z'), qc);
    assert.equal(status.qualified, true, status.reason);
    assert.equal(status.qscd, false);
    assert.ok(status.qualifiersApplied.includes('QCNoQSCD'));
  });
});
