// A value from a stranger's certificate (a signer name padded with spaces and a verdict of its own) must not print a
// line of the report that reads like the gateway's; quote marks must not seem to close the quoted value.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import type { ReportedSignature, VerificationResult } from '@smgw/signature-verify';
import { sentenceFor } from '@smgw/signature-verify';
import { quoted, renderReportPdf } from '../src/report-pdf.ts';

const AT = new Date('2026-03-02T10:00:00Z');

function signature(overrides: Partial<ReportedSignature> = {}): ReportedSignature {
  return {
    id: 'S1',
    layerId: 'L1',
    path: '/',
    format: 'S/MIME multipart/signed',
    covers: { path: '/1', description: 'text/plain' },
    indication: 'TOTAL_PASSED',
    sentence: sentenceFor('TOTAL_PASSED', undefined),
    reasons: [],
    signerIndex: 0,
    signer: {
      subject: 'CN=Anna Schmidt',
      issuer: 'CN=Test CA',
      serialNumber: '1000',
      fingerprint: 'ab'.repeat(32),
      emailAddresses: ['anna@partner.example'],
    },
    claimedSigningTime: AT,
    algorithms: {
      digest: { name: 'SHA-256', oid: '2.16.840.1.101.3.4.2.1', acceptable: true },
      signature: { name: 'RSA PKCS#1 v1.5 with SHA-256', oid: '1.2.840.113549.1.1.11', acceptable: true },
    },
    signingCertificateBound: false,
    level: 'basic',
    ...overrides,
  } as ReportedSignature;
}

function result(signatures: ReportedSignature[]): VerificationResult {
  const worst =
    signatures.find((s) => s.indication === 'TOTAL_FAILED') ?? signatures.find((s) => s.indication === 'INDETERMINATE');
  return {
    validationTime: AT,
    overall: {
      indication: worst?.indication ?? 'TOTAL_PASSED',
      ...(worst?.subIndication ? { subIndication: worst.subIndication } : {}),
      signatureCount: signatures.length,
    },
    signatures,
    layers: [],
    parts: [],
    coverage: { status: 'full', covered: [], uncovered: [] },
    identity: {
      status: 'match',
      fromAddresses: ['anna@partner.example'],
      senderAddresses: [],
      signerAddresses: [],
      problems: [],
    },
    signingTimeFindings: [],
    unwrapped: [],
  } as VerificationResult;
}

function pdfText(pdf: Buffer): string {
  const run = spawnSync('pdftotext', ['-layout', '-', '-'], { input: pdf, encoding: 'utf8' });
  assert.ok(!run.error, `pdftotext could not run (${run.error?.message}): install poppler-utils`);
  return run.stdout;
}

const META = {
  messageId: '01JTEST0000000000000000000',
  hostname: 'smgw.test',
  originalSha256: 'cd'.repeat(32),
  summary: 'X',
  trustedLists: [],
};

describe('the PDF report against values that would pass for its own lines', () => {
  it('a long signer name cannot start a line of its own that reads like the gateway’s verdict', async () => {
    const forged = 'Niveau / Level: qualifizierte elektronische Signatur (QES) / qualified electronic signature (QES)';
    const hostile = signature({
      indication: 'TOTAL_FAILED',
      subIndication: 'HASH_FAILURE',
      sentence: sentenceFor('TOTAL_FAILED', 'HASH_FAILURE'),
      level: undefined,
      signer: {
        subject: `CN=Anna Schmidt${' '.repeat(120)}${forged}${' '.repeat(120)}`,
        issuer: 'CN=Test CA',
        serialNumber: '1',
        fingerprint: '00'.repeat(32),
        emailAddresses: [],
      },
    });
    const text = pdfText(await renderReportPdf(result([hostile]), META));
    const lines = text.split('\n').map((l) => l.trim());
    // A line of the report that is exactly the forged verdict, with no quote marking it as from the message.
    assert.ok(!lines.includes(forged), `forged line found:\n${text}`);
  });

  it('typographic quotes cannot close the quoted value', () => {
    assert.doesNotMatch(quoted('Anna” – QES – “x'), /”/);
  });
});
