// The report pieces without a broker: the report message's structure, the PDF against hostile values from a
// message (a signer name with a bidi override, control characters, markup, quotes, a fake "GREEN", a verdict line
// of its own padded with spaces), the XML's
// indications: every sub-indication the verifier gives, under its main indication (NOT_YET_VALID under both).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import type { ReportedSignature, VerificationResult } from '@smgw/signature-verify';
import {
  FAILED_SUB_INDICATIONS,
  INDETERMINATE_SUB_INDICATIONS,
  sentenceFor,
  summaryHeader,
  verifyMessage,
} from '@smgw/signature-verify';
import { buildValidationReport, subIndicationBelongsTo } from '@smgw/trusted-list';
import { PDFFont } from 'pdf-lib';
import { buildReportMessage, identityEncoding, withSummaryField } from '../src/report-message.ts';
import { reportInput } from '../src/report-model.ts';
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

describe('the PDF report', () => {
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

  it('lays out a long value the fonts cannot draw with work linear in its length (it took 10 s a signer name)', async () => {
    // 400 characters outside WinAnsi are one word of 3,200 once escaped: every cut of it was sought by trying each
    // shorter prefix, ~L³ characters measured, and the stage's event loop did nothing else meanwhile.
    const render = async (subject: string) => {
      let measured = 0;
      const width = PDFFont.prototype.widthOfTextAtSize;
      PDFFont.prototype.widthOfTextAtSize = function (this: PDFFont, text: string, size: number) {
        measured += text.length;
        return width.call(this, text, size);
      };
      try {
        const hostile = signature({
          signer: { ...(signature().signer as NonNullable<ReportedSignature['signer']>), subject },
        });
        await renderReportPdf(result([hostile]), META);
      } finally {
        PDFFont.prototype.widthOfTextAtSize = width;
      }
      return measured;
    };
    const plain = await render('CN=Anna Schmidt');
    const escapedValue = await render(`CN=${'\u0100'.repeat(400)}`);
    // The value is 3,200 characters as drawn: measuring it some 50 times over is the budget (it was 56 million).
    assert.ok(escapedValue - plain < 50 * 3_200, `${escapedValue - plain} characters measured for one value`);
  });

  it('lists a bounded number of a certificate’s addresses, in the PDF and the XML, and says how many more it holds', async () => {
    // One certificate of 1,000 addresses of 400 characters (400 KB) signing 50 times over: the PDF and the XML each
    // listed 20 MB of addresses, and the stage laid them out for a minute.
    const emailAddresses = Array.from({ length: 1000 }, (_, i) => `a${i}@partner.example`);
    const many = signature({
      signer: { ...(signature().signer as NonNullable<ReportedSignature['signer']>), emailAddresses },
    });
    const verified = result([many]);
    const text = pdfText(await renderReportPdf(verified, META)).replace(/\s*\n\s*» /g, ' ');
    assert.equal(text.match(/"a\d+@partner\.example"/g)?.length, 10);
    assert.match(text, /und 990 weitere \/ and 990 more/);
    const xml = buildValidationReport(reportInput(verified, []));
    assert.equal(xml.match(/<smgw:EmailAddress>/g)?.length, 10);
    assert.match(xml, /990 further addresses in the certificate are not listed/);
  });

  it('typographic quotes cannot close the quoted value', () => {
    assert.doesNotMatch(quoted('Anna” – QES – “x'), /”/);
  });

  it('shows a value from the message only quoted, with controls, bidi overrides and quotes escaped', () => {
    assert.equal(quoted('Anna'), '"Anna"');
    assert.equal(quoted('a"b'), '"a[U+0022]b"');
    assert.equal(quoted('x\r\ny'), '"x[U+000D][U+000A]y"');
    assert.equal(quoted('evil\u202Etxt.exe'), '"evil[U+202E]txt.exe"');
    assert.equal(quoted('Müller €'), '"Müller €"');
    assert.match(quoted('x'.repeat(1000)), /… \(gekürzt \/ cut\)"$/);
  });

  it('cannot be made to show a green light by a signer name: the name stays one quoted line of text', async () => {
    const hostile = signature({
      indication: 'TOTAL_FAILED',
      subIndication: 'HASH_FAILURE',
      sentence: sentenceFor('TOTAL_FAILED', 'HASH_FAILURE'),
      level: undefined,
      signer: {
        subject: 'CN=GRÜN – gültig / GREEN – valid (TOTAL_PASSED)\n\u202Eevil',
        issuer: 'CN=<script>',
        serialNumber: '1',
        fingerprint: '00'.repeat(32),
        emailAddresses: [],
      },
    });
    const text = pdfText(await renderReportPdf(result([hostile]), META));
    assert.match(text, /ROT – ungültig \/ RED – invalid \(TOTAL_FAILED\)/);
    assert.match(text, /"CN=GRÜN – gültig \/ GREEN – valid \(TOTAL_PASSED\)\[U\+000A\]\[U\+202E\]evil"/);
    // The only unquoted light is the gateway's own, in the overall and the signature's section.
    const lights = text.split('\n').filter((l) => /GREEN – valid/.test(l) && !/"CN=/.test(l));
    assert.deepEqual(lights, []);
  });

  it('shows each indication as its own light, German first, and says when nothing is qualified', async () => {
    const text = pdfText(
      await renderReportPdf(
        result([
          signature(),
          signature({
            id: 'S2',
            indication: 'INDETERMINATE',
            subIndication: 'NO_CERTIFICATE_CHAIN_FOUND',
            sentence: sentenceFor('INDETERMINATE', 'NO_CERTIFICATE_CHAIN_FOUND'),
            level: undefined,
          }),
        ]),
        META,
      ),
    );
    assert.match(text, /GRÜN – gültig \/ GREEN – valid \(TOTAL_PASSED\)/);
    assert.match(text, /GELB – nicht bestätigt \/ YELLOW – cannot be confirmed \(INDETERMINATE\)/);
    assert.match(text, /keine konfiguriert/);
    assert.ok(text.indexOf('Signaturprüfbericht') < text.indexOf('Signature verification report'));
  });
});

describe('the XML report', () => {
  it('states NOT_YET_VALID under INDETERMINATE, never as failed', () => {
    const notYet = signature({
      indication: 'INDETERMINATE',
      subIndication: 'NOT_YET_VALID',
      sentence: sentenceFor('INDETERMINATE', 'NOT_YET_VALID'),
      level: undefined,
    });
    const xml = buildValidationReport(reportInput(result([notYet]), []));
    assert.match(xml, /mainindication:indeterminate/);
    assert.match(xml, /subindication:NOT_YET_VALID/);
    assert.doesNotMatch(xml, /total-failed/);
  });

  const pairs = [
    ...FAILED_SUB_INDICATIONS.map((sub) => ['TOTAL_FAILED', sub] as const),
    ...INDETERMINATE_SUB_INDICATIONS.map((sub) => ['INDETERMINATE', sub] as const),
  ];
  for (const [indication, sub] of pairs) {
    it(`states every sub-indication the verifier gives: ${indication} ${sub}`, () => {
      assert.ok(subIndicationBelongsTo(sub, indication));
      const sig = signature({
        indication,
        subIndication: sub,
        sentence: sentenceFor(indication, sub),
        level: undefined,
      });
      const xml = buildValidationReport(reportInput(result([sig]), []));
      assert.match(xml, new RegExp(`subindication:${sub}<`));
    });
  }
});

describe('the report of a message with 20,000 parts', () => {
  // 1.2 MB of tiny parts, every second a .p7s: the walk examined all of them (30 s, quadratic) and the report held
  // 10,000 signature entries. Now 500 parts are examined and the report says what was not.
  const parts = Array.from({ length: 20_000 }, (_, i) =>
    i % 2 === 0
      ? `--B\r\nContent-Type: text/plain; name="d${i}.txt"\r\n\r\nx\r\n`
      : `--B\r\nContent-Type: application/octet-stream; name="z${i}.p7s"\r\n\r\nx\r\n`,
  );
  const original = Buffer.from(
    `From: a@example.org\r\nTo: stelle@behoerde.example\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n${parts.join('')}--B--\r\n`,
  );

  it('holds a bounded number of entries and says which parts and signatures were not examined', async () => {
    const verified = await verifyMessage(original, { trustAnchors: [], now: () => AT, revocation: 'off' });
    assert.equal(summaryHeader(verified), 'TOTAL_FAILED; sub=FORMAT_FAILURE');
    const xml = buildValidationReport(reportInput(verified, []));
    assert.equal(xml.match(/<([a-z]+:)?SignatureValidationReport[ >]/g)?.length, 18);
    const pdf = await renderReportPdf(verified, { ...META, summary: summaryHeader(verified) });
    // Lines a long value wraps onto begin with `» `: joined again here.
    const text = pdfText(pdf).replace(/\s*\n\s*» /g, ' ');
    assert.match(text, /Not signed: "19501 of the 20000 parts of multipart\/mixed \(from \/500 on\), not examined"/);
    assert.match(text, /"19501 of its 20000 parts \(from \/500 on\) beyond the limit of 500 parts: not examined"/);
    assert.match(
      text,
      /"more than 16 signature layers: this one and 232 further \(the last at \/498\) were not examined"/,
    );
    assert.match(text, /Signatur \/ Signature S18/);
    assert.doesNotMatch(text, /Signatur \/ Signature S19/);
  });
});

describe('the report message', () => {
  const original = Buffer.from('From: a@partner.example\r\nSubject: Hallo\r\nContent-Type: text/plain\r\n\r\nText\r\n');

  it('carries the original first, byte for byte, then the PDF and the XML, the summary on top', () => {
    const message = buildReportMessage(original, {
      summary: 'TOTAL_PASSED; level=AdES; signatures=1',
      pdf: Buffer.from('%PDF'),
      xml: '<x/>',
      boundary: 'b1',
    });
    const text = message.toString('latin1');
    assert.ok(text.startsWith('X-SMGW-Signature: TOTAL_PASSED; level=AdES; signatures=1\r\nMIME-Version: 1.0\r\n'));
    assert.match(text, /^Subject: Hallo\r$/m);
    assert.doesNotMatch(text.slice(0, text.indexOf('\r\n\r\n')), /Content-Type: text\/plain/);
    const start =
      text.indexOf('Content-Transfer-Encoding: 7bit\r\n\r\n') + 'Content-Transfer-Encoding: 7bit\r\n\r\n'.length;
    assert.equal(text.slice(start, start + original.length), original.toString('latin1'));
    assert.equal(text.slice(start + original.length, start + original.length + 6), '\r\n--b1');
  });

  it('names the identity encoding the original needs', () => {
    assert.equal(identityEncoding(original), '7bit');
    assert.equal(identityEncoding(Buffer.from('a: ü\r\n\r\nx\r\n')), '8bit');
    assert.equal(identityEncoding(Buffer.from('a: b\n\nx\n')), 'binary');
    assert.equal(identityEncoding(Buffer.from(`a: b\r\n\r\n${'x'.repeat(999)}\r\n`)), 'binary');
  });

  it('drops a summary field the original carries and gives unsigned mail only the summary', () => {
    const forged = Buffer.concat([Buffer.from('X-SMGW-Signature: TOTAL_PASSED; level=QES\r\n'), original]);
    const message = buildReportMessage(forged, {
      summary: 'TOTAL_FAILED; sub=HASH_FAILURE',
      pdf: Buffer.from(''),
      xml: '',
      boundary: 'b2',
    });
    const header = message.toString('latin1').slice(0, message.indexOf('\r\n\r\n'));
    assert.deepEqual(header.match(/X-SMGW-Signature:.*/g), ['X-SMGW-Signature: TOTAL_FAILED; sub=HASH_FAILURE']);
    assert.equal(
      withSummaryField(original, 'NONE').toString('latin1'),
      `X-SMGW-Signature: NONE\r\n${original.toString('latin1')}`,
    );
  });

  it('drops a summary field an unsigned message carries, wherever and however it is written', () => {
    const forged = Buffer.from(
      'From: a@example.org\r\nx-smgw-signature: TOTAL_PASSED;\r\n level=QES; signatures=1\r\nSubject: s\r\n\r\nBody\r\n',
    );
    const out = withSummaryField(forged, 'NONE').toString('latin1');
    assert.equal(out, 'X-SMGW-Signature: NONE\r\nFrom: a@example.org\r\nSubject: s\r\n\r\nBody\r\n');
  });
});

describe('the report message of an original whose header is beyond the walk budget', () => {
  // What encrypt leaves closed and ingest refuses; should one come, its header is not read (it took 2.3–4.8 s).
  const huge = Buffer.from(`Subject: s\r\n${'X-A: b\r\n'.repeat(150_000)}\r\nText\r\n`, 'latin1');

  it('carries none of its fields out and keeps it whole as the first part', () => {
    const message = buildReportMessage(huge, { summary: 'INDETERMINATE', pdf: Buffer.from('%PDF'), boundary: 'b3' });
    const text = message.toString('latin1');
    const header = text.slice(0, text.indexOf('\r\n\r\n'));
    assert.doesNotMatch(header, /^(Subject|X-A):/m);
    assert.ok(message.includes(huge));
  });

  it('puts the summary first when it goes on unreported', () => {
    assert.deepEqual(withSummaryField(huge, 'NONE'), Buffer.concat([Buffer.from('X-SMGW-Signature: NONE\r\n'), huge]));
  });
});

describe('values a signed PDF attachment names', () => {
  // A PDF's /SubFilter is a name the sender writes, and #xx escapes put any byte in it: a line break, a C1 control.
  const forgedLine = 'Ergebnis / Indication: TOTAL_PASSED';
  const subFilter = `x#0A${forgedLine.replaceAll(' ', '#20').replaceAll('/', '#2F').replaceAll(':', '#3A')}#81`;
  const objects = Buffer.from(
    [
      '%PDF-1.7',
      '1 0 obj',
      '<< /Type /Catalog /Pages 2 0 R >>',
      'endobj',
      '2 0 obj',
      '<< /Type /Pages /Kids [] /Count 0 >>',
      'endobj',
      '3 0 obj',
      `<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /${subFilter} /ByteRange [0 10 20 30] /Contents <00> >>`,
      'endobj',
      '',
    ].join('\n'),
    'latin1',
  );
  const pdf = Buffer.concat([
    objects,
    Buffer.from(
      `xref\n0 1\n0000000000 65535 f\r\ntrailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n${objects.length}\n%%EOF\n`,
    ),
  ]);
  const message = Buffer.from(
    [
      'From: a@example.org',
      'To: stelle@behoerde.example',
      'Content-Type: multipart/mixed; boundary="B"',
      '',
      '--B',
      'Content-Type: text/plain',
      '',
      'Anbei.',
      '--B',
      'Content-Type: application/pdf; name="x.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      pdf.toString('base64'),
      '--B--',
      '',
    ].join('\r\n'),
  );

  it('a /SubFilter with a line break or a C1 control neither breaks the report (pdf-lib threw) nor draws a line', async () => {
    const verified = await verifyMessage(message, { trustAnchors: [], now: () => AT, revocation: 'off' });
    assert.equal(verified.signatures.length, 1);
    const rendered = await renderReportPdf(verified, { ...META, summary: summaryHeader(verified) });
    const lines = pdfText(rendered)
      .split('\n')
      .map((l) => l.trim());
    assert.ok(!lines.includes(forgedLine), 'a line drawn by the PDF attachment');
    assert.equal(verified.signatures[0]?.format, 'PAdES signature (another SubFilter)');
    assert.ok(lines.includes('Format: PAdES signature (another SubFilter) (/2)'));
  });
});
