// The message an enabled agency address receives: a new top-level multipart/mixed the gateway writes, carrying
//   1. the message as it reached this stage, byte for byte, as message/rfc822 (its own header block included, so the
//      reader sees its From, Date and Subject, and `openssl cms -verify` on the extracted part checks it as sent:
//      multipart/signed and opaque signatures sit in its body, which nothing here touches);
//   2. the PDF report for people; 3. the ETSI TS 119 102-2 XML report (not for an unsigned message: the report
//      model describes signatures and its schema needs at least one);
// with X-SMGW-Signature (the summary) in the new top-level header. Being the gateway's own outer layer, its header
// and its parts after the first cannot be written by a sender: whatever the message holds stays inside part 1. A
// sender can still attach a file named like ours inside part 1: report-imitations.ts finds those, the report
// warns of them.
import { randomBytes } from 'node:crypto';
import { HeaderBudgetError, type HeaderField, headerBudget, headerBytes, splitHeaderBlockWithin } from '@smgw/mime';
import { SUMMARY_HEADER_NAME } from '@smgw/signature-verify';

export const PDF_REPORT_NAME = 'Signaturpruefbericht.pdf';
export const XML_REPORT_NAME = 'validation-report.xml';

/** Fields of the original that do not describe the new top-level message (its MIME structure, its DKIM proof). */
const NOT_CARRIED_OUT = [
  'mime-version',
  'dkim-signature',
  'arc-seal',
  'arc-message-signature',
  'arc-authentication-results',
];

function carriedOut(field: HeaderField): boolean {
  return (
    !field.key.startsWith('content-') &&
    !NOT_CARRIED_OUT.includes(field.key) &&
    field.key !== SUMMARY_HEADER_NAME.toLowerCase()
  );
}

/** message/rfc822 allows only an identity encoding (RFC 2046 §5.2.1): the narrowest that describes the bytes. */
export function identityEncoding(bytes: Buffer): '7bit' | '8bit' | 'binary' {
  let eightBit = false;
  let lineLength = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b === 0x0a) {
      if (bytes[i - 1] !== 0x0d) return 'binary';
      lineLength = 0;
      continue;
    }
    if (b === 0x0d && bytes[i + 1] !== 0x0a) return 'binary';
    if (b === 0) return 'binary';
    if (b > 0x7f) eightBit = true;
    if (++lineLength > 998) return 'binary';
  }
  return eightBit ? '8bit' : '7bit';
}

function base64Lines(bytes: Buffer): string {
  return (bytes.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

/** A boundary that occurs nowhere in the message (RFC 2046 §5.1.1). */
function boundaryFor(original: Buffer): string {
  for (;;) {
    const boundary = `smgw-report-${randomBytes(18).toString('hex')}`;
    if (!original.includes(boundary)) return boundary;
  }
}

/**
 * The original's top header fields and body, or undefined when its header is beyond one walk's HeaderBudget (1 MiB,
 * 100,000 lines): read without a bound, a 31 MB header took 2.3–4.8 s of the verify stage's event loop here. Ingest
 * refuses such a header and encrypt leaves content that would bring one closed; the verifier's walk, within the same
 * budget, counts such a message not examined, so it is reported.
 */
function topHeaderOf(original: Buffer): { fields: HeaderField[]; body: Buffer } | undefined {
  try {
    return splitHeaderBlockWithin(original, headerBudget());
  } catch (err) {
    if (err instanceof HeaderBudgetError) return undefined;
    throw err;
  }
}

export interface ReportParts {
  /** The X-SMGW-Signature value (summaryHeader). */
  summary: string;
  pdf: Buffer;
  /** Absent for an unsigned message reported for imitations of the report (no signature to state). */
  xml?: string;
  /** Fixed in tests; random otherwise. */
  boundary?: string;
}

export function buildReportMessage(original: Buffer, parts: ReportParts): Buffer {
  const boundary = parts.boundary ?? boundaryFor(original);
  // A header beyond the budget carries nothing out: the original, untouched, is the first part.
  const outer = (topHeaderOf(original)?.fields ?? []).filter(carriedOut);
  const encoding = identityEncoding(original);
  const head = [
    `${SUMMARY_HEADER_NAME}: ${parts.summary}`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    ...(encoding === '7bit' ? [] : [`Content-Transfer-Encoding: ${encoding}`]),
  ].join('\r\n');
  const delimiter = `\r\n--${boundary}\r\n`;
  const xml = parts.xml;
  return Buffer.concat([
    Buffer.from(`${head}\r\n`, 'latin1'),
    headerBytes(outer),
    Buffer.from(
      [
        '',
        `Diese Nachricht wurde vom SecureMail Gateway auf Signaturen geprueft: die Nachricht wie empfangen, dann der Pruefbericht (PDF)${xml === undefined ? '' : ' und der ETSI-Bericht (XML)'}.`,
        `This message was checked for signatures by the SecureMail Gateway: the message as received, then the report (PDF)${xml === undefined ? '' : ' and the ETSI report (XML)'}.`,
      ].join('\r\n'),
      'utf8',
    ),
    Buffer.from(delimiter, 'latin1'),
    Buffer.from(
      [
        'Content-Type: message/rfc822',
        'Content-Disposition: inline',
        'Content-Description: Nachricht wie empfangen / message as received',
        `Content-Transfer-Encoding: ${encoding}`,
        '',
        '',
      ].join('\r\n'),
      'latin1',
    ),
    original,
    Buffer.from(delimiter, 'latin1'),
    Buffer.from(
      [
        `Content-Type: application/pdf; name="${PDF_REPORT_NAME}"`,
        `Content-Disposition: attachment; filename="${PDF_REPORT_NAME}"`,
        'Content-Description: Signaturpruefbericht / signature verification report',
        'Content-Transfer-Encoding: base64',
        '',
        base64Lines(parts.pdf),
      ].join('\r\n'),
      'latin1',
    ),
    ...(xml === undefined
      ? []
      : [
          Buffer.from(delimiter, 'latin1'),
          Buffer.from(
            [
              `Content-Type: application/xml; charset=utf-8; name="${XML_REPORT_NAME}"`,
              `Content-Disposition: attachment; filename="${XML_REPORT_NAME}"`,
              'Content-Description: ETSI TS 119 102-2 validation report',
              'Content-Transfer-Encoding: base64',
              '',
              base64Lines(Buffer.from(xml, 'utf8')),
            ].join('\r\n'),
            'latin1',
          ),
        ]),
    Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'),
  ]);
}

/**
 * An unsigned message goes on as it is, with the summary (NONE) as its first header field. A summary field the
 * original still carries (ingest and encrypt remove them; this is the last line of defence) is dropped, so a
 * reader or filter that takes the last field, not the first, never sees the sender's `TOTAL_PASSED`. A header beyond
 * the budget is not read (the verifier reports such a message instead of coming here): ours goes first.
 */
export function withSummaryField(original: Buffer, summary: string): Buffer {
  const ours = Buffer.from(`${SUMMARY_HEADER_NAME}: ${summary}\r\n`, 'latin1');
  const top = topHeaderOf(original);
  if (!top) return Buffer.concat([ours, original]);
  const { fields, body } = top;
  const key = SUMMARY_HEADER_NAME.toLowerCase();
  if (!fields.some((f) => f.key === key)) return Buffer.concat([ours, original]);
  return Buffer.concat([ours, headerBytes(fields.filter((f) => f.key !== key)), Buffer.from('\r\n'), body]);
}
