// PAdES: every signature dictionary and document timestamp of a PDF (ISO 32000-1 §12.8, ETSI EN 319 142-1), each
// judged by EN 319 102-1 on exactly the bytes its /ByteRange names. The ByteRange is checked before any crypto: it
// starts at 0, its one gap is exactly this dictionary's /Contents hex string, it lies within the file and ends where
// a revision ends (%%EOF). The CMS is then verified by verifySignedData over the two ranges (hashed as slices of the
// file, no copy). A revision appended after a signature leaves that signature valid for its revision, but the
// document as shown is not what was signed: `document.coverage` says `partial` and each such signature says so.
import { failed, indeterminate, type Judgement, type Overall, overallOf } from './indication.ts';
import {
  DEFAULT_PDF_LIMITS,
  type DocumentSecurityStore,
  PdfFormatError,
  type PdfLimits,
  type PdfSignatureDictionary,
  type PdfStructure,
  readDocumentSecurityStore,
  readPdfStructure,
  WorkBudget,
} from './pdf-structure.ts';
import { type Sentence, sentenceFor } from './sentences.ts';
import { verifySignedDataWithTimestamps } from './signature-timestamp.ts';
import { parseContentInfo } from './signed-data.ts';
import { signedDataContextOf } from './signed-data-context.ts';
import type { ChainCache } from './signer-chain.ts';
import { summaryHeader } from './summary-header.ts';
import { type TimestampVerification, verifyTimestampToken } from './timestamp-token.ts';
import type { VerifyMessageOptions } from './verify-message.ts';
import type { SignatureVerification, SignedDataContext } from './verify-signed-data.ts';

export interface VerifyPdfOptions extends Omit<VerifyMessageOptions, 'limits' | 'signingTimeToleranceMs'> {
  limits?: Partial<PdfLimits>;
}

type Revision = PdfStructure['revisions'][number];

const CMS_SUB_FILTERS = new Set(['adbe.pkcs7.detached', 'ETSI.CAdES.detached']);
const TIMESTAMP_SUB_FILTER = 'ETSI.RFC3161';
/** SubFilters a format may name as they are (ISO 32000-1 §12.8.3, ETSI EN 319 142-1); the rest are refused anyway. */
const KNOWN_SUB_FILTERS = new Set([...CMS_SUB_FILTERS, TIMESTAMP_SUB_FILTER, 'adbe.pkcs7.sha1', 'adbe.x509.rsa_sha1']);

/**
 * The SubFilter as a signature's format names it. A PDF name is the sender's text (`#0A` is a line break, any byte
 * can be written), and the format is shown as the gateway's own words in the report: only a known name goes there,
 * any other stays in the reasons, which the report shows quoted.
 */
export function subFilterLabel(subFilter: string | undefined): string {
  if (subFilter === undefined) return 'no SubFilter';
  return KNOWN_SUB_FILTERS.has(subFilter) ? subFilter : 'another SubFilter';
}

export interface PdfSignature extends SignatureVerification {
  /** `P1`, `P2`, … in file order. */
  id: string;
  kind: 'signature' | 'document-timestamp';
  subFilter?: string;
  /** The indirect object holding the signature dictionary. */
  objectNumber: number;
  byteRange?: number[];
  /** The revision the signature covers (1 = the original file), of how many the file has; `end` is its last byte + 1. */
  revision?: { number: number; of: number; end: number };
  /** False when bytes other than white space follow the signed revision. */
  coversWholeDocument: boolean;
  /** Bytes after the signed revision (later revisions, or trailing garbage), not covered by this signature. */
  bytesAfter: number;
  /** For a document timestamp: the token itself. For a signature: its signature timestamp (unsigned attribute). */
  timestamp?: TimestampVerification;
  /** The time a valid timestamp proves the signature existed at. */
  proofOfExistence?: Date;
  /** /Name, /Reason, /Location, /M as the signer wrote them (claims, never checked). */
  claimed: { name?: string; reason?: string; location?: string; time?: string };
}

