// PDFs made in the test: a one-page PDF with a classic cross-reference table, and incremental updates appended to it
// (ISO 32000-1 §7.5.6) that add a signature field whose /Contents is filled by an independent signer (`openssl cms
// -sign` over the ByteRange prepared here, or `openssl ts` for a document timestamp), or that change an object after
// signing. Also @signpdf/signpdf with a PKCS#12 as a second, independent PDF signer, and poppler's `pdfsig`.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { deflateSync } from 'node:zlib';
import { plainAddPlaceholder } from '@signpdf/placeholder-plain';
import { P12Signer } from '@signpdf/signer-p12';
import { SignPdf } from '@signpdf/signpdf';

const run = promisify(execFile);
const CONTENTS_BYTES = 12 * 1024;

/** A PDF built revision by revision; objects 1 (catalog), 2 (pages), 3 (page), 4 (content) are the original. */
export class PdfWriter {
  bytes: Buffer;
  private nextObject = 5;
  private lastXref: number;
  private readonly fields: number[] = [];

  constructor(text: string) {
    const objects = new Map<number, string>([
      [1, '<< /Type /Catalog /Pages 2 0 R >>'],
      [2, '<< /Type /Pages /Kids [3 0 R] /Count 1 >>'],
      [3, this.page()],
      [4, this.content(text)],
    ]);
    this.bytes = Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1');
    this.lastXref = -1;
    this.append(objects);
  }

  private page(): string {
    const annots = this.fields.length > 0 ? ` /Annots [${this.fields.map((f) => `${f} 0 R`).join(' ')}]` : '';
    return `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R${annots} >>`;
  }

  private content(text: string): string {
    const stream = `BT /F1 12 Tf 72 770 Td (${text}) Tj ET`;
    return `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`;
  }

  private catalog(): string {
    const form =
      this.fields.length > 0
        ? ` /AcroForm << /Fields [${this.fields.map((f) => `${f} 0 R`).join(' ')}] /SigFlags 3 >>`
        : '';
    return `<< /Type /Catalog /Pages 2 0 R${form} >>`;
  }

  /** Appends a revision holding these objects, with its xref section and trailer (/Prev to the last one). */
  append(objects: Map<number, string | Buffer>): void {
    const chunks: Buffer[] = [this.bytes];
    let offset = this.bytes.length;
    const offsets = new Map<number, number>();
    for (const [number, body] of [...objects].sort((a, b) => a[0] - b[0])) {
      const chunk = Buffer.concat([
        Buffer.from(`${number} 0 obj\n`, 'latin1'),
        typeof body === 'string' ? Buffer.from(body, 'latin1') : body,
        Buffer.from('\nendobj\n', 'latin1'),
      ]);
      offsets.set(number, offset);
      chunks.push(chunk);
      offset += chunk.length;
    }
    const xrefAt = offset;
    const entry = (n: number) => `${String(n).padStart(10, '0')} 00000 n\r\n`;
    let xref = 'xref\n';
    if (this.lastXref < 0) xref += `0 1\n0000000000 65535 f\r\n`;
    for (const [number, at] of offsets) xref += `${number} 1\n${entry(at)}`;
    const prev = this.lastXref >= 0 ? ` /Prev ${this.lastXref}` : '';
    xref += `trailer\n<< /Size ${this.nextObject} /Root 1 0 R${prev} >>\nstartxref\n${xrefAt}\n%%EOF\n`;
    chunks.push(Buffer.from(xref, 'latin1'));
    this.bytes = Buffer.concat(chunks);
    this.lastXref = xrefAt;
  }

  /**
   * An incremental update adding a document security store (ETSI EN 319 142-1 §5.4.2: /DSS in the catalog with
   * /CRLs and /OCSPs arrays of streams), as a PAdES-LT writer appends it after signing. `compress`: FlateDecode.
   */
  addDss(data: { crls?: Buffer[]; ocspResponses?: Buffer[] }, compress = false): void {
    const objects = new Map<number, string | Buffer>();
    const streamObject = (der: Buffer): number => {
      const number = this.nextObject++;
      const body = compress ? deflateSync(der) : der;
      objects.set(
        number,
        Buffer.concat([
          Buffer.from(`<< /Length ${body.length}${compress ? ' /Filter /FlateDecode' : ''} >>\nstream\n`, 'latin1'),
          body,
          Buffer.from('\nendstream', 'latin1'),
        ]),
      );
      return number;
    };
    const crls = (data.crls ?? []).map(streamObject);
    const ocsps = (data.ocspResponses ?? []).map(streamObject);
    const dss = this.nextObject++;
    const refs = (numbers: number[]) => numbers.map((n) => `${n} 0 R`).join(' ');
    objects.set(dss, `<< /CRLs [${refs(crls)}] /OCSPs [${refs(ocsps)}] >>`);
    objects.set(1, this.catalog().replace(/ >>$/, ` /DSS ${dss} 0 R >>`));
    this.append(objects);
  }

