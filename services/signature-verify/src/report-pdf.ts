// The verification report for people (SPEC.md "Signature verification report"): a PDF the gateway writes, German
// first, English beside it, one traffic light per signature (green TOTAL_PASSED, yellow INDETERMINATE, red
// TOTAL_FAILED, each also named in words). Every value taken from the message (signer names, addresses, part
// names, reasons) is shown only as quoted text with anything unusual escaped (`quoted`), never as layout: nothing
// in a message can draw on the page.
import type { ChainRevocationData, Indication, ReportedSignature, VerificationResult } from '@smgw/signature-verify';
import { PDFDocument, type PDFFont, type PDFPage, rgb, StandardFonts } from 'pdf-lib';
import type { ImitationScan } from './report-imitations.ts';
import { IMITATION_REASONS, imitationNotices, MAX_LISTED_ADDRESSES } from './report-model.ts';

export interface PdfReportMeta {
  /** The gateway's message id. */
  messageId: string;
  hostname: string;
  /** SHA-256 (hex) of the message the report is about, as attached before it. */
  originalSha256: string;
  /** The X-SMGW-Signature value. */
  summary: string;
  /** The trusted lists in use: "DE (sequence 42)"; empty when none is configured. */
  trustedLists: string[];
  /** Parts of the message that imitate this report (report-imitations.ts). */
  imitations?: ImitationScan;
}

const LIGHT: Record<Indication, { color: ReturnType<typeof rgb>; de: string; en: string }> = {
  TOTAL_PASSED: { color: rgb(0.1, 0.6, 0.2), de: 'GRÜN – gültig', en: 'GREEN – valid (TOTAL_PASSED)' },
  INDETERMINATE: {
    color: rgb(0.95, 0.75, 0.1),
    de: 'GELB – nicht bestätigt',
    en: 'YELLOW – cannot be confirmed (INDETERMINATE)',
  },
  TOTAL_FAILED: { color: rgb(0.8, 0.1, 0.1), de: 'ROT – ungültig', en: 'RED – invalid (TOTAL_FAILED)' },
};

/** Characters the standard fonts (WinAnsi) can draw besides printable ASCII and Latin-1. */
const WIN_ANSI_EXTRA = new Set('€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ');
const MAX_VALUE_CHARS = 400;

/** Quote marks a value could use to seem to end its own quotes: shown as [U+XXXX] like the characters below. */
const QUOTE_MARKS = new Set('"“”„‘’‚‹›«»');

/** Can the standard fonts (WinAnsi) draw this character? pdf-lib throws on any other. */
function drawable(ch: string): boolean {
  const code = ch.codePointAt(0) ?? 0;
  return (code >= 0x20 && code <= 0x7e) || (code >= 0xa0 && code <= 0xff) || WIN_ANSI_EXTRA.has(ch);
}

const escaped = (ch: string): string => `[U+${(ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}]`;

/**
 * Every line is drawn through this: a character the fonts cannot draw would make pdf-lib throw, and a report that
 * cannot be written leaves the message undelivered. Values from the message are `quoted` before; this is the guard
 * for any that reaches a line another way.
 */
function drawableText(text: string): string {
  let out = '';
  for (const ch of text) out += drawable(ch) ? ch : escaped(ch);
  return out;
}

/** A value from the message as the report shows it: quoted, runs of white space as one space (so padding cannot push
 * a part of it to a line of its own), every character the fonts cannot draw (controls, bidi overrides, other
 * scripts) and every quote mark as [U+XXXX], long values cut. */
export function quoted(value: string): string {
  let out = '';
  let count = 0;
  for (const ch of value.replace(/[ \t\u00a0]+/g, ' ')) {
    if (++count > MAX_VALUE_CHARS) {
      out += ' … (gekürzt / cut)';
      break;
    }
    out += drawable(ch) && !QUOTE_MARKS.has(ch) ? ch : escaped(ch);
  }
  return `"${out}"`;
}

/** A certificate's addresses, each `quoted`: the first few, then how many more (report-model.ts). */
function quotedAddresses(addresses: readonly string[]): string {
  const listed = addresses.slice(0, MAX_LISTED_ADDRESSES).map(quoted).join(', ') || '–';
  const more = addresses.length - MAX_LISTED_ADDRESSES;
  return more > 0 ? `${listed} … und ${more} weitere / and ${more} more` : listed;
}

const time = (d: Date | undefined): string =>
  d
    ? d
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, ' UTC')
    : '–';

const LEVEL_TEXT: Record<string, { de: string; en: string }> = {
  QES: { de: 'qualifizierte elektronische Signatur (QES)', en: 'qualified electronic signature (QES)' },
  AdES: { de: 'fortgeschrittene elektronische Signatur (AdES)', en: 'advanced electronic signature (AdES)' },
  basic: {
    de: 'einfache Signatur (kein CAdES-Zertifikatsbezug)',
    en: 'basic signature (no CAdES certificate binding)',
  },
};