export interface PdfVerification {
  validationTime: Date;
  /** The worst signature or timestamp of the file (each for its own revision). */
  overall: Overall;
  signatures: PdfSignature[];
  document: {
    /**
     * `full`: a signature that is not TOTAL_FAILED covers the whole file; `partial`: the file goes on after the last
     * such signature (changed after signing); `none`: no such signature. Document timestamps do not count.
     */
    coverage: 'full' | 'partial' | 'none';
    sentence: Sentence;
    size: number;
    revisions: number;
    /** Bytes covered by the furthest-reaching signature that is not TOTAL_FAILED. */
    signedUpTo: number;
  };
  /** Set when the file itself cannot be read: then overall is TOTAL_FAILED FORMAT_FAILURE. */
  unreadable?: string;
  notes: string[];
}

export const DOCUMENT_SENTENCES: Readonly<Record<PdfVerification['document']['coverage'], Sentence>> = {
  full: {
    de: 'Die Signatur erfasst das ganze Dokument: Nach dem Signieren wurde nichts angefügt.',
    en: 'The signature covers the whole document: nothing was added after signing.',
  },
  partial: {
    de: 'Das Dokument wurde nach dem Signieren verändert: Die Signatur gilt nur für eine frühere Fassung; was danach angefügt wurde, ist von keiner Signatur erfasst.',
    en: 'The document was changed after signing: the signature applies only to an earlier version; what was added afterwards is not covered by any signature.',
  },
  none: {
    de: 'Das Dokument trägt keine Signatur, die es als Ganzes oder in einer früheren Fassung erfasst.',
    en: 'The document carries no signature that covers it, in whole or in an earlier version.',
  },
};

export interface PdfVerifier {
  verifyPdf(bytes: Buffer): Promise<PdfVerification>;
}

/** A verifier that keeps its chain cache between files (as createMessageVerifier does between messages). */
export function createPdfVerifier(options: VerifyPdfOptions): PdfVerifier {
  const chainCache: ChainCache = new Map();
  const limits = { ...DEFAULT_PDF_LIMITS, ...options.limits };
  return {
    verifyPdf: (bytes) => verifyPdfInContext(bytes, signedDataContextOf(options, options.now(), chainCache), limits),
  };
}

/** Verifies every signature and document timestamp of a PDF. Never throws for a bad or malformed file. */
export function verifyPdf(bytes: Buffer, options: VerifyPdfOptions): Promise<PdfVerification> {
  return createPdfVerifier(options).verifyPdf(bytes);
}

/** The X-SMGW-Signature value for a PDF on its own: `coverage=partial` when it was changed after signing. */
export function pdfSummaryHeader(result: PdfVerification): string {
  return summaryHeader({
    overall: result.overall,
    coverage: { status: result.document.coverage },
    identity: { status: 'not-applicable' },
  });
}

/** The same with a context already made (the MIME walk shares its chain cache and clock). */
export async function verifyPdfInContext(
  bytes: Buffer,
  context: SignedDataContext,
  limits: PdfLimits = DEFAULT_PDF_LIMITS,
): Promise<PdfVerification> {
  let structure: ReturnType<typeof readPdfStructure>;
  try {
    structure = readPdfStructure(bytes, limits);
  } catch (error) {
    const reason = error instanceof PdfFormatError ? error.message : `not readable: ${(error as Error).message}`;
    return {
      validationTime: context.time,
      overall: { indication: 'TOTAL_FAILED', subIndication: 'FORMAT_FAILURE', signatureCount: 0 },
      signatures: [],
      document: {
        coverage: 'none',
        sentence: DOCUMENT_SENTENCES.none,
        size: bytes.length,
        revisions: 0,
        signedUpTo: 0,
      },
      unreadable: reason,
      notes: [],
    };
  }
  // PAdES-LT: the document security store's CRLs and OCSP responses serve every signature of the file.
  const dss = readDocumentSecurityStore(bytes, WorkBudget.forFile(bytes.length, limits.workPerByte));
  const signatures: PdfSignature[] = [];
  for (const dictionary of structure.signatures) {
    signatures.push(
      await verifyDictionary(bytes, dictionary, structure.revisions, context, `P${signatures.length + 1}`, dss),
    );
  }
  const notes = [...structure.notes, ...(dss?.notes ?? [])];
  // What lies beyond a limit is never verified: it stands as one INDETERMINATE entry each.
  const notExamined = [
    structure.skippedSignatures > 0
      ? `${structure.skippedSignatures} further signature dictionaries beyond the limit of ${limits.maxSignatures} were not examined`
      : undefined,
    structure.unexamined,
  ];
  for (const reason of notExamined) {
    if (reason === undefined) continue;
    notes.push(reason);
    signatures.push({
      ...bare(indeterminate('SIG_CONSTRAINTS_FAILURE'), [reason]),
      id: `P${signatures.length + 1}`,
      kind: 'signature',
      objectNumber: -1,
      coversWholeDocument: false,
      bytesAfter: 0,
      claimed: {},
    });
  }
  const counted = signatures.filter((s) => s.kind === 'signature' && s.indication !== 'TOTAL_FAILED' && s.revision);
  const signedUpTo = Math.max(0, ...counted.map((s) => s.revision?.end ?? 0));
  const coverage = counted.length === 0 ? 'none' : onlyWhitespaceAfter(bytes, signedUpTo) ? 'full' : 'partial';
  return {
    validationTime: context.time,
    overall: overallOf(signatures, (s) => s.kind === 'signature'),
    signatures,
    document: {
      coverage,
      sentence: DOCUMENT_SENTENCES[coverage],
      size: bytes.length,
      revisions: structure.revisions.length,
      signedUpTo,
    },
    notes,
  };
}

