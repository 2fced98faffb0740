// Parts of a stranger's message that imitate the gateway's report (report-imitations.ts): by name in every spelling a
// mail client shows as ours (case, extensions, RFC 2047 and RFC 2231 encodings, invisible characters, look-alike
// letters), by media type, by the XML's namespace, by a PDF naming the gateway; wherever a client shows them (an
// attached message, an opaque signature, a multipart without its end, a second Content-Type); within the verifier's
// limits. Then the report itself: the warning in German and English in the PDF, the XML still schema-valid.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { summaryHeader, verifyMessage } from '@smgw/signature-verify';
import { buildValidationReport } from '@smgw/trusted-list';
import { findReportImitations, IMITATION_LIMITS, namedLikeReport, normalisedName } from '../src/report-imitations.ts';
import { buildReportMessage, PDF_REPORT_NAME, XML_REPORT_NAME } from '../src/report-message.ts';
import { reportInput } from '../src/report-model.ts';
import { renderReportPdf } from '../src/report-pdf.ts';
import { assertSchemaValid } from './etsi-schema.ts';
import { type Signer, TestPki } from './test-pki.ts';

const AT = new Date('2026-03-02T10:00:00Z');
const GREEN = Buffer.from('%PDF-1.4\n% GRUEN - gueltig / GREEN - valid (TOTAL_PASSED)\n%%EOF\n');

interface Part {
  header: string[];
  body: string;
}

/** A message of a text and the given parts, each written as `header lines` + body. */
function mail(...parts: Part[]): Buffer {
  return mailWithBoundary('B', parts);
}

function mailWithBoundary(boundary: string, parts: Part[]): Buffer {
  return Buffer.from(
    [
      'From: stranger@example.org',
      'To: poststelle@behoerde.example',
      'Subject: Antrag',
      `Content-Type: multipart/mixed; boundary="${boundary}"`,
      '',
      `--${boundary}`,
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Anbei mein Antrag; die Signatur wurde bereits geprueft.',
      ...parts.flatMap((p) => [`--${boundary}`, ...p.header, '', p.body]),
      `--${boundary}--`,
      '',
    ].join('\r\n'),
    'utf8',
  );
}

/** A PDF attachment whose header gives a name by `disposition` (the whole field value after the colon). */
const pdfPart = (disposition: string, type = 'application/pdf') => ({
  header: [`Content-Type: ${type}`, `Content-Disposition: ${disposition}`, 'Content-Transfer-Encoding: base64'],
  body: GREEN.toString('base64'),
});

const encodedWord = (text: string) => `=?UTF-8?B?${Buffer.from(text).toString('base64')}?=`;

function pdfText(pdf: Buffer): string {
  const run = spawnSync('pdftotext', ['-layout', '-', '-'], { input: pdf, encoding: 'utf8' });
  assert.ok(!run.error, `pdftotext could not run (${run.error?.message}): install poppler-utils`);
  // Lines a long value wraps onto begin with `» `; wrapped lines joined again.
  return run.stdout.replace(/\s*\n\s*(?:» )?/g, ' ');
}