const REVOCATION_TEXT: Record<string, string> = {
  'good-ocsp': 'nicht gesperrt (OCSP) / not revoked (OCSP)',
  'good-crl': 'nicht gesperrt (CRL) / not revoked (CRL)',
  revoked: 'GESPERRT / REVOKED',
  unknown: 'unbekannt / unknown',
  'not-checked': 'nicht geprüft / not checked',
  'trust-anchor': 'Vertrauensanker, keine Sperrprüfung / trust anchor, not checked',
};

class Writer {
  readonly doc: PDFDocument;
  readonly font: PDFFont;
  readonly bold: PDFFont;
  page!: PDFPage;
  y = 0;
  readonly margin = 50;
  readonly width = 595.28;
  readonly height = 841.89;

  constructor(doc: PDFDocument, font: PDFFont, bold: PDFFont) {
    this.doc = doc;
    this.font = font;
    this.bold = bold;
    this.newPage();
  }

  newPage(): void {
    this.page = this.doc.addPage([this.width, this.height]);
    this.y = this.height - this.margin;
  }

  ensure(space: number): void {
    if (this.y - space < this.margin) this.newPage();
  }

  /**
   * Lines broken at spaces to fit the width; a word wider than a line is broken by characters, each cut found by
   * halving (a value of 400 characters shown escaped is one word of 3,200: trying every shorter prefix measured
   * ~L³ characters, 10 s for one signer name, and blocked every other message meanwhile).
   */
  wrap(text: string, font: PDFFont, size: number, width: number): string[] {
    const lines: string[] = [];
    let line = '';
    const fits = (s: string) => font.widthOfTextAtSize(s, size) <= width;
    for (const word of text.split(' ')) {
      const candidate = line ? `${line} ${word}` : word;
      if (fits(candidate)) {
        line = candidate;
        continue;
      }
      if (line) lines.push(line);
      line = '';
      let rest = word;
      while (!fits(rest)) {
        // The longest prefix that fits (at least one character): widths grow with the prefix.
        let low = 1;
        let high = rest.length - 1;
        while (low < high) {
          const middle = Math.ceil((low + high) / 2);
          if (fits(rest.slice(0, middle))) low = middle;
          else high = middle - 1;
        }
        lines.push(rest.slice(0, low));
        rest = rest.slice(low);
      }
      line = rest;
    }
    if (line) lines.push(line);
    return lines;
  }

  text(
    text: string,
    options: { size?: number; bold?: boolean; indent?: number; gap?: number; continuation?: string } = {},
  ): void {
    const size = options.size ?? 9.5;
    const font = options.bold ? this.bold : this.font;
    const x = this.margin + (options.indent ?? 0);
    const mark = options.continuation ?? '';
    const lines = this.wrap(
      drawableText(text),
      font,
      size,
      this.width - this.margin - x - font.widthOfTextAtSize(mark, size),
    );
    for (const [index, line] of lines.entries()) {
      this.ensure(size * 1.35);
      this.y -= size * 1.35;
      this.page.drawText(index > 0 ? `${mark}${line}` : line, { x, y: this.y, size, font });
    }
    this.y -= options.gap ?? 2;
  }

  /**
   * A label (ours) and a value: German and English label in one line. Lines a long value wraps onto begin with `» `,
   * so no part of a value from the message can stand at the margin like one of our own lines.
   */
  field(label: string, value: string, indent = 0): void {
    this.text(`${label}: ${value}`, { indent, continuation: '» ' });
  }

  light(indication: Indication): void {
    const light = LIGHT[indication];
    this.ensure(26);
    this.y -= 20;
    this.page.drawCircle({
      x: this.margin + 9,
      y: this.y + 5,
      size: 8,
      color: light.color,
      borderColor: rgb(0, 0, 0),
      borderWidth: 0.5,
    });
    this.page.drawText(`${light.de} / ${light.en}`, { x: this.margin + 24, y: this.y + 1, size: 11, font: this.bold });
    this.y -= 4;
  }
}

