// verifyPdf against PDFs signed in the test by independent signers (`openssl cms -sign` over a ByteRange prepared
// here, `openssl ts` for RFC 3161 tokens, @signpdf/signpdf with a PKCS#12), with poppler's pdfsig as a second opinion
// on every PDF: valid, tampered, changed by an incremental update after signing, two signatures with one broken, an
// untrusted signer, document and signature timestamps, malformed files, and a signed PDF attached to a mail.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pdfSummaryHeader, summaryHeader, type VerifyPdfOptions, verifyMessage, verifyPdf } from '../src/index.ts';
import { addUnsignedAttribute, flipSignatureByte } from './cms-surgery.ts';
import { type Authority, attachment, message, multipartMixed, type Signer, TestPki, textPart } from './openssl-pki.ts';
import { PdfWriter, pdfsig, signWithSignpdf } from './pdf-fixtures.ts';

/** DER of the OID id-aa-signatureTimeStampToken (1.2.840.113549.1.9.16.2.14). */
const DAY = 24 * 60 * 60 * 1000;
const SIGNATURE_TIME_STAMP_OID = Buffer.from('060b2a864886f70d010910020e', 'hex');

describe('verifyPdf', () => {
  let pki: TestPki;
  let root: Authority;
  let ca: Authority;
  let alice: Signer;
  let bob: Signer;
  let stranger: Signer;
  let tsa: Signer;
  /** A TSA issued by the root for three years: it outlives the signers (one year) and their CA. */
  let longTsa: Signer;
  const clock = new Date(Date.now() + 60 * 60 * 1000);
  const options = (): VerifyPdfOptions => ({
    trustAnchors: [{ certificate: root.der }],
    now: () => clock,
    revocation: 'off',
  });
  const cades = (signer: Signer) => (bytes: Buffer) =>
    pki.sign(bytes, [signer], { certfile: ca.certificatePath, extra: ['-cades'] });
  let pdfCount = 0;
  const secondOpinion = (pdf: Buffer) => pdfsig(pki.dir, `opinion-${pdfCount++}.pdf`, pdf);

  before(async () => {
    pki = await TestPki.create();
    root = await pki.root('PDF Root');
    ca = await pki.intermediate(root, 'PDF Signing CA');
    alice = await pki.signer(ca, 'alice');
    bob = await pki.signer(ca, 'bob');
    tsa = await pki.timestampAuthority(ca, 'PDF TSA');
    const stamp = (d: Date) => `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
    longTsa = await pki.timestampAuthority(root, 'Long TSA', {
      start: stamp(new Date(Date.now() - DAY)),
      end: stamp(new Date(Date.now() + 3 * 365 * DAY)),
    });
    const untrusted = await pki.root('Untrusted PDF Root');
    stranger = await pki.signer(untrusted, 'stranger');
  });
  after(async () => {
    await pki.remove();
  });

  it('passes a PDF signed by openssl (ETSI.CAdES.detached) over the whole file, as pdfsig does', async () => {
    const pdf = new PdfWriter('Antrag auf Baugenehmigung');
    await pdf.sign(cades(alice));
    const result = await verifyPdf(pdf.bytes, options());
    assert.equal(result.overall.indication, 'TOTAL_PASSED');
    assert.equal(result.overall.level, 'AdES');
    assert.equal(result.document.coverage, 'full');
    const [signature] = result.signatures;
    assert.equal(signature?.kind, 'signature');
    assert.equal(signature?.subFilter, 'ETSI.CAdES.detached');
    assert.equal(signature?.coversWholeDocument, true);
    assert.deepEqual(signature?.revision, { number: 2, of: 2, end: pdf.bytes.length });
    assert.equal(signature?.signer?.subject.includes('alice'), true);
    assert.equal(signature?.claimed.name, 'Test Signer');
    assert.equal(pdfSummaryHeader(result), 'TOTAL_PASSED; level=AdES; signatures=1');
    const opinion = await secondOpinion(pdf.bytes);
    assert.deepEqual(opinion.validations, ['Signature is Valid.']);
    assert.deepEqual(opinion.totalDocumentSigned, [true]);
  });

  it('passes a PDF signed by @signpdf/signpdf with a PKCS#12 (adbe.pkcs7.detached), as pdfsig does', async () => {
    const p12 = await pki.p12(alice, ca.certificatePath, 'test-pass');
    const signed = await signWithSignpdf(new PdfWriter('Widerspruch').bytes, p12, 'test-pass');
    const result = await verifyPdf(signed, options());
    assert.equal(result.overall.indication, 'TOTAL_PASSED');
    assert.equal(result.signatures[0]?.subFilter, 'adbe.pkcs7.detached');
    assert.equal(result.signatures[0]?.claimed.reason, 'Antrag');
    assert.equal(result.document.coverage, 'full');
    assert.deepEqual((await secondOpinion(signed)).validations, ['Signature is Valid.']);
  });

  it('fails a PDF with one byte changed inside a signed range: TOTAL_FAILED HASH_FAILURE, as pdfsig does', async () => {
    const pdf = new PdfWriter('Betrag: 100 EUR');
    await pdf.sign(cades(alice));
    const tampered = Buffer.from(pdf.bytes);
    const at = tampered.indexOf('100 EUR');
    tampered.write('900', at, 'latin1');
    const result = await verifyPdf(tampered, options());
    assert.equal(result.overall.indication, 'TOTAL_FAILED');
    assert.equal(result.overall.subIndication, 'HASH_FAILURE');
    assert.equal(result.document.coverage, 'none');
    assert.deepEqual((await secondOpinion(tampered)).validations, ['Digest Mismatch.']);
  });

  it('reports a PDF changed by an incremental update after signing: valid for its revision, coverage partial (pdfsig calls it valid)', async () => {
    const pdf = new PdfWriter('Betrag: 100 EUR');
    await pdf.sign(cades(alice));
    const signedLength = pdf.bytes.length;
    pdf.changeText('Betrag: 900 EUR');
    const result = await verifyPdf(pdf.bytes, options());
    const [signature] = result.signatures;
    // The signature is intact for the revision it signed ...
    assert.equal(signature?.indication, 'TOTAL_PASSED');
    assert.deepEqual(signature?.revision, { number: 2, of: 3, end: signedLength });
    // ... but the document as shown is not what was signed, and every result says so.
    assert.equal(signature?.coversWholeDocument, false);
    assert.equal(signature?.bytesAfter, pdf.bytes.length - signedLength);
    assert.match(signature?.reasons.join(' ') ?? '', /changed after this signature/);
    assert.equal(result.document.coverage, 'partial');
    assert.equal(result.document.signedUpTo, signedLength);
    assert.match(result.document.sentence.de, /nach dem Signieren verändert/);
    assert.equal(pdfSummaryHeader(result), 'TOTAL_PASSED; level=AdES; signatures=1; coverage=partial');
    // pdfsig's opinion: "Signature is Valid." with "Not total document signed" (the gateway must not hide it).
    const opinion = await secondOpinion(pdf.bytes);
    assert.deepEqual(opinion.validations, ['Signature is Valid.']);
    assert.deepEqual(opinion.totalDocumentSigned, [false]);
  });

  it('reports two signatures with the first one broken: each on its own, the broken one TOTAL_FAILED, as pdfsig does', async () => {
    const pdf = new PdfWriter('Vertrag');
    await pdf.sign(async (bytes) => flipSignatureByte(await cades(alice)(bytes)), { name: 'Alice' });
    await pdf.sign(cades(bob), { name: 'Bob' });
    const result = await verifyPdf(pdf.bytes, options());
    assert.equal(result.signatures.length, 2);
    assert.equal(result.signatures[0]?.indication, 'TOTAL_FAILED');
    assert.equal(result.signatures[0]?.subIndication, 'SIG_CRYPTO_FAILURE');
    assert.equal(result.signatures[1]?.indication, 'TOTAL_PASSED');
    assert.equal(result.signatures[1]?.coversWholeDocument, true);
    assert.equal(result.overall.indication, 'TOTAL_FAILED');
    assert.equal(result.document.coverage, 'full');
    const opinion = await secondOpinion(pdf.bytes);
    assert.equal(opinion.validations.length, 2);
    assert.notEqual(opinion.validations[0], 'Signature is Valid.');
    assert.equal(opinion.validations[1], 'Signature is Valid.');
  });

  it('is INDETERMINATE NO_CERTIFICATE_CHAIN_FOUND for a signer from an untrusted CA (pdfsig, asked no chain, says valid)', async () => {
    const pdf = new PdfWriter('Fremd');
    await pdf.sign((bytes) => pki.sign(bytes, [stranger], { extra: ['-cades'] }));
    const result = await verifyPdf(pdf.bytes, options());
    assert.equal(result.overall.indication, 'INDETERMINATE');
    assert.equal(result.overall.subIndication, 'NO_CERTIFICATE_CHAIN_FOUND');
    assert.deepEqual((await secondOpinion(pdf.bytes)).validations, ['Signature is Valid.']);
  });

  it('verifies a document timestamp (ETSI.RFC3161) over its ByteRange and fails one whose imprint is of other bytes', async () => {
    const pdf = new PdfWriter('Zeitstempel');
    await pdf.sign(cades(alice));
    await pdf.sign((bytes) => pki.timestamp(bytes, tsa, ca.certificatePath), { type: 'DocTimeStamp' });
    const result = await verifyPdf(pdf.bytes, options());
    const [signature, timestamp] = result.signatures;
    assert.equal(timestamp?.kind, 'document-timestamp');
    assert.equal(timestamp?.indication, 'TOTAL_PASSED');
    assert.equal(timestamp?.timestamp?.imprintMatches, true);
    assert.ok(timestamp?.proofOfExistence instanceof Date);
    assert.equal(timestamp?.coversWholeDocument, true);
    assert.equal(signature?.indication, 'TOTAL_PASSED');
    // A timestamp has no level of its own: the signature's AdES stands.
    assert.equal(result.overall.level, 'AdES');
    // What came after the signature is stamped, not signed: a timestamp proves when, not who.
    assert.equal(result.document.coverage, 'partial');

    const forged = new PdfWriter('Zeitstempel');
    await forged.sign(() => pki.timestamp(Buffer.from('other bytes'), tsa, ca.certificatePath), {
      type: 'DocTimeStamp',
    });
    const wrong = await verifyPdf(forged.bytes, options());
    assert.equal(wrong.signatures[0]?.indication, 'TOTAL_FAILED');
    assert.equal(wrong.signatures[0]?.subIndication, 'HASH_FAILURE');
    // pdfsig does not validate document timestamps ("Signature has not yet been verified.").
    const opinion = await secondOpinion(pdf.bytes);
    assert.equal(opinion.validations[0], 'Signature is Valid.');
    assert.notEqual(opinion.validations[1], 'Signature is Valid.');
  });

  it('takes a valid signature timestamp as proof of existence, and one over other bytes as proving nothing', async () => {
    let token: Buffer | undefined;
    const stamp = (other: boolean) => async (bytes: Buffer) => {
      const cms = await cades(alice)(bytes);
      const { parseContentInfo } = await import('../src/index.ts');
      const parsed = parseContentInfo(cms);
      if (parsed.kind !== 'signed-data') throw new Error('not signed-data');
      const value = parsed.signedData.signerInfos[0]?.signature as Buffer;
      token = await pki.timestamp(other ? Buffer.from('not the signature') : value, tsa, ca.certificatePath);
      return addUnsignedAttribute(cms, SIGNATURE_TIME_STAMP_OID, token);
    };
    const pdf = new PdfWriter('Mit Zeitstempel');
    await pdf.sign(stamp(false));
    const result = await verifyPdf(pdf.bytes, options());
    const [signature] = result.signatures;
    assert.equal(signature?.indication, 'TOTAL_PASSED');
    assert.equal(signature?.timestamp?.indication, 'TOTAL_PASSED');
    assert.ok(signature?.proofOfExistence instanceof Date);
    assert.deepEqual((await secondOpinion(pdf.bytes)).validations, ['Signature is Valid.']);

    const other = new PdfWriter('Mit falschem Zeitstempel');
    await other.sign(stamp(true));
    const wrong = await verifyPdf(other.bytes, options());
    assert.equal(wrong.signatures[0]?.indication, 'TOTAL_PASSED');
    assert.equal(wrong.signatures[0]?.timestamp?.subIndication, 'HASH_FAILURE');
    assert.equal(wrong.signatures[0]?.proofOfExistence, undefined);
  });

  it('judges a signer that has expired since at the time its signature timestamp proves', async () => {
    const later = new Date(Date.now() + 400 * DAY);
    const at = { ...options(), now: () => later };
    const stamped = new PdfWriter('Langzeit');
    await stamped.sign(async (bytes) => {
      const cms = await cades(alice)(bytes);
      const { parseContentInfo } = await import('../src/index.ts');
      const parsed = parseContentInfo(cms);
      if (parsed.kind !== 'signed-data') throw new Error('not signed-data');
      const value = parsed.signedData.signerInfos[0]?.signature as Buffer;
      return addUnsignedAttribute(
        cms,
        SIGNATURE_TIME_STAMP_OID,
        await pki.timestamp(value, longTsa, root.certificatePath),
      );
    });
    const result = await verifyPdf(stamped.bytes, at);
    assert.equal(result.signatures[0]?.indication, 'TOTAL_PASSED');
    assert.ok(result.signatures[0]?.proofOfExistence instanceof Date);
    assert.match(result.signatures[0]?.reasons.join(' ') ?? '', /expired since/);

    const unstamped = new PdfWriter('Langzeit');
    await unstamped.sign(cades(alice));
    const without = await verifyPdf(unstamped.bytes, at);
    assert.equal(without.overall.indication, 'INDETERMINATE');
    assert.equal(without.overall.subIndication, 'OUT_OF_BOUNDS_NO_POE');
    assert.deepEqual((await secondOpinion(stamped.bytes)).validations, ['Signature is Valid.']);
  });

  it('uses the CRLs of a /DSS appended after signing (PAdES-LT) for the path, with no network', async () => {
    const required = { ...options(), revocation: 'require' as const };
    const pdf = new PdfWriter('Langzeitvalidierung');
    await pdf.sign(cades(alice));
    const without = await verifyPdf(pdf.bytes, required);
    assert.equal(without.overall.indication, 'INDETERMINATE');
    pdf.addDss({ crls: [await pki.crl(ca), await pki.crl(root)] }, true);
    const result = await verifyPdf(pdf.bytes, required);
    const [signature] = result.signatures;
    assert.equal(signature?.indication, 'TOTAL_PASSED', signature?.reasons.join('; '));
    assert.deepEqual(
      signature?.chain?.certificates.map((c) => c.revocationData?.source),
      ['embedded', 'embedded', undefined],
    );
    // The DSS revision is not signed: the document reads as changed after signing (no DocMDP evaluation).
    assert.equal(result.document.coverage, 'partial');

    const revokedSigner = await pki.signer(ca, 'pdf-revoked');
    await pki.revoke(ca, revokedSigner);
    const revoked = new PdfWriter('Gesperrt');
    await revoked.sign(cades(revokedSigner));
    revoked.addDss({ crls: [await pki.crl(ca), await pki.crl(root)] });
    const refused = await verifyPdf(revoked.bytes, required);
    assert.equal(refused.overall.indication, 'TOTAL_FAILED');
    assert.equal(refused.overall.subIndication, 'REVOKED');
  });

  describe('malformed PDFs are TOTAL_FAILED FORMAT_FAILURE, never a crash', () => {
    const signedPdf = async () => {
      const pdf = new PdfWriter('Form');
      await pdf.sign(cades(alice));
      return pdf.bytes;
    };
    const rewriteByteRange = (bytes: Buffer, range: string) => {
      const copy = Buffer.from(bytes);
      const at = copy.indexOf('/ByteRange [');
      const end = copy.indexOf(']', at) + 1;
      const written = `/ByteRange ${range}`;
      assert.ok(written.length <= end - at);
      copy.write(written.padEnd(end - at, ' '), at, 'latin1');
      return copy;
    };

    it('a truncated file: cut inside the signature, or before the first %%EOF', async () => {
      const bytes = await signedPdf();
      const truncated = bytes.subarray(0, Math.floor(bytes.length / 2));
      const result = await verifyPdf(truncated, options());
      assert.equal(result.overall.indication, 'TOTAL_FAILED');
      assert.equal(result.overall.subIndication, 'FORMAT_FAILURE');
      assert.match(result.signatures[0]?.reasons[0] ?? '', /not readable: unterminated hex string/);
      assert.ok(!(await secondOpinion(truncated)).validations.includes('Signature is Valid.'));
      const early = await verifyPdf(bytes.subarray(0, 300), options());
      assert.equal(early.overall.subIndication, 'FORMAT_FAILURE');
      assert.match(early.unreadable ?? '', /no %%EOF/);
    });

    it('a ByteRange pointing outside the file', async () => {
      const bytes = await signedPdf();
      const contentsAt = bytes.indexOf('/Contents <') + 10;
      const contentsEnd = bytes.indexOf('>', contentsAt) + 1;
      const outside = rewriteByteRange(bytes, `[0 ${contentsAt} ${contentsEnd} 9999999]`);
      const result = await verifyPdf(outside, options());
      assert.equal(result.signatures[0]?.indication, 'TOTAL_FAILED');
      assert.equal(result.signatures[0]?.subIndication, 'FORMAT_FAILURE');
      assert.match(result.signatures[0]?.reasons[0] ?? '', /beyond the end of the file/);
      assert.ok(!(await secondOpinion(outside)).validations.includes('Signature is Valid.'));
    });

    it('a ByteRange whose gap is more than the /Contents string, or that does not end at %%EOF', async () => {
      const bytes = await signedPdf();
      const contentsAt = bytes.indexOf('/Contents <') + 10;
      const contentsEnd = bytes.indexOf('>', contentsAt) + 1;
      const wider = rewriteByteRange(bytes, `[0 ${contentsAt - 20} ${contentsEnd} ${bytes.length - contentsEnd}]`);
      const result = await verifyPdf(wider, options());
      assert.equal(result.signatures[0]?.subIndication, 'FORMAT_FAILURE');
      assert.match(result.signatures[0]?.reasons[0] ?? '', /not exactly this signature's \/Contents/);
      const short = rewriteByteRange(bytes, `[0 ${contentsAt} ${contentsEnd} ${bytes.length - contentsEnd - 30}]`);
      const shortResult = await verifyPdf(short, options());
      assert.equal(shortResult.signatures[0]?.subIndication, 'FORMAT_FAILURE');
      assert.match(shortResult.signatures[0]?.reasons[0] ?? '', /not the end of a revision/);
      // pdfsig checks only the digest here: the signature no longer matches either way.
      assert.ok(!(await secondOpinion(wider)).validations.includes('Signature is Valid.'));
    });

    it('a ByteRange that does not start at 0, and a signature dictionary with a key given twice', async () => {
      const bytes = await signedPdf();
      const contentsAt = bytes.indexOf('/Contents <') + 10;
      const contentsEnd = bytes.indexOf('>', contentsAt) + 1;
      const late = rewriteByteRange(bytes, `[10 ${contentsAt - 10} ${contentsEnd} ${bytes.length - contentsEnd}]`);
      const result = await verifyPdf(late, options());
      assert.equal(result.signatures[0]?.subIndication, 'FORMAT_FAILURE');
      assert.match(result.signatures[0]?.reasons[0] ?? '', /starts at byte 10/);
      assert.ok(!(await secondOpinion(late)).validations.includes('Signature is Valid.'));
      const twice = Buffer.from(bytes);
      twice.write('/Name  ', twice.indexOf('/Filter /Adobe.PPKLite'), 'latin1');
      const twiceResult = await verifyPdf(twice, options());
      assert.equal(twiceResult.signatures[0]?.subIndication, 'FORMAT_FAILURE');
      assert.match(twiceResult.signatures[0]?.reasons[0] ?? '', /appears twice/);
      assert.ok(!(await secondOpinion(twice)).validations.includes('Signature is Valid.'));
    });

    it('huge numbers in the ByteRange and in startxref', async () => {
      const bytes = await signedPdf();
      const huge = rewriteByteRange(bytes, '[0 99999999999999999999 1 1]');
      const result = await verifyPdf(huge, options());
      assert.equal(result.signatures[0]?.subIndication, 'FORMAT_FAILURE');
      assert.match(result.signatures[0]?.reasons[0] ?? '', /safe size/);
      assert.ok(!(await secondOpinion(huge)).validations.includes('Signature is Valid.'));

      const text = bytes.toString('latin1');
      const at = text.lastIndexOf('startxref\n') + 'startxref\n'.length;
      const badXref = Buffer.concat([bytes.subarray(0, at), Buffer.from('99999999999999999999\n%%EOF\n')]);
      const xrefResult = await verifyPdf(badXref, options());
      assert.equal(xrefResult.overall.subIndication, 'FORMAT_FAILURE');
      assert.match(xrefResult.unreadable ?? '', /outside the file/);
      assert.ok(!(await secondOpinion(badXref)).validations.includes('Signature is Valid.'));
    });

    it('a cross-reference chain that loops', async () => {
      const pdf = new PdfWriter('Schleife');
      pdf.changeText('Schleife 2');
      const text = pdf.bytes.toString('latin1');
      const lastXref = Number(/startxref\n(\d+)\n%%EOF\n$/.exec(text)?.[1]);
      const looped = Buffer.from(
        text.replace(/\/Prev \d+ >>\nstartxref\n(\d+)\n%%EOF\n$/, `/Prev ${lastXref} >>\nstartxref\n$1\n%%EOF\n`),
        'latin1',
      );
      assert.notDeepEqual(looped, pdf.bytes);
      const result = await verifyPdf(looped, options());
      assert.equal(result.overall.subIndication, 'FORMAT_FAILURE');
      assert.match(result.unreadable ?? '', /loop/);
      // pdfsig (poppler rebuilds broken cross-references) finds no signature in this unsigned file either.
      assert.deepEqual((await secondOpinion(looped)).validations, []);
    });

    it('more bytes than the limit, and not a PDF at all', async () => {
      const bytes = await signedPdf();
      const big = await verifyPdf(bytes, { ...options(), limits: { maxBytes: 1000 } });
      assert.match(big.unreadable ?? '', /more than the limit/);
      const garbage = await verifyPdf(Buffer.from('GIF89a /ByteRange [0 1 2 3] %%EOF'), options());
      assert.equal(garbage.overall.subIndication, 'FORMAT_FAILURE');
    });
  });

  it('is never TOTAL_PASSED for a SubFilter it does not verify (adbe.pkcs7.sha1)', async () => {
    const pdf = new PdfWriter('Alt');
    await pdf.sign(cades(alice), { subFilter: 'adbe.pkcs7.sha1' });
    const result = await verifyPdf(pdf.bytes, options());
    assert.equal(result.overall.indication, 'INDETERMINATE');
    assert.equal(result.overall.subIndication, 'SIG_CONSTRAINTS_FAILURE');
    // Where pdfsig differs: it ignores the SubFilter and checks the CMS as detached, so it says valid. We do not
    // guess which of two formats a signature is in: the label and the content disagree, so it is not confirmed.
    assert.deepEqual((await secondOpinion(pdf.bytes)).validations, ['Signature is Valid.']);
  });

  it('ignores /ByteRange written inside a content stream, and reports no signature for an unsigned PDF', async () => {
    const pdf = new PdfWriter('/ByteRange [0 1 2 3] /Contents <00>');
    const result = await verifyPdf(pdf.bytes, options());
    assert.equal(result.signatures.length, 0);
    assert.equal(result.overall.indication, 'NONE');
    assert.equal(result.document.coverage, 'none');
    assert.equal(pdfSummaryHeader(result), 'NONE');
    assert.deepEqual((await secondOpinion(pdf.bytes)).validations, []);
  });

  it('never counts signature dictionaries beyond the limit as verified', async () => {
    const pdf = new PdfWriter('Viele');
    await pdf.sign(cades(alice));
    await pdf.sign(cades(bob));
    const result = await verifyPdf(pdf.bytes, { ...options(), limits: { maxSignatures: 1 } });
    assert.equal(result.signatures.length, 2);
    assert.equal(result.signatures[1]?.indication, 'INDETERMINATE');
    assert.equal(result.signatures[1]?.subIndication, 'SIG_CONSTRAINTS_FAILURE');
    assert.equal(result.overall.indication, 'INDETERMINATE');
    assert.deepEqual((await secondOpinion(pdf.bytes)).validations, ['Signature is Valid.', 'Signature is Valid.']);
  });

  describe('in a message', () => {
    it('reports a signed PDF attachment as a layer at its position, covering the PDF but not the text', async () => {
      const pdf = new PdfWriter('Bescheid');
      await pdf.sign(cades(alice));
      const mail = message(
        ['From: Bürger <citizen@example.org>', 'To: poststelle@behoerde.example', 'Subject: Antrag'],
        multipartMixed([
          textPart('Anbei der signierte Antrag.'),
          attachment('antrag.pdf', 'application/pdf', pdf.bytes),
        ]),
      );
      const result = await verifyMessage(mail, {
        trustAnchors: [{ certificate: root.der }],
        now: () => clock,
        revocation: 'off',
      });
      const layer = result.layers.find((l) => l.kind === 'pades');
      assert.equal(layer?.path, '/2');
      assert.equal(result.overall.indication, 'TOTAL_PASSED');
      assert.equal(result.signatures[0]?.path, '/2');
      assert.equal(result.signatures[0]?.pdf?.coversWholeDocument, true);
      assert.match(result.signatures[0]?.format ?? '', /PAdES signature \(ETSI\.CAdES\.detached\)/);
      assert.deepEqual(
        result.coverage.covered.map((p) => p.path),
        ['/2'],
      );
      assert.deepEqual(
        result.coverage.uncovered.map((p) => p.path),
        ['/1'],
      );
      // The PDF's signer is not the mail's sender: identity is about the mail's signature.
      assert.equal(result.identity.status, 'not-applicable');
    });

    it('flags coverage=partial when the only signature in a mail covers an earlier revision of its PDF', async () => {
      // The attacker mails a validly signed PDF with an incremental update after signing that changes the text.
      const pdf = new PdfWriter('Betrag: 100 EUR');
      await pdf.sign(cades(alice));
      pdf.changeText('Betrag: 900 EUR');
      const mail = message(
        ['From: Bürger <citizen@example.org>', 'To: poststelle@behoerde.example', 'Subject: Antrag'],
        multipartMixed([
          textPart('Anbei der signierte Antrag.'),
          attachment('antrag.pdf', 'application/pdf', pdf.bytes),
        ]),
      );
      const result = await verifyMessage(mail, {
        trustAnchors: [{ certificate: root.der }],
        now: () => clock,
        revocation: 'off',
      });
      // Valid for the revision it signed, so TOTAL_PASSED; but nothing the reader sees is covered by it.
      assert.equal(result.signatures[0]?.pdf?.coversWholeDocument, false);
      assert.equal(summaryHeader(result), 'TOTAL_PASSED; level=AdES; signatures=1; coverage=partial');
      assert.equal(result.coverage.status, 'partial');
      assert.deepEqual(result.coverage.covered, []);
      assert.deepEqual(
        result.coverage.uncovered.map((p) => [p.path, p.description]),
        [
          ['/1', 'text/plain'],
          ['/2', 'application/pdf “antrag.pdf” (attachment), changed after signing'],
        ],
      );
    });

    it('leaves a PDF changed after signing uncovered and reports its signature, and refuses an unreadable one', async () => {
      const pdf = new PdfWriter('Bescheid');
      await pdf.sign(cades(alice));
      pdf.changeText('Bescheid geändert');
      const truncated = Buffer.from(pdf.bytes.subarray(0, 300));
      const mail = message(
        ['From: Bürger <citizen@example.org>', 'To: poststelle@behoerde.example'],
        multipartMixed([
          attachment('bescheid.pdf', 'application/octet-stream', pdf.bytes),
          attachment('kaputt.pdf', 'application/pdf', Buffer.concat([truncated, Buffer.from('/ByteRange')])),
        ]),
      );
      const result = await verifyMessage(mail, {
        trustAnchors: [{ certificate: root.der }],
        now: () => clock,
        revocation: 'off',
      });
      const changed = result.signatures.find((s) => s.path === '/1');
      assert.equal(changed?.indication, 'TOTAL_PASSED');
      assert.equal(changed?.pdf?.coversWholeDocument, false);
      assert.match(changed?.covers?.description ?? '', /changed afterwards/);
      assert.equal(result.coverage.status, 'partial');
      assert.equal(result.parts.find((p) => p.path === '/1')?.description.includes('changed after signing'), true);
      const broken = result.layers.find((l) => l.path === '/2');
      assert.equal(broken?.kind, 'malformed');
      assert.equal(result.overall.indication, 'TOTAL_FAILED');
      assert.equal(result.overall.subIndication, 'FORMAT_FAILURE');
    });
  });
});