describe('parts named like the gateway’s report', () => {
  const variants: Array<[string, string]> = [
    ['our PDF’s name', `attachment; filename="${PDF_REPORT_NAME}"`],
    ['our XML’s name', `attachment; filename="${XML_REPORT_NAME}"`],
    ['another case and extension case', 'attachment; filename="SIGNATURPRUEFBERICHT.PDF"'],
    ['a doubled extension', `attachment; filename="${PDF_REPORT_NAME}.pdf"`],
    ['a trailing dot', `attachment; filename="${PDF_REPORT_NAME}."`],
    ['a copy counter', 'attachment; filename="Signaturpruefbericht (2).pdf"'],
    ['the umlaut spelling', 'attachment; filename="Signaturprüfbericht.pdf"'],
    ['an RFC 2047 word', `attachment; filename="${encodedWord(PDF_REPORT_NAME)}"`],
    ['an RFC 2047 Q word', 'attachment; filename="=?iso-8859-1?Q?Signaturpr=FCfbericht.pdf?="'],
    ['RFC 2231', "attachment; filename*=UTF-8''Signaturpr%C3%BCfbericht.pdf"],
    ['RFC 2231 continuations', "attachment; filename*0*=utf-8''Signatur%E2%80%8Bpr; filename*1=uefbericht.pdf"],
    ['RFC 2231 in Latin-1', "attachment; filename*=iso-8859-1'de'Signaturpr%FCfbericht.pdf"],
    ['a zero-width space', `attachment; filename*=UTF-8''Signatur%E2%80%8Bpruefbericht.pdf`],
    ['a soft hyphen and a zero-width joiner', `attachment; filename*=UTF-8''Signatur%C2%ADpruef%E2%80%8Dbericht.pdf`],
    ['a right-to-left override', `attachment; filename*=UTF-8''%E2%80%AESignaturpruefbericht.pdf`],
    ['full-width letters', `attachment; filename="${encodedWord('Ｓｉｇｎａｔｕｒｐｒｕｅｆｂｅｒｉｃｈｔ.pdf')}"`],
    ['a Cyrillic a', `attachment; filename="${encodedWord('Signаturpruefbericht.pdf')}"`],
    ['a name in another report’s words', 'attachment; filename="Signaturpruefung_Ergebnis.pdf"'],
    ['a bare "Prüfbericht"', `attachment; filename="${encodedWord('Prüfbericht.pdf')}"`],
    ['an English name', 'attachment; filename="signature verification report.pdf"'],
  ];
  for (const [label, disposition] of variants) {
    it(`finds ${label}`, () => {
      const { imitations } = findReportImitations(mail(pdfPart(disposition)));
      assert.equal(imitations.length, 1, disposition);
      assert.equal(imitations[0]?.path, '/2');
      assert.deepEqual(imitations[0]?.reasons, ['name']);
    });
  }

  it('finds a name in raw UTF-8 and in the Content-Type’s name only', () => {
    const raw = findReportImitations(mail(pdfPart('attachment; filename="Signaturprüfbericht.pdf"')));
    assert.equal(raw.imitations[0]?.name, 'Signaturprüfbericht.pdf');
    const typeOnly = findReportImitations(
      mail({ header: [`Content-Type: application/pdf; name="${PDF_REPORT_NAME}"`], body: '%PDF' }),
    );
    assert.equal(typeOnly.imitations.length, 1);
  });

  it('finds one named so by its Content-Description or labelled as a validation report', () => {
    const described = findReportImitations(
      mail({
        header: [
          'Content-Type: application/pdf',
          'Content-Description: Signaturpruefbericht / signature verification report',
        ],
        body: '%PDF',
      }),
    );
    assert.deepEqual(described.imitations[0]?.reasons, ['description']);
    const labelled = findReportImitations(
      mail({ header: ['Content-Type: application/vnd.etsi.validation-report+xml'], body: '<x/>' }),
    );
    assert.deepEqual(labelled.imitations[0]?.reasons, ['media-type']);
  });

  it('leaves ordinary attachments alone, inspection reports ("Prüfbericht …") and signatures included', () => {
    for (const name of [
      'Antrag.pdf',
      'Rechnung 2026-03.pdf',
      'Prüfbericht_Brandschutz_2026.pdf',
      'TÜV Prüfbericht Aufzug.pdf',
      'Mietvertrag_signiert.pdf',
      'smime.p7s',
      'Vertrag.pdf.p7s',
      'report.pdf',
      'Bericht.docx',
    ]) {
      assert.equal(namedLikeReport(name), false, name);
    }
    assert.deepEqual(
      findReportImitations(mail(pdfPart(`attachment; filename="${encodedWord('Prüfbericht_Brandschutz.pdf')}"`)))
        .imitations,
      [],
    );
  });
});