function signatureSection(w: Writer, sig: ReportedSignature): void {
  w.ensure(120);
  w.text(`Signatur / Signature ${sig.id}`, { size: 12, bold: true, gap: 0 });
  w.light(sig.indication);
  w.field('Ergebnis / Indication', `${sig.indication}${sig.subIndication ? ` / ${sig.subIndication}` : ''}`);
  w.text(sig.sentence.de, { indent: 10 });
  w.text(sig.sentence.en, { indent: 10, gap: 4 });
  w.field('Format', `${sig.format} (${sig.path})`);
  const level = sig.level ? LEVEL_TEXT[sig.level] : undefined;
  w.field(
    'Niveau / Level',
    level ? `${level.de} / ${level.en}` : 'nicht festgestellt, da nicht gültig / not determined, as not valid',
  );
  if (sig.levelReason) w.field('Begründung / Reason', quoted(sig.levelReason), 10);
  if (sig.qualification) {
    w.field(
      'Qualifizierter Status / Qualified status',
      `${sig.qualification.status} (${quoted(sig.qualification.source)})`,
    );
    w.field('Begründung / Reason', quoted(sig.qualification.reason), 10);
  }
  if (sig.signer) {
    w.field('Unterzeichner / Signer', quoted(sig.signer.subject));
    w.field(
      'E-Mail-Adressen im Zertifikat / Addresses in the certificate',
      quotedAddresses(sig.signer.emailAddresses),
      10,
    );
    w.field('Aussteller / Issuer', quoted(sig.signer.issuer), 10);
    w.field('Seriennummer / Serial', quoted(sig.signer.serialNumber), 10);
  } else {
    w.field('Unterzeichner / Signer', 'nicht gefunden / not found');
  }
  w.field(
    'Behauptete Signaturzeit / Claimed signing time',
    `${time(sig.claimedSigningTime)} (vom Unterzeichner angegeben, nicht bewiesen / stated by the signer, not proven)`,
  );
  w.field('Durch Zeitstempel bewiesene Zeit / Time proven by a timestamp', provenTime(sig));
  w.field(
    'Umfasst / Covers',
    sig.covers ? `${quoted(sig.covers.description)} (${quoted(sig.covers.path)})` : 'nichts gefunden / nothing found',
  );
  const algos = [sig.algorithms.digest, sig.algorithms.signature].filter((a) => a !== undefined);
  for (const a of algos) {
    w.field(
      'Algorithmus / Algorithm',
      `${a.name}: ${a.acceptable ? 'zulässig / acceptable' : 'NICHT MEHR ZULÄSSIG / NO LONGER ACCEPTABLE'}`,
    );
  }
  if (sig.algorithms.key) {
    w.field(
      'Schlüssel / Key',
      `${sig.algorithms.key.description}: ${sig.algorithms.key.acceptable ? 'zulässig / acceptable' : 'NICHT ZULÄSSIG / NOT ACCEPTABLE'}`,
    );
  }
  const chain = sig.chain;
  if (chain) {
    w.text('Zertifikatskette / Certificate chain', { bold: true });
    chain.certificates.forEach((c, i) => {
      w.field(`${i + 1}. Inhaber / Subject`, quoted(c.subject), 10);
      w.field('Gültig / Valid', `${time(c.notBefore)} – ${time(c.notAfter)}`, 22);
      if (i === 0 && sig.qualification) w.field('Qualifiziert / Qualified', sig.qualification.status, 22);
      w.field('Sperrstatus / Revocation', REVOCATION_TEXT[c.revocation] ?? c.revocation, 22);
      if (c.revocationData) w.field('Sperrinformation / Revocation data', revocationDataText(c.revocationData), 22);
    });
    if (chain.reason) w.field('Kettenprüfung / Path validation', quoted(`${chain.code ?? ''} ${chain.reason}`), 10);
    for (const p of chain.fetchProblems)
      w.field('Sperrquelle nicht erreichbar / Revocation source unreachable', quoted(p), 10);
  }
  for (const r of sig.reasons) w.field('Technischer Grund / Technical reason', quoted(r), 10);
  w.y -= 8;
}

/**
 * The warning about parts of the message that imitate this report, before any result: the sentences of
 * report-model.ts in bold, then each part listed by its name (`quoted`, it is the sender's) and MIME path.
 */
function imitationSection(w: Writer, scan: ImitationScan): void {
  for (const notice of imitationNotices(scan)) {
    for (const sentence of notice.sentences) {
      w.text(sentence.de, { bold: true, gap: 0 });
      w.text(sentence.en, { bold: true, gap: 4 });
    }
    for (const imitation of notice.listed) {
      const reasons = imitation.reasons.map((r) => IMITATION_REASONS[r]);
      w.field(
        'Anhang des Absenders / Sender’s attachment',
        `${imitation.name === undefined ? 'ohne Namen / without a name' : quoted(imitation.name)} (${quoted(imitation.path)}), erkannt an / found by: ${reasons.map((r) => r.de).join(', ')} / ${reasons.map((r) => r.en).join(', ')}`,
        10,
      );
    }
    w.y -= 6;
  }
}

const REVOCATION_SOURCE_TEXT: Record<ChainRevocationData['source'], string> = {
  embedded: 'in der Signatur eingebettet / embedded',
  fetched: 'abgerufen / fetched',
  configured: 'vom Gateway vorgegeben / configured',
};

