// The message as a tree of MIME entities and signature layers (RFC 2045/2046, RFC 1847, RFC 8551, CAdES as
// attachments), walked to a depth limit. Every signature layer is verified wherever it sits, so a broken inner layer
// is never hidden by a valid outer one, and every part the reader sees is listed with the layers covering it, so a
// signed part under unsigned content shows as partly signed. Encrypted layers are opaque here: inbound decryption
// happens earlier in the pipeline.
import {
  type ContentType,
  contentTypeParameters,
  MAX_CONTENT_TYPE_PARAMETERS_LENGTH,
  multipartParts,
  parseContentType,
} from '@smgw/crypto';
import {
  bareLfToCrlf,
  decodeEncodedWords,
  type HeaderBudget,
  HeaderBudgetError,
  type HeaderField,
  headerBudget,
  headerValue,
  MAX_WALK_HEADER_LINES,
  splitHeaderBlock,
  splitHeaderBlockWithin,
} from '@smgw/mime';
import { failed, indeterminate, type Judgement } from './indication.ts';
import { sentenceFor } from './sentences.ts';
import { verifySignedDataWithTimestamps } from './signature-timestamp.ts';
import { contentBytes, parseContentInfo, SignatureFormatError } from './signed-data.ts';
import { type PdfSignature, subFilterLabel, verifyPdfInContext } from './verify-pdf.ts';
import type { SignatureVerification, SignedDataContext } from './verify-signed-data.ts';

export interface WalkLimits {
  /** Entities nested deeper than this are not examined; default 12. */
  maxDepth: number;
  /**
   * Entities examined in all; default 500. A multipart's parts beyond what is left of it are not even parsed: they
   * stand as one entry, not examined.
   */
  maxParts: number;
  /** Signature layers verified in all; default 16. Those beyond share one entry, not examined. */
  maxSignatureLayers: number;
  /** SignerInfos verified per SignedData, and certificates read from it; default 32 and 64. */
  maxSignersPerLayer: number;
  maxCertificatesPerLayer: number;
  /**
   * Signature entries a result lists, and so the report shows; default 50. Those beyond stand as one entry with the
   * worst of their results, never TOTAL_PASSED (listed-signatures.ts).
   */
  maxReportedSignatures: number;
  /**
   * Header lines read in all (every entity's: parts, attached messages, what signatures hold); default 100,000
   * (MAX_WALK_HEADER_LINES), and no block over 1 MiB. Parsing costs about 0.3–0.9 µs a line: a stranger's 31 MB of
   * header lines in one part held the verify stage's event loop for 2.3–9.6 s. An entity beyond it is not examined.
   */
  maxHeaderLines: number;
}

export const DEFAULT_WALK_LIMITS: WalkLimits = {
  maxDepth: 12,
  maxParts: 500,
  maxSignatureLayers: 16,
  maxSignersPerLayer: 32,
  maxCertificatesPerLayer: 64,
  maxReportedSignatures: 50,
  maxHeaderLines: MAX_WALK_HEADER_LINES,
};

export type LayerKind =
  /** multipart/signed with application/pkcs7-signature (RFC 8551 §3.5.3) */
  | 'smime-detached'
  /** application/pkcs7-mime; smime-type=signed-data (RFC 8551 §3.5.2) */
  | 'smime-opaque'
  /** a .p7s attachment signing a document beside it */
  | 'cades-detached'
  /** a .p7m attachment: the signed document inside */
  | 'cades-enveloping'
  /** S/MIME or PGP encrypted: not opened here */
  | 'encrypted'
  /** multipart/signed with another protocol (OpenPGP): not verified here */
  | 'unsupported-signature'
  /** a SignedData without any SignerInfo: not signed */
  | 'no-signers'
  /** a PDF with signatures or document timestamps (PAdES) */
  | 'pades'
  /** a signature structure that cannot be read */
  | 'malformed'
  /** beyond the walk's limits */
  | 'not-examined';

export const FORMATS: Readonly<Record<LayerKind, string>> = {
  'smime-detached': 'S/MIME multipart/signed (CMS, detached)',
  'smime-opaque': 'S/MIME signed-data (CMS, enveloping)',
  'cades-detached': 'CAdES detached signature (.p7s)',
  'cades-enveloping': 'CAdES enveloping signature (.p7m)',
  encrypted: 'encrypted',
  pades: 'PAdES (signed PDF)',
  'unsupported-signature': 'signature of an unsupported kind',
  'no-signers': 'CMS SignedData without signers',
  malformed: 'unreadable signature',
  'not-examined': 'not examined',
};

/** One signature as reported: the SignerInfo's result with where it sits and what it covers. */
export interface ReportedSignature extends SignatureVerification {
  /** `S1`, `S2`, … in the order found (outer before inner). */
  id: string;
  layerId: string;
  /** MIME path of the signature layer. */
  path: string;
  format: string;
  /** MIME path of what the signature covers, and what that is. */
  covers?: { path: string; description: string };
  /** For a signature or document timestamp inside a PDF: where in the file, and what it covers of it. */
  pdf?: Omit<PdfSignature, keyof SignatureVerification | 'id'>;
}