// A part's header has no bound of its own in the walk: names of a megabyte whose trailing dots, spaces or copy
// counter were looked for from each character of a run took minutes (100,000 characters: 5 to 11 s).
describe('long names of parts', () => {
  it('still strips trailing dots, spaces and copy counters as before', () => {
    assert.equal(normalisedName('Bericht . .\t. '), 'bericht');
    assert.equal(normalisedName('a . b. .'), 'a . b');
    assert.equal(normalisedName('a\t . .x'), 'a . .x');
    for (const name of [
      'Signaturpruefbericht . .pdf. .',
      'Signaturpruefbericht -_ (12).pdf',
      'Signaturpruefbericht__-3.pdf',
      'Signaturpruefbericht - 1 .pdf',
      'Signaturpruefbericht(1).pdf.pdf. ',
    ]) {
      assert.equal(namedLikeReport(name), true, name);
    }
  });

  it('reads names of 1 MiB of dots and spaces or dashes in one pass', () => {
    for (const filler of ['. ', '-', ' _']) {
      const run = filler.repeat((1024 * 1024) / filler.length);
      assert.equal(namedLikeReport(`a${run}x.pdf`), false, filler);
      assert.equal(namedLikeReport(`Signaturpruefbericht${run}(2).pdf`), true, filler);
    }
    const { imitations } = findReportImitations(mail(pdfPart(`attachment; filename="a${'. '.repeat(512 * 1024)}x"`)));
    assert.deepEqual(imitations, []);
  });
});

describe('parts that look like the gateway’s report inside', () => {
  it('finds the ETSI report’s namespace or root in an XML part of any name, also in UTF-16', () => {
    const etsi =
      '<?xml version="1.0"?>\n<ValidationReport xmlns="http://uri.etsi.org/19102/v1.2.1#"></ValidationReport>';
    for (const [type, body] of [
      ['application/xml; name="ergebnis.xml"', Buffer.from(etsi).toString('base64')],
      ['text/xml', Buffer.from(`\ufeff${etsi}`, 'utf16le').toString('base64')],
    ] as const) {
      const { imitations } = findReportImitations(
        mail({ header: [`Content-Type: ${type}`, 'Content-Transfer-Encoding: base64'], body }),
      );
      assert.deepEqual(imitations[0]?.reasons, ['xml-content'], type);
    }
  });

  it('finds a real report of the gateway attached under another name (a forwarded one)', async () => {
    const verified = await verifyMessage(mail(), { trustAnchors: [], now: () => AT, revocation: 'off' });
    const ours = await renderReportPdf(verified, {
      messageId: '01JTEST0000000000000000000',
      hostname: 'smgw.test',
      originalSha256: 'cd'.repeat(32),
      summary: 'NONE',
      trustedLists: [],
    });
    const { imitations } = findReportImitations(
      mail({
        header: ['Content-Type: application/pdf; name="scan.pdf"', 'Content-Transfer-Encoding: base64'],
        body: ours.toString('base64'),
      }),
    );
    assert.deepEqual(imitations[0]?.reasons, ['pdf-content']);
  });
});