/** "embedded CRL of 2026-…": where the revocation data came from, its kind and the time it speaks for. */
function revocationDataText(data: ChainRevocationData): string {
  return `${REVOCATION_SOURCE_TEXT[data.source]} ${data.kind.toUpperCase()}, Stand / as of ${time(data.time)}`;
}

/** The proof of existence a valid signature timestamp gives, or why there is none. */
function provenTime(sig: ReportedSignature): string {
  if (sig.proofOfExistence) {
    return `${time(sig.proofOfExistence)} (Zeitstempel gültig / valid timestamp${sig.timestamp?.tsa?.signer ? `: ${quoted(sig.timestamp.tsa.signer.subject)}` : ''})`;
  }
  if (sig.timestamp)
    return `keine: der Zeitstempel ist ungültig / none: the timestamp is not valid (${sig.timestamp.indication})`;
  return 'keiner / none';
}

/** The PDF report; dates are the validation time, so the same result gives the same bytes. */
export async function renderReportPdf(result: VerificationResult, meta: PdfReportMeta): Promise<Buffer> {
  const doc = await PDFDocument.create();
  doc.setTitle('Signaturprüfbericht / Signature verification report');
  doc.setProducer(`SecureMail Gateway (${meta.hostname})`);
  doc.setCreator('smgw signature-verify');
  doc.setCreationDate(result.validationTime);
  doc.setModificationDate(result.validationTime);
  const w = new Writer(
    doc,
    await doc.embedFont(StandardFonts.Helvetica),
    await doc.embedFont(StandardFonts.HelveticaBold),
  );

  w.text('Signaturprüfbericht', { size: 18, bold: true, gap: 0 });
  w.text('Signature verification report', { size: 13, bold: true, gap: 6 });
  w.text(
    `Dieser Bericht wurde vom SecureMail Gateway ${meta.hostname} erstellt und als eigener Teil neben die Nachricht gestellt, nie in sie. Angaben aus der Nachricht stehen in Anführungszeichen. / This report was made by the SecureMail Gateway and attached as a part of its own beside the message, never inside it. Values taken from the message are in quotes.`,
    { gap: 6 },
  );
  w.field('Nachricht / Message (Gateway-ID)', meta.messageId);
  w.field('SHA-256 der geprüften Nachricht / of the message checked', meta.originalSha256);
  w.field('Geprüft am / Validated at', time(result.validationTime));
  w.field('Zusammenfassung / Summary (X-SMGW-Signature)', meta.summary);
  w.field(
    'Vertrauenslisten / Trusted lists',
    meta.trustedLists.length > 0
      ? meta.trustedLists.join(', ')
      : 'keine konfiguriert: keine Signatur wird als qualifiziert ausgewiesen / none configured: no signature is shown as qualified',
  );
  w.y -= 4;
  if (meta.imitations) imitationSection(w, meta.imitations);
  const overall = result.overall;
  if (overall.indication !== 'NONE') {
    w.text('Gesamtergebnis (schlechteste Signatur) / Overall result (worst signature)', { bold: true, gap: 0 });
    w.light(overall.indication);
  } else {
    w.text(
      'Gesamtergebnis / Overall result: keine Signatur gefunden, die Nachricht ist nicht signiert / no signature found, the message is not signed',
      { bold: true, gap: 4 },
    );
  }
  const identity = result.identity;
  w.field(
    'Absender und Unterzeichner / Sender and signer',
    identity.status === 'match'
      ? 'Die Absenderadresse (From) steht im Zertifikat eines Unterzeichners. / The From address is held by a signer’s certificate.'
      : identity.status === 'mismatch'
        ? 'ABWEICHUNG: Die Absenderadresse (From) steht in keinem Zertifikat eines Unterzeichners. / MISMATCH: no signer’s certificate holds the From address.'
        : 'nicht anwendbar / not applicable',
  );
  if (identity.fromAddresses.length > 0) w.field('From', identity.fromAddresses.map(quoted).join(', '), 10);
  for (const p of identity.problems) w.field('Befund / Finding', quoted(p), 10);
  w.field(
    'Abdeckung / Coverage',
    result.coverage.status === 'full'
      ? 'vollständig: alle sichtbaren Teile sind signiert / full: every visible part is signed'
      : result.coverage.status === 'partial'
        ? 'TEILWEISE: nicht alle sichtbaren Teile sind signiert / PARTIAL: not every visible part is signed'
        : 'keine / none',
  );
  for (const part of result.coverage.uncovered.filter((p) => p.role === 'content')) {
    w.field('Nicht signiert / Not signed', `${quoted(part.description)} (${quoted(part.path)})`, 10);
  }
  for (const f of result.signingTimeFindings)
    w.field(`Signaturzeit / Signing time ${f.signatureId}`, quoted(f.detail), 10);
  w.y -= 8;
  for (const sig of result.signatures) signatureSection(w, sig);
  return Buffer.from(await doc.save({ useObjectStreams: false }));
}