function onlyWhitespaceAfter(bytes: Buffer, end: number): boolean {
  for (let i = end; i < bytes.length; i++) {
    const c = bytes[i];
    if (c !== 0x0d && c !== 0x0a && c !== 0x20 && c !== 0x09 && c !== 0x00 && c !== 0x0c) return false;
  }
  return true;
}

/** A verdict with nothing verified behind it (a refused ByteRange, an unsupported SubFilter). */
function bare(judgement: Judgement, reasons: string[]): SignatureVerification {
  const subIndication = judgement.indication === 'TOTAL_PASSED' ? undefined : judgement.subIndication;
  return {
    indication: judgement.indication,
    ...(subIndication ? { subIndication } : {}),
    sentence: sentenceFor(judgement.indication, subIndication),
    reasons,
    signerIndex: -1,
    algorithms: {},
    signingCertificateBound: false,
  };
}

/** The ByteRange's problem, or its two ranges and where the covered revision ends. */
function checkByteRange(
  dictionary: PdfSignatureDictionary,
  size: number,
  revisions: readonly Revision[],
): { problem: string } | { segments: [number, number][]; end: number; revision: number } {
  if (dictionary.problem) return { problem: dictionary.problem };
  const range = dictionary.byteRange ?? [];
  const contents = dictionary.contents;
  if (range.length !== 4 || !contents) return { problem: `/ByteRange has ${range.length} numbers instead of 4` };
  const [start, firstLength, second, secondLength] = range as [number, number, number, number];
  if (start !== 0) return { problem: `/ByteRange starts at byte ${start}, not at the start of the file` };
  if (firstLength <= 0 || secondLength < 0) return { problem: '/ByteRange has an empty first range' };
  if (second < firstLength) return { problem: '/ByteRange ranges overlap' };
  if (second + secondLength > size) {
    return { problem: `/ByteRange reaches byte ${second + secondLength}, beyond the end of the file (${size})` };
  }
  // The one gap must be exactly this dictionary's /Contents: anything else left out would be unsigned content.
  if (firstLength !== contents.start || second !== contents.end) {
    return {
      problem: `/ByteRange leaves out bytes ${firstLength}–${second}, which is not exactly this signature's /Contents (${contents.start}–${contents.end})`,
    };
  }
  const end = second + secondLength;
  // A revision ends at %%EOF, with or without the end of line after it.
  const revisionAt = revisions.findIndex((r) => end >= r.eof && end <= r.end);
  if (revisionAt < 0) {
    return {
      problem: `/ByteRange ends at byte ${end}, which is not the end of a revision (%%EOF): the signature does not cover a whole revision`,
    };
  }
  return {
    segments: [
      [0, firstLength],
      [second, end],
    ],
    end,
    revision: revisionAt + 1,
  };
}