  /** An incremental update that changes the page text (what an attacker appends after signing). */
  changeText(text: string): void {
    this.append(new Map([[4, this.content(text)]]));
  }

  /**
   * An incremental update adding a signature field whose /Contents is made by `sign` over the ByteRange (the file
   * without the /Contents hex string). `type`/`subFilter` make a /Sig or a /DocTimeStamp.
   */
  async sign(
    sign: (signedBytes: Buffer) => Promise<Buffer>,
    options: { type?: 'Sig' | 'DocTimeStamp'; subFilter?: string; name?: string } = {},
  ): Promise<void> {
    const signature = this.nextObject++;
    const field = this.nextObject++;
    this.fields.push(field);
    const type = options.type ?? 'Sig';
    const subFilter = options.subFilter ?? (type === 'Sig' ? 'ETSI.CAdES.detached' : 'ETSI.RFC3161');
    const placeholderRange = '/ByteRange [0 0000000000 0000000000 0000000000]';
    const dictionary = `<< /Type /${type} /Filter /Adobe.PPKLite /SubFilter /${subFilter} ${placeholderRange} /Contents <${'0'.repeat(2 * CONTENTS_BYTES)}>${type === 'Sig' ? ` /Name (${options.name ?? 'Test Signer'}) /M (D:20260101120000Z)` : ''} >>`;
    this.append(
      new Map<number, string>([
        [1, this.catalog()],
        [3, this.page()],
        [signature, dictionary],
        [
          field,
          `<< /FT /Sig /T (Signature${field}) /V ${signature} 0 R /Type /Annot /Subtype /Widget /Rect [0 0 0 0] /F 4 /P 3 0 R >>`,
        ],
      ]),
    );
    const text = this.bytes.toString('latin1');
    const rangeAt = text.lastIndexOf(placeholderRange);
    const contentsStart = text.indexOf('/Contents <', rangeAt) + '/Contents '.length;
    const contentsEnd = text.indexOf('>', contentsStart) + 1;
    const pad = (n: number) => String(n).padStart(10, '0');
    const range = `/ByteRange [0 ${pad(contentsStart)} ${pad(contentsEnd)} ${pad(this.bytes.length - contentsEnd)}]`;
    this.bytes.write(range, rangeAt, 'latin1');
    const signed = Buffer.concat([this.bytes.subarray(0, contentsStart), this.bytes.subarray(contentsEnd)]);
    const der = await sign(signed);
    if (der.length > CONTENTS_BYTES) throw new Error('signature larger than the placeholder');
    this.bytes.write(der.toString('hex').toUpperCase(), contentsStart + 1, 'latin1');
  }
}

/** A PDF signed by @signpdf/signpdf (placeholder by @signpdf/placeholder-plain) with a PKCS#12. */
export async function signWithSignpdf(pdf: Buffer, p12: Buffer, passphrase: string): Promise<Buffer> {
  const withPlaceholder = plainAddPlaceholder({
    pdfBuffer: pdf,
    reason: 'Antrag',
    contactInfo: 'signer@partner.example',
    name: 'Signpdf Signer',
    location: 'Berlin',
  });
  return Buffer.from(await new SignPdf().sign(withPlaceholder, new P12Signer(p12, { passphrase })));
}

export interface PdfsigOpinion {
  /** Per signature in pdfsig's order: its "Signature Validation" line. */
  validations: string[];
  /** Per signature: whether pdfsig says "Total document signed". */
  totalDocumentSigned: boolean[];
  output: string;
  exitCode: number;
}

/** Poppler's pdfsig as a second opinion (it trusts nothing without an NSS database: the chain is not asked). */
export async function pdfsig(dir: string, name: string, pdf: Buffer): Promise<PdfsigOpinion> {
  const path = join(dir, name);
  await writeFile(path, pdf);
  let output = '';
  let exitCode = 0;
  try {
    const { stdout, stderr } = await run('pdfsig', ['-nocert', path], { encoding: 'utf8' });
    output = `${stdout}${stderr}`;
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string; code?: number };
    output = `${failure.stdout ?? ''}${failure.stderr ?? ''}`;
    exitCode = typeof failure.code === 'number' ? failure.code : 1;
  }
  const validations = [...output.matchAll(/Signature Validation: (.+)/g)].map((m) => (m[1] as string).trim());
  const totalDocumentSigned = [...output.matchAll(/- (Total document signed|Not total document signed)/g)].map(
    (m) => m[1] === 'Total document signed',
  );
  return { validations, totalDocumentSigned, output, exitCode };
}