export interface Layer {
  /** `L1`, `L2`, … in the order found. */
  id: string;
  path: string;
  kind: LayerKind;
  description: string;
  covers?: { path: string; description: string };
  signatureIds: string[];
  /** The layer's own verdict when it has no SignerInfo to carry it (malformed, not examined). */
  judgement?: Judgement;
  notes: string[];
}

/** A part the reader sees (text, attachment, an encrypted or unreadable blob), and the layers covering it. */
export interface VisiblePart {
  path: string;
  description: string;
  /** `signature`: a signature blob itself (.p7s, the second part of multipart/signed), not content. */
  role: 'content' | 'signature';
  coveredBy: string[];
}

export interface UnwrappedDocument {
  /** MIME path of the .p7m. */
  path: string;
  filename?: string;
  content: Buffer;
  signatureIds: string[];
}

/** The From and Sender fields an S/MIME signature signs as a header (a wrapped message, protected headers). */
export interface SignedHeader {
  /** Where the fields stand: the signed entity, or `…/message` inside it. */
  path: string;
  fields: HeaderField[];
}

export interface MessageWalk {
  /** The root entity's header fields (From, Sender, Date …). */
  headerFields: HeaderField[];
  /**
   * From and Sender fields inside the content of an S/MIME signature: the header of a message/rfc822 that is the
   * whole signed content (RFC 8551 §3.1), or fields on the signed entity itself (protected headers, RFC 9788). A
   * reader may show them as the message's sender, so identity checks them like the outer ones.
   */
  signedHeaders: SignedHeader[];
  layers: Layer[];
  signatures: ReportedSignature[];
  parts: VisiblePart[];
  unwrapped: UnwrappedDocument[];
}

/** One MIME entity as the walk reads it (also read by signed-contents.ts, so both see the same entities). */
export interface Entity {
  path: string;
  fields: HeaderField[];
  body: Buffer;
  type: ContentType;
  filename?: string;
  attachment: boolean;
  description: string;
  /**
   * What readers may take differently: a second Content-Type or Content-Transfer-Encoding field, a parameter of the
   * Content-Type named twice (parseContentType keeps the last, a mail client may keep the first). One phrase each.
   */
  ambiguities: string[];
}

interface State {
  context: SignedDataContext;
  limits: WalkLimits;
  layers: Layer[];
  signatures: ReportedSignature[];
  parts: VisiblePart[];
  unwrapped: UnwrappedDocument[];
  signedHeaders: SignedHeader[];
  partCount: number;
  /** Layers that count against maxSignatureLayers (all but encrypted and unsupported ones). */
  signatureLayerCount: number;
  /** The one entry standing for every signature layer beyond maxSignatureLayers, once there is one. */
  beyondLayerLimit?: { layer: Layer; signature: ReportedSignature; count: number };
  /** Header lines the walk may still read (maxHeaderLines). */
  headers: HeaderBudget;
  /** The one entry standing for every entity whose header was beyond the budget, once there is one. */
  beyondHeaderBudget?: { layer: Layer; signature: ReportedSignature; count: number };
}

export const SIGNATURE_TYPES = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature']);
export const PKCS7_MIME_TYPES = new Set(['application/pkcs7-mime', 'application/x-pkcs7-mime']);

/** Walks and verifies a whole message (header and body, CRLF or bare LF). */
export async function walkMessage(
  message: Buffer,
  context: SignedDataContext,
  limits: WalkLimits = DEFAULT_WALK_LIMITS,
): Promise<MessageWalk> {
  const state: State = {
    context,
    limits,
    layers: [],
    signatures: [],
    parts: [],
    unwrapped: [],
    signedHeaders: [],
    partCount: 0,
    signatureLayerCount: 0,
    headers: headerBudget(limits.maxHeaderLines),
  };
  // RFC 8551 §3.1.1: signatures cover the canonical form; stored mail often has bare LF.
  const root = entityWithin(state, bareLfToCrlf(message), '/', []);
  if (root) await walkEntity(root, 0, [], state);
  return {
    // A header beyond the budget was not read: no From to check (the walk's result is INDETERMINATE).
    headerFields: root?.fields ?? [],
    signedHeaders: state.signedHeaders,
    layers: state.layers,
    signatures: state.signatures,
    parts: state.parts,
    unwrapped: state.unwrapped,
  };
}

/**
 * The entity in `bytes` at `path`. With a walk's `budget`, a header block beyond what it has left throws
 * HeaderBudgetError (of @smgw/mime), nothing of it parsed: the caller ends its walk there and calls nothing beyond
 * it clean.
 */