describe('where a mail client shows a fake', () => {
  let pki: TestPki;
  let signer: Signer;
  before(async () => {
    pki = await TestPki.create('Imitation-Test-CA');
    signer = await pki.signer('anna', 'anna@partner.example', 'http://127.0.0.1:9/ca.crl');
  });
  after(() => pki?.remove());

  const fake = pdfPart(`attachment; filename="${PDF_REPORT_NAME}"`);

  it('inside an attached message, also one sent in base64, and an attached message by its Subject', () => {
    const inner = mailWithBoundary('inner', [fake]).toString('utf8');
    const attached = findReportImitations(mail({ header: ['Content-Type: message/rfc822'], body: inner }));
    assert.deepEqual(
      attached.imitations.map((i) => i.path),
      ['/2/message/2'],
    );
    const base64 = findReportImitations(
      mail({
        header: ['Content-Type: message/rfc822', 'Content-Transfer-Encoding: base64'],
        body: Buffer.from(inner).toString('base64'),
      }),
    );
    assert.deepEqual(
      base64.imitations.map((i) => i.path),
      ['/2/message/2'],
    );
    const bySubject = findReportImitations(
      mail({ header: ['Content-Type: message/rfc822'], body: 'Subject: Signaturprüfbericht: gültig\r\n\r\nGRÜN' }),
    );
    assert.equal(bySubject.imitations[0]?.path, '/2');
  });

  it('inside an opaque S/MIME signature (smime.p7m)', async () => {
    const entity = mail(fake).toString('utf8');
    const content = Buffer.from(entity.slice(entity.indexOf('Content-Type: multipart/mixed')));
    const signedData = await pki.opaqueSignedData(content, signer);
    const message = Buffer.from(
      [
        'From: anna@partner.example',
        'Content-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"',
        'Content-Transfer-Encoding: base64',
        '',
        signedData.toString('base64'),
        '',
      ].join('\r\n'),
    );
    assert.deepEqual(
      findReportImitations(message).imitations.map((i) => i.path),
      ['/content/2'],
    );
  });

  it('in a multipart without its closing delimiter, and under a first Content-Type the walk would not take', () => {
    const unclosed = mail(fake)
      .toString('utf8')
      .replace(/--B--\r\n$/, '');
    assert.equal(findReportImitations(Buffer.from(unclosed)).imitations.length, 1);
    const twoTypes = Buffer.from(
      mail(fake)
        .toString('utf8')
        .replace(
          'Content-Type: multipart/mixed; boundary="B"',
          'Content-Type: multipart/mixed; boundary="B"\r\nContent-Type: text/plain',
        ),
    );
    assert.equal(findReportImitations(twoTypes).imitations.length, 1);
  });

  it('examines as far as the verifier does and counts what lies beyond (depth, parts) as not examined', () => {
    const wide = mail(
      ...Array.from({ length: 600 }, () => ({ header: ['Content-Type: text/plain'], body: 'x' })),
      fake,
    );
    const scan = findReportImitations(wide);
    assert.deepEqual(scan.imitations, []);
    // The message itself is one of the 500 entities: 499 of its 602 parts are examined.
    assert.equal(scan.notExamined, 602 - 499);
    let deep = mail(fake).toString('utf8');
    for (let i = 0; i < 14; i++) {
      deep = mailWithBoundary(`b${i}`, [{ header: ['Content-Type: message/rfc822'], body: deep }]).toString('utf8');
    }
    const deepScan = findReportImitations(Buffer.from(deep));
    assert.deepEqual(deepScan.imitations, []);
    assert.ok(deepScan.notExamined > 0);
  });

  it('reads at most the verifier’s 100,000 header lines: a part or attached message beyond them is not examined', () => {
    // 150,000 short fields (1.2 MB; 31 MB of them took 2.5–9 s of this walk), and one field folded over as many lines.
    const manyFields = { header: Array.from({ length: 150_000 }, () => 'X-A: b'), body: 'x' };
    const folded = `Subject: ${Array.from({ length: 150_000 }, () => 'b').join('\r\n ')}\r\n\r\nx`;
    const attached = { header: ['Content-Type: message/rfc822'], body: folded };
    const scan = findReportImitations(mail(manyFields, attached, fake));
    // Both beyond: not examined, and said so; the fake after them (its header fits) is still found.
    assert.equal(scan.notExamined, 2);
    assert.deepEqual(
      scan.imitations.map((i) => i.path),
      ['/4'],
    );
    // The message's own header beyond it: nothing of it examined.
    const top = Buffer.concat([Buffer.from('X-A: b\r\n'.repeat(150_000)), mail(fake)]);
    assert.deepEqual(findReportImitations(top), { imitations: [], notExamined: 1, examinedBytes: 0 });
  });

  it('looks at a bounded number of bytes when every level has two readings (it was 500 × the message)', () => {
    // Each level: two Content-Type fields with different boundaries, each reading splitting off nearly the whole
    // rest as one part: walked reading by reading, the same bytes would be examined 2, 4, 8 … times per level.
    let body = `${'x'.repeat(100_000)}\r\n`;
    for (let i = 0; i < 12; i++) {
      body = [
        `Content-Type: multipart/mixed; boundary="a${i}"`,
        `Content-Type: multipart/mixed; boundary="b${i}"`,
        '',
        `--a${i}`,
        `--b${i}`,
        body,
        `--b${i}--`,
        `--a${i}--`,
        '',
      ].join('\r\n');
    }
    const message = Buffer.from(`From: a@b\r\n${body}`);
    const unbounded = findReportImitations(message, { ...IMITATION_LIMITS, workPerByte: 1e9 });
    assert.ok((unbounded.examinedBytes ?? 0) > 100 * message.length, 'the amplification this guards against');
    const scan = findReportImitations(message);
    assert.ok((scan.examinedBytes ?? 0) <= 1024 * 1024 + 16 * message.length, `${scan.examinedBytes} bytes`);
    assert.ok(scan.notExamined > unbounded.notExamined, 'the rest beyond the work budget is counted as not examined');
  });
});

