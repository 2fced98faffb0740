// readPdfStructure on hostile files from strangers: whatever the file, reading it costs work linear in its size. The
// work is counted (tokens read plus bytes passed, `structure.work`), so these tests assert how much was done, never
// how long it took. Beyond the budget the rest of the file is INDETERMINATE, never a pass and never a crash.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_PDF_LIMITS,
  readPdfStructure,
  summaryHeader,
  verifyMessage,
  verifyPdf,
  WORK_ALLOWANCE,
} from '../src/index.ts';
import { attachment, message, multipartMixed, textPart } from './openssl-pki.ts';

/** A minimal PDF around `body` (objects as text): one empty xref section, its trailer and startxref. */
function pdfAround(body: string): Buffer {
  const xrefAt = '%PDF-1.7\n'.length + body.length;
  return Buffer.from(
    `%PDF-1.7\n${body}xref\n0 1\n0000000000 65535 f\r\ntrailer\n<< /Size 1 >>\nstartxref\n${xrefAt}\n%%EOF\n`,
    'latin1',
  );
}

/** `count` objects numbered from 1, each `object(n)` as text. */
function objects(count: number, object: (n: number) => string): string {
  return Array.from({ length: count }, (_, i) => object(i + 1)).join('');
}

const budgetOf = (pdf: Buffer) => WORK_ALLOWANCE + DEFAULT_PDF_LIMITS.workPerByte * pdf.length;
const options = { trustAnchors: [], now: () => new Date(), revocation: 'off' as const };

describe('readPdfStructure on hostile files', { timeout: 60_000 }, () => {
  it('reads an object naming /ByteRange 5000 times once, not once per mention', () => {
    // 55 KB: read once per mention this was 12.5 million tokens (10.7 s in a verify worker).
    const pdf = pdfAround(`1 0 obj\n[${' /ByteRange'.repeat(5000)} ]\nendobj\n`);
    const structure = readPdfStructure(pdf);
    assert.deepEqual(structure.signatures, []);
    assert.equal(structure.unexamined, undefined);
    assert.ok(structure.work <= pdf.length, `${structure.work} units of work for a ${pdf.length}-byte file`);
  });

  it('reads each of 5000 objects with many /ByteRange mentions once', () => {
    const pdf = pdfAround(objects(5000, (n) => `${n} 0 obj\n[ /ByteRange /ByteRange /ByteRange ]\nendobj\n`));
    const structure = readPdfStructure(pdf);
    assert.deepEqual(structure.signatures, []);
    assert.ok(structure.work <= pdf.length, `${structure.work} units of work for a ${pdf.length}-byte file`);
  });

  it('counts unreadable signature dictionaries against maxSignatures', () => {
    // Each dictionary names a key twice, so none can be read: 2000 of them once made 2000 "signatures".
    const pdf = pdfAround(objects(2000, (n) => `${n} 0 obj\n<< /ByteRange 1 /ByteRange 2 >>\nendobj\n`));
    const structure = readPdfStructure(pdf);
    assert.equal(structure.signatures.length, DEFAULT_PDF_LIMITS.maxSignatures);
    assert.match(structure.signatures[0]?.problem ?? '', /appears twice/);
    assert.equal(structure.skippedSignatures, 2000 - DEFAULT_PDF_LIMITS.maxSignatures);
  });

  // Objects that run on into the objects after them: read one by one, each would pass the rest of the file.
  const overlapping: Array<[string, Buffer]> = [
    ['hex strings that close only in the trailer', pdfAround(objects(2000, (n) => `${n} 0 obj << /ByteRange <\n`))],
    ['literal strings continued from line to line', pdfAround(objects(3000, (n) => `${n} 0 obj (/ByteRange \\\n`))],
    ['comments that run to the end of one long line', commentedObjects(2000)],
  ];
  for (const [shape, pdf] of overlapping) {
    it(`stops at the work budget for ${shape}, and says the rest was not examined`, () => {
      const structure = readPdfStructure(pdf);
      assert.match(structure.unexamined ?? '', /work budget .* the rest of the file was not examined/);
      // The budget, and at most the one search or token that crossed it (never more than the file once).
      assert.ok(structure.work <= budgetOf(pdf) + pdf.length, `${structure.work} units for ${pdf.length} bytes`);
      assert.ok(structure.signatures.length <= DEFAULT_PDF_LIMITS.maxSignatures);
    });
  }

  it('makes what lies beyond the work budget one INDETERMINATE SIG_CONSTRAINTS_FAILURE entry, never a pass', async () => {
    const pdf = commentedObjects(2000);
    const result = await verifyPdf(pdf, options);
    assert.equal(result.unreadable, undefined);
    assert.equal(result.signatures.length, 1);
    assert.equal(result.overall.indication, 'INDETERMINATE');
    assert.equal(result.overall.subIndication, 'SIG_CONSTRAINTS_FAILURE');
    assert.match(result.signatures[0]?.reasons[0] ?? '', /work budget of \d+ units .* not examined/);
    assert.equal(result.document.coverage, 'none');
  });

  it('gives a mail with such a PDF INDETERMINATE, never a pass', async () => {
    const mail = message(
      ['From: x@example.org', 'To: poststelle@behoerde.example', 'Subject: Antrag'],
      multipartMixed([textPart('Anbei.'), attachment('antrag.pdf', 'application/pdf', commentedObjects(2000))]),
    );
    const result = await verifyMessage(mail, options);
    assert.equal(summaryHeader(result), 'INDETERMINATE; sub=SIG_CONSTRAINTS_FAILURE');
    assert.equal(result.layers.find((l) => l.path === '/2')?.kind, 'pades');
  });
});

/** Objects on one line, each a comment to its end and then the name /X: each readable, none a signature. */
function commentedObjects(count: number): Buffer {
  return pdfAround(`${objects(count, (n) => `${n} 0 obj % /ByteRange `)}\n/X\nendobj\n`);
}