export function entityOf(bytes: Buffer, path: string, budget?: HeaderBudget): Entity {
  const { fields, body } = budget ? splitHeaderBlockWithin(bytes, budget) : splitHeaderBlock(bytes);
  const type = parseContentType(headerValue(fields, 'content-type'));
  const disposition = parseContentType(headerValue(fields, 'content-disposition') ?? '');
  const filename = filenameOf(disposition) ?? filenameOf(type, 'name');
  const attachment = disposition.mediaType === 'attachment';
  const description = `${type.mediaType}${filename ? ` “${filename}”` : ''}${attachment ? ' (attachment)' : ''}`;
  const ambiguities = ['content-type', 'content-transfer-encoding']
    .filter((key) => fields.filter((f) => f.key === key).length > 1)
    .map((key) => `more than one ${key} field`);
  const contentType = headerValue(fields, 'content-type') ?? '';
  // Its parameters are not read at all (parseContentType keeps only the media type): how to read the entity is unsure.
  if (contentType.length > MAX_CONTENT_TYPE_PARAMETERS_LENGTH)
    ambiguities.push('a content-type field too long to read');
  for (const name of repeatedParameters(contentType)) {
    ambiguities.push(`the content-type parameter ${name} more than once`);
  }
  return { path, fields, body, type, attachment, description, ambiguities, ...(filename ? { filename } : {}) };
}

/** The parameters that decide how an entity is read (its parts, its signature kind, a .p7m/.p7s name). */
const STRUCTURAL_PARAMETERS = new Set(['boundary', 'protocol', 'smime-type', 'name']);

/**
 * Structural parameters a Content-Type value gives more than once, read as parseContentType reads them (one linear
 * pass: the regular expression this was had quadratic time on a long value without `=`).
 */
function repeatedParameters(value: string): string[] {
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const { name } of contentTypeParameters(value)) {
    if (seen.has(name) && STRUCTURAL_PARAMETERS.has(name)) repeated.add(name);
    seen.add(name);
  }
  return [...repeated];
}