describe('the report about a message holding a fake', () => {
  const fake = pdfPart(`attachment; filename="${PDF_REPORT_NAME}"`);
  const xmlFake = pdfPart(`attachment; filename*=UTF-8''validation%E2%80%8B-report.xml`, 'application/xml');
  const original = mail(fake, xmlFake);

  it('says in German and English that the message holds 2 attachments like a report that the gateway did not write, names quoted', async () => {
    const verified = await verifyMessage(original, { trustAnchors: [], now: () => AT, revocation: 'off' });
    const imitations = findReportImitations(original);
    const summary = summaryHeader(verified, { imitation: true });
    assert.equal(summary, 'NONE; imitation=present');
    const pdf = await renderReportPdf(verified, {
      messageId: '01JTEST0000000000000000000',
      hostname: 'smgw.test',
      originalSha256: 'cd'.repeat(32),
      summary,
      trustedLists: [],
      imitations,
    });
    const text = pdfText(pdf);
    assert.match(text, /Die Nachricht enthält 2 Anhänge, die wie ein Prüfbericht benannt sind/);
    assert.match(text, /Sie stammen nicht vom Gateway, sondern vom Absender, und sind nicht vertrauenswürdig/);
    assert.match(text, /The message contains 2 attachments named like a verification report/);
    assert.match(text, /The gateway did not write them: they are the sender’s and must not be trusted/);
    assert.match(text, /"Signaturpruefbericht\.pdf" \("\/2"\)/);
    assert.match(text, /"validation\[U\+200B\]-report\.xml" \("\/3"\)/);
    assert.match(text, /keine Signatur gefunden/);
    assert.match(text, /Summary \(X-SMGW-Signature\): NONE; imitation=present/);
  });

  it('carries only the original and the PDF when unsigned: no ETSI report without a signature', () => {
    const message = buildReportMessage(original, { summary: 'NONE; imitation=present', pdf: GREEN, boundary: 'b3' });
    const text = message.toString('latin1');
    assert.ok(text.startsWith('X-SMGW-Signature: NONE; imitation=present\r\n'));
    assert.equal(text.match(/^--b3\r$/gm)?.length, 2);
    assert.doesNotMatch(text.slice(text.lastIndexOf('\r\n--b3\r\n')), /validation-report\.xml/);
    assert.ok(message.includes(original), 'the original byte for byte');
  });

  it('keeps the XML schema-valid with the notice and the names in it', async () => {
    const verified = await verifyMessage(original, { trustAnchors: [], now: () => AT, revocation: 'off' });
    const xml = buildValidationReport(
      reportInput(
        {
          ...verified,
          // One signature entry so that the report has what its schema needs.
          signatures: [
            {
              id: 'S1',
              layerId: 'L1',
              path: '/',
              format: 'S/MIME multipart/signed',
              indication: 'INDETERMINATE',
              subIndication: 'NO_CERTIFICATE_CHAIN_FOUND',
              sentence: { de: 'd', en: 'e' },
              reasons: [],
              signerIndex: 0,
              algorithms: {},
              signingCertificateBound: false,
            },
          ],
        },
        [],
        { ...findReportImitations(original), notExamined: 3 },
      ),
    );
    assert.match(xml, /<smgw:Notice code="REPORT_IMITATION">/);
    assert.match(xml, /<smgw:Value path="\/2">Signaturpruefbericht\.pdf<\/smgw:Value>/);
    assert.match(xml, /<smgw:Notice code="REPORT_IMITATION_NOT_EXAMINED">/);
    await assertSchemaValid(xml, tmpdir());
  });
});