async function verifyDictionary(
  bytes: Buffer,
  dictionary: PdfSignatureDictionary,
  revisions: readonly Revision[],
  context: SignedDataContext,
  id: string,
  dss: DocumentSecurityStore | undefined,
): Promise<PdfSignature> {
  const isTimestamp = dictionary.type === 'DocTimeStamp' || dictionary.subFilter === TIMESTAMP_SUB_FILTER;
  const claimed = {
    ...(dictionary.name !== undefined ? { name: dictionary.name } : {}),
    ...(dictionary.reason !== undefined ? { reason: dictionary.reason } : {}),
    ...(dictionary.location !== undefined ? { location: dictionary.location } : {}),
    ...(dictionary.claimedTime !== undefined ? { time: dictionary.claimedTime } : {}),
  };
  const base = {
    id,
    kind: isTimestamp ? ('document-timestamp' as const) : ('signature' as const),
    ...(dictionary.subFilter ? { subFilter: dictionary.subFilter } : {}),
    objectNumber: dictionary.objectNumber,
    ...(dictionary.byteRange ? { byteRange: dictionary.byteRange } : {}),
    claimed,
  };
  const range = checkByteRange(dictionary, bytes.length, revisions);
  if ('problem' in range) {
    return {
      ...bare(failed('FORMAT_FAILURE'), [range.problem]),
      ...base,
      coversWholeDocument: false,
      bytesAfter: 0,
    };
  }
  const segments = range.segments.map(([from, to]) => bytes.subarray(from, to));
  const bytesAfter = bytes.length - range.end;
  const coversWholeDocument = onlyWhitespaceAfter(bytes, range.end);
  const placed = {
    ...base,
    revision: { number: range.revision, of: revisions.length, end: range.end },
    coversWholeDocument,
    bytesAfter,
  };
  const afterNote = coversWholeDocument
    ? []
    : [
        `the document was changed after this ${isTimestamp ? 'timestamp' : 'signature'}: ${bytesAfter} bytes (${revisions.length - range.revision} later revisions) are not covered by it`,
      ];
  const cms = (dictionary.contents as { bytes: Buffer }).bytes;

  if (isTimestamp) {
    if (dictionary.subFilter !== TIMESTAMP_SUB_FILTER) {
      return {
        ...bare(failed('FORMAT_FAILURE'), [`a /DocTimeStamp with /SubFilter ${dictionary.subFilter ?? 'missing'}`]),
        ...placed,
      };
    }
    const timestamp = await verifyTimestampToken(cms, segments, context);
    const { level: _level, levelReason: _levelReason, ...tsa } = timestamp.tsa ?? bare(failed('FORMAT_FAILURE'), []);
    return {
      ...tsa,
      indication: timestamp.indication,
      subIndication: timestamp.subIndication,
      sentence: timestamp.sentence,
      reasons: [...timestamp.reasons, ...afterNote],
      ...placed,
      timestamp,
      ...(timestamp.indication === 'TOTAL_PASSED' && timestamp.time ? { proofOfExistence: timestamp.time } : {}),
    };
  }

  if (!dictionary.subFilter || !CMS_SUB_FILTERS.has(dictionary.subFilter)) {
    return {
      ...bare(indeterminate('SIG_CONSTRAINTS_FAILURE'), [
        `/SubFilter ${dictionary.subFilter ?? 'missing'} is not supported (only adbe.pkcs7.detached, ETSI.CAdES.detached and ETSI.RFC3161)`,
        ...afterNote,
      ]),
      ...placed,
    };
  }
  let parsed: ReturnType<typeof parseContentInfo>;
  try {
    parsed = parseContentInfo(cms);
  } catch (error) {
    return { ...bare(failed('FORMAT_FAILURE'), [(error as Error).message]), ...placed };
  }
  if (parsed.kind !== 'signed-data' || parsed.signedData.signerInfos.length !== 1) {
    const problem =
      parsed.kind !== 'signed-data'
        ? `/Contents holds CMS content type ${parsed.contentType}, not a SignedData`
        : `a PDF signature has exactly one signer (ISO 32000-1 §12.8.3.3.1); this one has ${parsed.signedData.signerInfos.length}`;
    return { ...bare(failed('FORMAT_FAILURE'), [problem]), ...placed };
  }
  const { signedData } = parsed;
  // With its signature timestamp, if any: the proof of existence (verifySignedDataWithTimestamps).
  const verification = await verifySignedDataWithTimestamps(
    { signedData, shownContent: segments, purpose: 'any', ...(dss ? { containerRevocation: dss } : {}) },
    context,
  );
  const signature = verification.signatures[0] as SignatureVerification;
  const notes: string[] = [];
  if (verification.embeddedContentIgnored) {
    notes.push('the signature also carries content of its own; it was ignored: the ByteRange was judged');
  }
  return {
    ...signature,
    reasons: [...signature.reasons, ...notes, ...afterNote],
    ...placed,
  };
}