/** A filename parameter: RFC 2231 `name*=charset''%xx`, RFC 2047 words, or plain. */
function filenameOf(type: ContentType, parameter = 'filename'): string | undefined {
  const extended = type.parameters[`${parameter}*`];
  if (extended) {
    const match = /^([^']*)'[^']*'(.*)$/.exec(extended);
    try {
      return decodeURIComponent(match ? (match[2] as string) : extended);
    } catch {
      return extended;
    }
  }
  const plain = type.parameters[parameter];
  return plain ? decodeEncodedWords(plain) : undefined;
}

export function childPath(parent: string, segment: string | number): string {
  return parent === '/' ? `/${segment}` : `${parent}/${segment}`;
}

function addLayer(state: State, layer: Omit<Layer, 'id' | 'signatureIds' | 'notes'> & { notes?: string[] }): Layer {
  const full: Layer = { id: `L${state.layers.length + 1}`, signatureIds: [], notes: [], ...layer };
  state.layers.push(full);
  if (full.kind !== 'encrypted' && full.kind !== 'unsupported-signature') state.signatureLayerCount++;
  return full;
}

function addVisible(
  state: State,
  entity: Entity,
  coveredBy: readonly string[],
  what?: string,
  role: VisiblePart['role'] = 'content',
): void {
  state.parts.push({ path: entity.path, description: what ?? entity.description, role, coveredBy: [...coveredBy] });
}

/** A layer whose structure is refused or not examined: it carries its own verdict. */
function refusedLayer(
  state: State,
  entity: { path: string },
  kind: 'malformed' | 'not-examined',
  reason: string,
): { layer: Layer; signature: ReportedSignature } {
  const judgement = kind === 'malformed' ? failed('FORMAT_FAILURE') : indeterminate('SIG_CONSTRAINTS_FAILURE');
  const layer = addLayer(state, { path: entity.path, kind, description: FORMATS[kind], judgement, notes: [reason] });
  const signature = verdictEntry(state, layer, entity.path, FORMATS[kind], judgement, reason);
  layer.signatureIds.push(signature.id);
  return { layer, signature };
}

/**
 * True when the signature-layer limit is reached: then the blob at `path` is not examined. Every blob beyond the
 * limit is counted in one INDETERMINATE entry (at the first one's path), so a message of thousands of .p7s parts
 * gives one entry, not thousands.
 */
function beyondSignatureLayerLimit(state: State, path: string): boolean {
  const max = state.limits.maxSignatureLayers;
  if (state.signatureLayerCount < max) return false;
  const beyond = state.beyondLayerLimit;
  if (!beyond) {
    state.beyondLayerLimit = {
      ...refusedLayer(state, { path }, 'not-examined', `more than ${max} signature layers`),
      count: 1,
    };
    return true;
  }
  beyond.count++;
  const reason = `more than ${max} signature layers: this one and ${beyond.count - 1} further (the last at ${path}) were not examined`;
  beyond.layer.notes[0] = reason;
  beyond.signature.reasons[0] = reason;
  return true;
}

/**
 * The entity in `bytes` at `path`, its header block read within the walk's budget of header lines (maxHeaderLines).
 * Beyond it nothing of the entity is parsed, so nothing of it is known (it may be signed, or hold signatures): it is
 * not examined, counted in one INDETERMINATE entry for the whole walk (at the first one's path), and stands as a part
 * the reader sees, not examined. Returns undefined then.
 */
function entityWithin(state: State, bytes: Buffer, path: string, coveredBy: readonly string[]): Entity | undefined {
  try {
    return entityOf(bytes, path, state.headers);
  } catch (error) {
    if (!(error instanceof HeaderBudgetError)) throw error;
    const beyond = state.beyondHeaderBudget;
    const limit = `beyond the limit of ${state.limits.maxHeaderLines} header lines in all, or of ${state.headers.maxBlockBytes} bytes for one header`;
    if (!beyond) {
      const reason = `the header of this entity is ${limit} (${error.message}): not examined`;
      state.beyondHeaderBudget = { ...refusedLayer(state, { path }, 'not-examined', reason), count: 1 };
    } else {
      beyond.count++;
      const reason = `headers ${limit}: this entity and ${beyond.count - 1} further (the last at ${path}) were not examined`;
      beyond.layer.notes[0] = reason;
      beyond.signature.reasons[0] = reason;
    }
    state.parts.push({
      path,
      description: 'an entity whose header was not read (beyond the limit), not examined',
      role: 'content',
      coveredBy: [...coveredBy],
    });
    return undefined;
  }
}

/** How many more entities the walk may examine. */
function partBudget(state: State): number {
  return Math.max(0, state.limits.maxParts - state.partCount);
}

/**
 * The parts of a multipart from `from` (0-based) on, beyond the part budget and never parsed: one INDETERMINATE
 * entry, since they may hold signatures, and one part the reader sees, covered only by what covers the multipart.
 */
function partsNotExamined(state: State, entity: Entity, from: number, total: number, coveredBy: readonly string[]) {
  const first = childPath(entity.path, from + 1);
  const count = total - from;
  const reason = `${count} of its ${total} parts (from ${first} on) beyond the limit of ${state.limits.maxParts} parts: not examined`;
  refusedLayer(state, entity, 'not-examined', reason);
  state.parts.push({
    path: first,
    description: `${count} of the ${total} parts of ${entity.description} (from ${first} on), not examined`,
    role: 'content',
    coveredBy: [...coveredBy],
  });
}

function notExaminedSignature(state: State, layer: Layer, path: string, format: string, reason: string) {
  return verdictEntry(state, layer, path, format, indeterminate('SIG_CONSTRAINTS_FAILURE'), reason);
}

/** A signature entry that carries a verdict of its own (no SignerInfo behind it: signerIndex -1). */
function verdictEntry(
  state: State,
  layer: Layer,
  path: string,
  format: string,
  judgement: Judgement,
  reason: string,
): ReportedSignature {
  const subIndication = judgement.indication === 'TOTAL_PASSED' ? undefined : judgement.subIndication;
  const signature: ReportedSignature = {
    id: `S${state.signatures.length + 1}`,
    layerId: layer.id,
    path,
    format,
    indication: judgement.indication,
    ...(subIndication ? { subIndication } : {}),
    sentence: sentenceFor(judgement.indication, subIndication),
    reasons: [reason],
    signerIndex: -1,
    algorithms: {},
    signingCertificateBound: false,
  };
  state.signatures.push(signature);
  return signature;
}

async function walkEntity(entity: Entity, depth: number, coveredBy: readonly string[], state: State): Promise<void> {
  state.partCount++;
  if (depth > state.limits.maxDepth || state.partCount > state.limits.maxParts) {
    const reason =
      depth > state.limits.maxDepth
        ? `nested deeper than ${state.limits.maxDepth} levels: not examined`
        : `more than ${state.limits.maxParts} parts: not examined`;
    // What we did not look at may hold a signature; it can never count as verified.
    if (looksSigned(entity)) refusedLayer(state, entity, 'not-examined', reason);
    addVisible(state, entity, coveredBy, `${entity.description}, not examined`);
    return;
  }
  if (entity.ambiguities.length > 0) {
    // Which of two Content-Type fields (or boundary parameters) a mail client believes is its choice: a signature
    // judged under one reading could be shown under the other, so nothing that may be signed is judged at all.
    const types = entity.fields.filter((f) => f.key === 'content-type').map((f) => parseContentType(f.value).mediaType);
    const signedType = (t: string) => t === 'multipart/signed' || PKCS7_MIME_TYPES.has(t) || SIGNATURE_TYPES.has(t);
    // A multipart reading matters only when something signed could be inside it.
    const mayHoldSignature = /pkcs7|\.p7[ms]\b/i.test(entity.body.toString('latin1'));
    if (types.some((t) => signedType(t) || (t.startsWith('multipart/') && mayHoldSignature))) {
      refusedLayer(state, entity, 'malformed', `the entity's header is ambiguous: ${entity.ambiguities.join('; ')}`);
    }
    addVisible(state, entity, coveredBy, `${entity.description}, ambiguous header`);
    return;
  }
  const mediaType = entity.type.mediaType;
  if (mediaType === 'multipart/signed') return walkMultipartSigned(entity, depth, coveredBy, state);
  if (mediaType === 'multipart/encrypted') return encryptedLayer(entity, coveredBy, state);
  if (mediaType.startsWith('multipart/')) return walkMultipart(entity, depth, coveredBy, state);
  if (mediaType === 'message/rfc822' || mediaType === 'message/global') {
    const inner = entityWithin(state, bareLfToCrlf(entity.body), childPath(entity.path, 'message'), coveredBy);
    if (inner) await walkEntity(inner, depth + 1, coveredBy, state);
    return;
  }
  if (isCmsEntity(entity)) return walkCms(entity, depth, coveredBy, state);
  if (entity.type.mediaType === 'application/pdf' || /\.pdf$/i.test(entity.filename ?? '')) {
    return walkPdf(entity, coveredBy, state);
  }
  addVisible(state, entity, coveredBy);
}

/**
 * A PDF attachment: every signature and document timestamp in it is verified (verifyPdfInContext) and reported as a
 * layer at the part's path. The part counts as covered only when a signature covers the whole file; one changed
 * after signing is reported with its signature and stays uncovered. A PDF without /ByteRange is a plain part.
 */
async function walkPdf(entity: Entity, coveredBy: readonly string[], state: State): Promise<void> {
  const bytes = decodedBody(entity);
  if (bytes.indexOf('/ByteRange') < 0) {
    addVisible(state, entity, coveredBy);
    return;
  }
  if (beyondSignatureLayerLimit(state, entity.path)) {
    addVisible(state, entity, coveredBy, `${entity.description}, not examined`);
    return;
  }
  const result = await verifyPdfInContext(bytes, state.context);
  if (result.unreadable !== undefined) {
    refusedLayer(state, entity, 'malformed', `the PDF is not readable: ${result.unreadable}`);
    addVisible(state, entity, coveredBy, `${entity.description}, unreadable PDF`);
    return;
  }
  if (result.signatures.length === 0) {
    addVisible(state, entity, coveredBy);
    return;
  }
  const covers = { path: entity.path, description: entity.description };
  const layer = addLayer(state, {
    path: entity.path,
    kind: 'pades',
    description: FORMATS.pades,
    covers,
    notes: [result.document.sentence.en, ...result.notes],
  });
  for (const signature of result.signatures) {
    const {
      id: _pdfId,
      kind,
      objectNumber,
      coversWholeDocument,
      bytesAfter,
      claimed,
      subFilter,
      byteRange,
      revision,
      ...verification
    } = signature;
    const what = kind === 'document-timestamp' ? 'document timestamp' : 'signature';
    const reported: ReportedSignature = {
      ...verification,
      id: `S${state.signatures.length + 1}`,
      layerId: layer.id,
      path: entity.path,
      format: `PAdES ${what} (${subFilterLabel(subFilter)})`,
      covers: {
        path: entity.path,
        description: revision
          ? `revision ${revision.number} of ${revision.of} of ${entity.description}${coversWholeDocument ? '' : ': the document was changed afterwards'}`
          : entity.description,
      },
      pdf: {
        kind,
        objectNumber,
        coversWholeDocument,
        bytesAfter,
        claimed,
        ...(subFilter ? { subFilter } : {}),
        ...(byteRange ? { byteRange } : {}),
        ...(revision ? { revision } : {}),
      },
    };
    state.signatures.push(reported);
    layer.signatureIds.push(reported.id);
  }
  const whole = result.document.coverage === 'full';
  addVisible(
    state,
    entity,
    whole ? [...coveredBy, layer.id] : coveredBy,
    whole
      ? entity.description
      : `${entity.description}, ${result.document.coverage === 'partial' ? 'changed after signing' : 'not validly signed'}`,
  );
}

/**
 * What may hold a signature the walk would judge: a signed or any multipart, CMS, an attached message, and a PDF (its
 * own signatures; one left out past a limit must not let the rest stand as passed when it would have failed).
 */
function looksSigned(entity: Entity): boolean {
  const mediaType = entity.type.mediaType;
  return (
    mediaType.startsWith('multipart/') ||
    mediaType.startsWith('message/') ||
    isCmsEntity(entity) ||
    mediaType === 'application/pdf' ||
    /\.pdf$/i.test(entity.filename ?? '')
  );
}

function isCmsEntity(entity: Entity): boolean {
  const mediaType = entity.type.mediaType;
  if (PKCS7_MIME_TYPES.has(mediaType) || SIGNATURE_TYPES.has(mediaType)) return true;
  return /\.p7[ms]$/i.test(entity.filename ?? '');
}

function isDetachedSignaturePart(entity: Entity): boolean {
  return SIGNATURE_TYPES.has(entity.type.mediaType) || /\.p7s$/i.test(entity.filename ?? '');
}

function encryptedLayer(entity: Entity, coveredBy: readonly string[], state: State): void {
  addLayer(state, {
    path: entity.path,
    kind: 'encrypted',
    description: FORMATS.encrypted,
    notes: ['encrypted, not verified: decryption happens before this stage'],
  });
  addVisible(state, entity, coveredBy, `${entity.description}, encrypted, not verified`);
}

/** The body without its transfer encoding (RFC 2045 §6). */
export function decodedBody(entity: { fields: readonly HeaderField[]; body: Buffer }): Buffer {
  const encoding = (headerValue(entity.fields, 'content-transfer-encoding') ?? '7bit').trim().toLowerCase();
  if (encoding === 'base64') {
    // Node's decoder skips line breaks and other characters outside the alphabet itself.
    return Buffer.from(entity.body.toString('latin1'), 'base64');
  }
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(entity.body);
  return entity.body;
}

// Blanks before a line break (RFC 2045 §6.7 (3)), matched only from the start of their run: /[ \t]+\r\n/g tried
// again from each blank of a run that ends in no line break (quadratic: 100,000 blanks took 4.6 s of the walk).
const BLANKS_BEFORE_LINE_BREAK = /(?<![ \t])[ \t]+\r\n/g;

function decodeQuotedPrintable(body: Buffer): Buffer {
  const text = body.toString('latin1').replace(BLANKS_BEFORE_LINE_BREAK, '\r\n').replace(/=\r\n/g, '');
  return Buffer.from(
    text.replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
    'latin1',
  );
}

async function walkMultipartSigned(
  entity: Entity,
  depth: number,
  coveredBy: readonly string[],
  state: State,
): Promise<void> {
  let parts: Buffer[];
  try {
    parts = multipartParts(entity.body, entity.type.parameters.boundary ?? '');
  } catch (error) {
    refusedLayer(state, entity, 'malformed', `multipart/signed not readable: ${(error as Error).message}`);
    addVisible(state, entity, coveredBy, `${entity.description}, unreadable`);
    return;
  }
  const signedEntity = entityWithin(state, parts[0] as Buffer, childPath(entity.path, 1), coveredBy);
  // Unread, what is signed is not known to be what a reader sees: the signature is not judged either.
  if (!signedEntity) return;
  const protocol = (entity.type.parameters.protocol ?? '').toLowerCase();
  if (!SIGNATURE_TYPES.has(protocol)) {
    addLayer(state, {
      path: entity.path,
      kind: 'unsupported-signature',
      description: `${FORMATS['unsupported-signature']}: ${protocol || 'no protocol'}`,
      notes: ['not verified here: only S/MIME (CMS) signatures are'],
    });
    await walkEntity(signedEntity, depth + 1, coveredBy, state);
    return;
  }
  if (parts.length !== 2) {
    refusedLayer(state, entity, 'malformed', `multipart/signed has ${parts.length} parts instead of 2`);
    let next = 0;
    for (; next < parts.length && partBudget(state) > 0; next++) {
      const part = entityWithin(state, parts[next] as Buffer, childPath(entity.path, next + 1), coveredBy);
      if (part) await walkEntity(part, depth + 1, coveredBy, state);
      else state.partCount++;
    }
    if (next < parts.length) partsNotExamined(state, entity, next, parts.length, coveredBy);
    return;
  }
  const signaturePart = entityWithin(state, parts[1] as Buffer, childPath(entity.path, 2), coveredBy);
  if (!signaturePart) {
    // The signature unread: what it signs is walked as unsigned (the entry beyond the budget is INDETERMINATE).
    await walkEntity(signedEntity, depth + 1, coveredBy, state);
    return;
  }
  const layer = await verifyCmsLayer(state, signaturePart, 'smime-detached', {
    path: entity.path,
    shown: { entity: signedEntity, bytes: parts[0] as Buffer },
  });
  const covering = layer?.kind === 'smime-detached' ? [...coveredBy, layer.id] : coveredBy;
  if (layer?.kind === 'smime-detached') noteSignedHeader(signedEntity, state);
  await walkEntity(signedEntity, depth + 1, covering, state);
}

/**
 * Verifies one CMS blob as a layer at `layerPath`. With `shown`, the signature is detached and judged on those
 * bytes only. Returns the layer, or undefined when the blob is not signed-data at all.
 */
async function verifyCmsLayer(
  state: State,
  blob: Entity,
  kind: 'smime-detached' | 'smime-opaque' | 'cades-detached' | 'cades-enveloping',
  options: {
    path: string;
    shown?: { entity: Entity; bytes: Buffer };
    /** The blob already parsed by the caller (walkCms): a large opaque message is decoded and read once. */
    parsed?: ReturnType<typeof parseContentInfo>;
  },
): Promise<Layer | undefined> {
  if (beyondSignatureLayerLimit(state, options.path)) return undefined;
  let parsed: ReturnType<typeof parseContentInfo>;
  try {
    parsed = options.parsed ?? parseContentInfo(decodedBody(blob));
  } catch (error) {
    const reason = error instanceof SignatureFormatError ? error.message : String(error);
    return refusedLayer(state, { path: options.path }, 'malformed', reason).layer;
  }
  if (parsed.kind !== 'signed-data') {
    return refusedLayer(
      state,
      { path: options.path },
      'malformed',
      parsed.kind === 'encrypted'
        ? 'an encrypted CMS object where a signature belongs'
        : `CMS content type ${parsed.contentType} where a signature belongs`,
    ).layer;
  }
  const { signedData } = parsed;
  const covers = options.shown
    ? { path: options.shown.entity.path, description: options.shown.entity.description }
    : { path: childPath(blob.path, 'content'), description: 'the content inside the signature' };
  if (signedData.signerInfos.length === 0) {
    return addLayer(state, {
      path: options.path,
      kind: 'no-signers',
      description: FORMATS['no-signers'],
      notes: ['the SignedData has no SignerInfo: not signed'],
    });
  }
  const purpose = kind.startsWith('smime') ? 'emailProtection' : 'any';
  // A stranger's SignedData may name thousands of signers and certificates: each costs a signature check and a path.
  const examined = {
    ...signedData,
    signerInfos: signedData.signerInfos.slice(0, state.limits.maxSignersPerLayer),
    certificates: signedData.certificates.slice(0, state.limits.maxCertificatesPerLayer),
  };
  // Each signer with its signature timestamp, if any (the same as for a PDF signature).
  const verification = await verifySignedDataWithTimestamps(
    { signedData: examined, purpose, ...(options.shown ? { shownContent: [options.shown.bytes] } : {}) },
    state.context,
  );
  const layer = addLayer(state, { path: options.path, kind, description: FORMATS[kind], covers });
  if (signedData.certificates.length > examined.certificates.length) {
    layer.notes.push(
      `only the first ${examined.certificates.length} of ${signedData.certificates.length} certificates were read`,
    );
  }
  if (verification.embeddedContentIgnored) {
    layer.notes.push(
      'the detached signature also carries content of its own; it was ignored: the shown part was judged',
    );
  }
  for (const signature of verification.signatures) {
    const reported: ReportedSignature = {
      ...signature,
      id: `S${state.signatures.length + 1}`,
      layerId: layer.id,
      path: options.path,
      format: FORMATS[kind],
      covers,
    };
    state.signatures.push(reported);
    layer.signatureIds.push(reported.id);
  }
  const skipped = signedData.signerInfos.length - examined.signerInfos.length;
  if (skipped > 0) {
    // The signers not examined can never count as verified: they stand as one INDETERMINATE entry.
    const reason = `${skipped} further SignerInfos beyond the limit of ${state.limits.maxSignersPerLayer} were not examined`;
    const entry = notExaminedSignature(state, layer, options.path, FORMATS[kind], reason);
    layer.notes.push(reason);
    layer.signatureIds.push(entry.id);
  }
  return layer;
}

async function walkCms(entity: Entity, depth: number, coveredBy: readonly string[], state: State): Promise<void> {
  let parsed: ReturnType<typeof parseContentInfo> | undefined;
  try {
    parsed = parseContentInfo(decodedBody(entity));
  } catch {
    parsed = undefined;
  }
  const smimeType = (entity.type.parameters['smime-type'] ?? '').toLowerCase();
  // Declared or found encrypted: opaque here (a signature relabelled so only hides itself: it then counts as none).
  if (parsed?.kind === 'encrypted' || smimeType === 'enveloped-data' || smimeType === 'authenveloped-data') {
    return encryptedLayer(entity, coveredBy, state);
  }
  if (isDetachedSignaturePart(entity) && !(parsed?.kind === 'signed-data' && parsed.signedData.eContent)) {
    // A .p7s without a document beside it (the multipart walk pairs those that have one).
    await verifyCmsLayer(state, entity, 'cades-detached', { path: entity.path, ...(parsed ? { parsed } : {}) });
    addVisible(state, entity, coveredBy, `${entity.description}, signature`, 'signature');
    return;
  }
  // S/MIME opaque signing carries a MIME entity (clients name it smime.p7m, often as an "attachment"); a .p7m
  // named after a document (vertrag.pdf.p7m) is a CAdES-signed document.
  const opaqueSmime =
    PKCS7_MIME_TYPES.has(entity.type.mediaType) &&
    (smimeType === 'signed-data' || smimeType === '') &&
    (entity.filename === undefined || /^smime\.p7m$/i.test(entity.filename));
  const kind = opaqueSmime ? 'smime-opaque' : 'cades-enveloping';
  const layer = await verifyCmsLayer(state, entity, kind, { path: entity.path, ...(parsed ? { parsed } : {}) });
  const covering = layer && layer.kind === kind ? [...coveredBy, layer.id] : coveredBy;
  const eContent = parsed?.kind === 'signed-data' ? parsed.signedData.eContent : undefined;
  if (!eContent) {
    addVisible(state, entity, coveredBy, `${entity.description}, signature without content`);
    return;
  }
  const content = contentBytes(eContent);
  if (opaqueSmime) {
    const signedEntity = entityWithin(state, bareLfToCrlf(content), childPath(entity.path, 'content'), covering);
    if (!signedEntity) return;
    if (layer?.kind === kind) noteSignedHeader(signedEntity, state);
    await walkEntity(signedEntity, depth + 1, covering, state);
    return;
  }
  // A signed document: delivered unwrapped beside the original, its name without .p7m.
  const filename = entity.filename?.replace(/\.p7m$/i, '');
  state.unwrapped.push({
    path: entity.path,
    ...(filename ? { filename } : {}),
    content,
    signatureIds: layer ? [...layer.signatureIds] : [],
  });
  state.parts.push({
    path: childPath(entity.path, 'content'),
    description: `document${filename ? ` “${filename}”` : ''} inside ${entity.description}`,
    role: 'content',
    coveredBy: [...covering],
  });
}

const SENDER_FIELDS = new Set(['from', 'sender']);

/**
 * The From and Sender fields of what an S/MIME signature signs as a header: the entity's own (protected headers) and,
 * when the signed content is a whole message (message/rfc822), that message's. A message forwarded as one part among
 * others inside the signed content is not the signer's header and is not noted.
 */
function noteSignedHeader(signedEntity: Entity, state: State): void {
  const own = signedEntity.fields.filter((f) => SENDER_FIELDS.has(f.key));
  if (own.length > 0) state.signedHeaders.push({ path: signedEntity.path, fields: own });
  const mediaType = signedEntity.type.mediaType;
  if (mediaType !== 'message/rfc822' && mediaType !== 'message/global') return;
  let fields: HeaderField[];
  try {
    ({ fields } = splitHeaderBlockWithin(bareLfToCrlf(signedEntity.body), state.headers));
  } catch (error) {
    // The walk of the attached message meets the same header next and reports it as not examined.
    if (error instanceof HeaderBudgetError) return;
    throw error;
  }
  const inner = fields.filter((f) => SENDER_FIELDS.has(f.key));
  if (inner.length > 0) state.signedHeaders.push({ path: childPath(signedEntity.path, 'message'), fields: inner });
}

async function walkMultipart(entity: Entity, depth: number, coveredBy: readonly string[], state: State): Promise<void> {
  let parts: Buffer[];
  try {
    parts = multipartParts(entity.body, entity.type.parameters.boundary ?? '');
  } catch {
    addVisible(state, entity, coveredBy, `${entity.description}, unreadable multipart`);
    return;
  }
  // Only what the part budget still allows is parsed and paired: the work follows the limits, not the part count.
  // A child whose header is beyond the budget of header lines is undefined here (and reported as not examined).
  const children = parts
    .slice(0, partBudget(state))
    .map((part, index) => entityWithin(state, part, childPath(entity.path, index + 1), coveredBy));
  const pairedBy = await pairDetachedSignatures(
    children.filter((child) => child !== undefined),
    state,
  );
  let next = 0;
  // A child multipart may use up the budget: what is left of this one is then not examined either.
  for (; next < children.length && partBudget(state) > 0; next++) {
    const child = children[next];
    if (!child) {
      state.partCount++;
      continue;
    }
    if (pairedBy.signatureParts.has(child)) {
      // Examined (verified with its document above): it counts like any part.
      state.partCount++;
      addVisible(state, child, coveredBy, `${child.description}, signature`, 'signature');
      continue;
    }
    const extra = pairedBy.coverage.get(child) ?? [];
    await walkEntity(child, depth + 1, [...coveredBy, ...extra], state);
  }
  if (next < parts.length) partsNotExamined(state, entity, next, parts.length, coveredBy);
}

/** A child that a .p7s beside it may sign: a single part (never a multipart or a message body tree). */
function isDocumentPart(entity: Entity): boolean {
  const mediaType = entity.type.mediaType;
  return !isDetachedSignaturePart(entity) && !mediaType.startsWith('multipart/') && !mediaType.startsWith('message/');
}

/**
 * .p7s attachments and the documents they sign: by name first (`vertrag.pdf.p7s` → `vertrag.pdf`,
 * `vertrag.p7s` → `vertrag.*`), else the nearest document before it. A .p7s whose name names a document that is
 * not there stays unpaired. Each pair is verified here on the document's decoded bytes.
 */
async function pairDetachedSignatures(
  children: readonly Entity[],
  state: State,
): Promise<{ signatureParts: Set<Entity>; coverage: Map<Entity, string[]> }> {
  const signatureParts = new Set<Entity>();
  const coverage = new Map<Entity, string[]>();
  const paired = new Set<Entity>();
  // The documents and their names once per multipart, not once per .p7s.
  const documents = children.filter(isDocumentPart).map((entity) => {
    const name = (entity.filename ?? '').toLowerCase();
    return { entity, name, stem: name.replace(/\.[^.]*$/, '') };
  });
  const unpaired = (d: { entity: Entity }) => !paired.has(d.entity);
  for (const [index, child] of children.entries()) {
    if (!isDetachedSignaturePart(child)) continue;
    const base = (child.filename ?? '').replace(/\.p7s$/i, '').toLowerCase();
    let document: Entity | undefined;
    if (base && base !== 'smime' && base !== 'signature') {
      document = (
        documents.find((d) => unpaired(d) && d.name === base) ?? documents.find((d) => unpaired(d) && d.stem === base)
      )?.entity;
      if (!document && /\.[a-z0-9]{1,5}$/.test(base)) {
        // The name says which document it signs, and that document is not here.
        continue;
      }
    }
    document ??= nearestDocumentBefore(children, index, paired);
    if (!document) continue;
    paired.add(document);
    signatureParts.add(child);
    const layer = await verifyCmsLayer(state, child, 'cades-detached', {
      path: child.path,
      shown: { entity: document, bytes: decodedBody(document) },
    });
    if (layer?.kind === 'cades-detached') coverage.set(document, [...(coverage.get(document) ?? []), layer.id]);
  }
  return { signatureParts, coverage };
}

function nearestDocumentBefore(children: readonly Entity[], index: number, paired: Set<Entity>): Entity | undefined {
  for (let i = index - 1; i >= 0; i--) {
    const candidate = children[i] as Entity;
    if (isDocumentPart(candidate) && !paired.has(candidate)) return candidate;
  }
  return undefined;
}
