// Parts of the sender's message that imitate the gateway's report. The report is a part of the gateway's own outer
// layer (report-message.ts), but a stranger can attach a file of the same name showing a green light: for unsigned
// mail it was the only "report" the agency employee saw (X-SMGW-Signature: NONE is shown by few mail clients), for
// signed mail it sat inside the original, beside ours (Thunderbird lists the attachments of an inline message too).
// Such parts are found here so the report can say that the message holds them and that they are the sender's.
//
// What counts (cheap, no rendering): a name (Content-Disposition filename, Content-Type name, in every field that
// gives one, RFC 2231 continuations and charsets and RFC 2047 words decoded as libmime decodes them, raw UTF-8 too;
// an attached message by its Subject, as clients list it) or a Content-Description that reads like a verification
// report once normalised (normalisedName below); a media type naming a validation report; an XML part whose start
// holds the ETSI TS 119 102-2 namespace, our own report namespace or a ValidationReport root; a PDF whose bytes name
// the gateway as its producer (a real report of ours, forwarded, or a copy that kept its metadata). A PDF is never
// rendered or read for its text.
//
// Where: every entity a mail client may show, walked as leniently as clients read (every Content-Type field of an
// entity, a multipart without its closing delimiter, message/rfc822 also when base64, the content of an opaque
// S/MIME signature), within the verifier's own limits (depth 12, 500 entities, 100,000 header lines): the work follows
// the limits, not the message. What lies beyond them is counted as not examined, and the report says so.
import { type ContentType, multipartParts, parseContentType } from '@smgw/crypto';
import {
  bareLfToCrlf,
  decodeEncodedWords,
  type HeaderBudget,
  HeaderBudgetError,
  type HeaderField,
  headerBudget,
  headerValue,
} from '@smgw/mime';
import {
  childPath,
  DEFAULT_WALK_LIMITS,
  decodedBody,
  type Entity,
  entityOf,
  PKCS7_MIME_TYPES,
  parseContentInfo,
} from '@smgw/signature-verify';
import { SMGW_VR_NS, VR_NS } from '@smgw/trusted-list';
import libmime from 'libmime';
import unhomoglyph from 'unhomoglyph';
import { PDF_REPORT_NAME, XML_REPORT_NAME } from './report-message.ts';

/** Why a part counts as an imitation (one part may have several reasons). */
export type ImitationReason = 'name' | 'description' | 'media-type' | 'xml-content' | 'pdf-content';

export interface Imitation {
  /** MIME path, as the verifier writes them (`/2`, `/1/message/3`, `/content/2`). */
  path: string;
  /** The name a mail client shows for it (decoded, as the sender wrote it), if any. */
  name?: string;
  reasons: ImitationReason[];
}

export interface ImitationScan {
  imitations: Imitation[];
  /** Entities not examined: beyond the depth, part or work limit. */
  notExamined: number;
  /** Body bytes looked at, all entities together (bounded by workPerByte). */
  examinedBytes?: number;
}

export interface ImitationLimits {
  maxDepth: number;
  maxParts: number;
  /**
   * Bytes of entity bodies looked at in all, as a multiple of the message's size (plus 1 MiB). One reading of each
   * entity passes each byte at most once per level (12 × the size at worst); several Content-Type readings per level,
   * each splitting the same body anew, would multiply per level: 500 entities of nearly the whole message each.
   */
  workPerByte: number;
  /**
   * Header lines read in all, each entity's header block at most 1 MiB (the verifier's maxHeaderLines): parsing costs
   * about 0.3–0.9 µs a line, and 31 MB of header lines in one part took 2.5–9 s of this walk (14 s in an attached
   * message, whose header was read twice: for its Subject and for its walk).
   */
  maxHeaderLines: number;
}

/** The verifier's limits: a message the verifier examines is examined here as far, and no further. */
export const IMITATION_LIMITS: ImitationLimits = {
  maxDepth: DEFAULT_WALK_LIMITS.maxDepth,
  maxParts: DEFAULT_WALK_LIMITS.maxParts,
  workPerByte: 16,
  maxHeaderLines: DEFAULT_WALK_LIMITS.maxHeaderLines,
};

const WORK_ALLOWANCE = 1024 * 1024;

/** Of an XML part, this much of the start is looked at for the report's root and namespaces. */
const XML_SNIFF_BYTES = 64 * 1024;
/** Readings of an entity considered: its Content-Type fields (a client may take the first, the walk the last). */
const MAX_READINGS = 4;

// Both match only from the start of a run of their leading characters (the lookbehind): without it a run that does not
// end the name was scanned again from each of its characters (quadratic: a name of 100,000 took 5 to 11 s).
const TRAILING_DOTS_AND_SPACES = /(?<![. ])[. ]+$/;
const COPY_COUNTER = /(?<![\s_-])[\s_-]*(?:\(\d{1,3}\)|[_-]\d{1,3})$/;

/**
 * A name as a reader sees it: NFKC (full-width and other compatibility forms), lower case, German umlauts as written
 * out (ü → ue, as our own names are), other diacritics dropped, invisible and format characters (zero-width space and
 * joiners, bidi controls, soft hyphen, variation selectors, controls) removed, white space as one space, trailing
 * dots and spaces dropped (Windows drops them).
 */
export function normalisedName(name: string): string {
  return name
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[äöü]/g, (ch) => ({ ä: 'ae', ö: 'oe', ü: 'ue' })[ch] as string)
    .replaceAll('ß', 'ss')
    .normalize('NFD')
    .replace(/[\p{M}\p{Cf}\p{Cc}\p{Default_Ignorable_Code_Point}]/gu, '')
    .replace(/\s+/gu, ' ')
    .replace(TRAILING_DOTS_AND_SPACES, '')
    .trim();
}

/** A normalised name without its extensions (`.pdf.pdf`, `.PDF`, `.xml.p7m`) and a copy counter (`(1)`, `-2`). */
function stemOf(normalised: string): string {
  let stem = normalised;
  for (let i = 0; i < 8; i++) {
    const shorter = stem.replace(/\.[\p{L}\p{N}]{1,5}$/u, '').replace(TRAILING_DOTS_AND_SPACES, '');
    if (shorter === stem || shorter === '') break;
    stem = shorter;
  }
  return stem.replace(COPY_COUNTER, '');
}

/**
 * A stem as compared: look-alike letters of other scripts mapped to their prototype (Unicode TR 39 confusables, the
 * `unhomoglyph` table: Cyrillic а is a, 1 is l), then letters and digits only, so `Signatur-Prüf_Bericht` and
 * `signaturpruefbericht` compare equal. Our own words go through the same, so the mapping applies to both sides.
 */
const comparable = (stem: string): string => unhomoglyph(stem).replace(/[^\p{L}\p{N}]/gu, '');
const keys = (words: readonly string[]): string[] => words.map((w) => comparable(stemOf(normalisedName(w))));

/** Names that are a verification report by themselves: ours, and the bare generic ones. */
const REPORT_STEMS = new Set(
  keys([
    PDF_REPORT_NAME,
    XML_REPORT_NAME,
    'Prüfbericht',
    'Signaturbericht',
    'verification report',
    'validation report',
  ]),
);
/**
 * Otherwise a name reads like a verification report when it names signatures (or the gateway) and a check or report.
 * "Prüfbericht" alone is not enough inside a longer name: agencies receive inspection reports (TÜV, fire safety)
 * named so every day, and a warning on each would teach readers to ignore it.
 */
const SUBJECT_WORDS = keys(['signatur', 'unterschrift', 'securemail', 'smgw', 'gateway', 'etsi']);
const REPORT_WORDS = keys(['prüf', 'bericht', 'report', 'verif', 'valid', 'check', 'ergebnis', 'result', 'protokoll']);

/** Whether a name (or a description) reads like the gateway's verification report. */
export function namedLikeReport(name: string): boolean {
  const stem = comparable(stemOf(normalisedName(name)));
  if (stem === '') return false;
  if (REPORT_STEMS.has(stem)) return true;
  return SUBJECT_WORDS.some((w) => stem.includes(w)) && REPORT_WORDS.some((w) => stem.includes(w));
}

/** Media types an ETSI validation report might be labelled with (ours is application/xml, found by its name). */
const REPORT_MEDIA_TYPE = /validation-?report|verification-?report|19102/;

/** The report's namespaces and root element, in the XML's first bytes. */
const XML_REPORT_MARKS = [
  VR_NS.replace(/v[\d.]+#$/, ''), // http://uri.etsi.org/19102/ in any version
  SMGW_VR_NS,
];
const XML_REPORT_ROOT = /<(?:[\w.-]+:)?ValidationReport[\s>/]/;

/**
 * Marks the gateway's PDF report carries in its document information (report-pdf.ts: Producer "SecureMail Gateway
 * (host)", Creator "smgw signature-verify"), as pdf-lib writes them (UTF-16BE hex strings) and as plain literals.
 */
const PDF_MARKS = ['SecureMail Gateway', 'smgw signature-verify'].flatMap((text) => {
  const hex = Buffer.from(text, 'utf16le').swap16().toString('hex');
  return [Buffer.from(text, 'latin1'), Buffer.from(hex.toUpperCase()), Buffer.from(hex)];
});

/**
 * Header values as a client may read them: with 8-bit bytes (read as Latin-1 here) as raw UTF-8 first (RFC 6532, what
 * clients assume), when they are UTF-8, and as Latin-1.
 */
function readingsOf(value: string): string[] {
  if (!/[\u0080-\u00ff]/.test(value)) return [value];
  const utf8 = Buffer.from(value, 'latin1').toString('utf8');
  return utf8.includes('\ufffd') ? [value] : [utf8, value];
}

/** Every name the entity's fields give it: filename and name, in every field, each reading; the walk's first. */
function namesOf(entity: Entity): string[] {
  const names = new Set<string>(entity.filename ? readingsOf(entity.filename) : []);
  for (const field of entity.fields) {
    if (field.key !== 'content-disposition' && field.key !== 'content-type') continue;
    for (const value of readingsOf(field.value)) {
      const { params } = libmime.parseHeaderValue(value);
      for (const key of ['filename', 'name']) {
        const param = params[key];
        if (typeof param !== 'string' || param === '') continue;
        // libmime decodes RFC 2231 itself; an RFC 2047 word inside a quoted name is what many clients still write.
        names.add(decodeEncodedWords(param));
      }
    }
  }
  return [...names];
}

/** An attached message is listed by its Subject when it has no name (one whose header is not read has none). */
function subjectOf(entity: Entity, state: State): string | undefined {
  const mediaType = entity.type.mediaType;
  if (mediaType !== 'message/rfc822' && mediaType !== 'message/global') return undefined;
  const inner = innerMessage(entity, state);
  if (!inner) return undefined;
  const subject = headerValue(inner.fields, 'subject');
  return subject === undefined ? undefined : decodeEncodedWords(readingsOf(subject)[0] as string);
}

function innerMessage(entity: Entity, state: State): Entity | undefined {
  // Decoded: RFC 2046 allows no base64 here, but lenient clients show such an attached message all the same.
  return entityWithin(bareLfToCrlf(decodedBody(entity)), childPath(entity.path, 'message'), state);
}

/**
 * The entity at `path`, its header read within the walk's budget of header lines; beyond it undefined, nothing of it
 * parsed (the caller counts it as not examined).
 */
function entityWithin(bytes: Buffer, path: string, state: State): Entity | undefined {
  try {
    return entityOf(bytes, path, state.headers);
  } catch (error) {
    if (error instanceof HeaderBudgetError) return undefined;
    throw error;
  }
}

function looksLikeXml(entity: Entity, names: readonly string[]): boolean {
  return /[/+]xml$/.test(entity.type.mediaType) || names.some((n) => /\.xml$/i.test(normalisedName(n)));
}

function looksLikePdf(entity: Entity, names: readonly string[]): boolean {
  return entity.type.mediaType === 'application/pdf' || names.some((n) => /\.pdf$/i.test(normalisedName(n)));
}

/** The start of an XML part as text: UTF-16 by its byte order mark, else Latin-1 (the marks are ASCII). */
function xmlStart(entity: Entity): string {
  // Only a prefix is decoded: base64 and quoted-printable decode in order, so the prefix's bytes come first.
  const head = decodedBody({ fields: entity.fields, body: entity.body.subarray(0, XML_SNIFF_BYTES * 2) }).subarray(
    0,
    XML_SNIFF_BYTES,
  );
  if (head[0] === 0xff && head[1] === 0xfe) return head.toString('utf16le');
  if (head[0] === 0xfe && head[1] === 0xff) return Buffer.from(head).swap16().toString('utf16le');
  return head.toString('latin1');
}

function reasonsFor(entity: Entity, names: readonly string[]): ImitationReason[] {
  const reasons: ImitationReason[] = [];
  if (names.some(namedLikeReport)) reasons.push('name');
  const description = headerValue(entity.fields, 'content-description');
  if (description !== undefined && readingsOf(description).some((d) => namedLikeReport(decodeEncodedWords(d)))) {
    reasons.push('description');
  }
  if (REPORT_MEDIA_TYPE.test(entity.type.mediaType)) reasons.push('media-type');
  if (looksLikeXml(entity, names)) {
    const start = xmlStart(entity);
    if (XML_REPORT_MARKS.some((mark) => start.includes(mark)) || XML_REPORT_ROOT.test(start)) {
      reasons.push('xml-content');
    }
  }
  if (looksLikePdf(entity, names)) {
    const bytes = decodedBody(entity);
    if (PDF_MARKS.some((mark) => bytes.includes(mark))) reasons.push('pdf-content');
  }
  return reasons;
}

interface State {
  limits: ImitationLimits;
  imitations: Imitation[];
  parts: number;
  notExamined: number;
  /** Body bytes still to be looked at (workPerByte). */
  work: number;
  /** Header lines still to be read (maxHeaderLines). */
  headers: HeaderBudget;
}

/** Finds the parts of a message (header and body, CRLF or bare LF) that imitate the gateway's report. */
export function findReportImitations(message: Buffer, limits: ImitationLimits = IMITATION_LIMITS): ImitationScan {
  const state: State = {
    limits,
    imitations: [],
    parts: 0,
    notExamined: 0,
    work: WORK_ALLOWANCE + limits.workPerByte * message.length,
    headers: headerBudget(limits.maxHeaderLines),
  };
  const budget = state.work;
  walk(entityWithin(bareLfToCrlf(message), '/', state), 0, state);
  return { imitations: state.imitations, notExamined: state.notExamined, examinedBytes: budget - state.work };
}

/** `undefined`: an entity whose header was beyond the budget of header lines, not examined. */
function walk(entity: Entity | undefined, depth: number, state: State): void {
  if (!entity) {
    state.notExamined++;
    return;
  }
  if (depth > state.limits.maxDepth || state.parts >= state.limits.maxParts || state.work < entity.body.length) {
    state.notExamined++;
    return;
  }
  state.parts++;
  state.work -= entity.body.length;
  const names = namesOf(entity);
  const subject = names.length === 0 ? subjectOf(entity, state) : undefined;
  const shown = [...names, ...(subject === undefined ? [] : [subject])];
  const reasons = reasonsFor(entity, shown);
  if (reasons.length > 0) {
    state.imitations.push({ path: entity.path, ...(shown[0] === undefined ? {} : { name: shown[0] }), reasons });
  }
  for (const type of contentTypes(entity)) {
    const mediaType = type.mediaType;
    if (mediaType.startsWith('multipart/')) {
      const parts = partsOf(entity.body, type.parameters.boundary ?? '');
      for (const [index, part] of parts.entries()) {
        if (state.parts >= state.limits.maxParts) {
          // The rest are never parsed: the work follows the limit, not the part count.
          state.notExamined += parts.length - index;
          break;
        }
        walk(entityWithin(part, childPath(entity.path, index + 1), state), depth + 1, state);
      }
    } else if (mediaType === 'message/rfc822' || mediaType === 'message/global') {
      walk(innerMessage(entity, state), depth + 1, state);
    } else if (PKCS7_MIME_TYPES.has(mediaType) || /^smime\.p7m$/i.test(entity.filename ?? '')) {
      const content = opaqueContent(entity);
      if (content)
        walk(entityWithin(bareLfToCrlf(content), childPath(entity.path, 'content'), state), depth + 1, state);
    }
  }
}

/**
 * The readings of an entity's type: every Content-Type field (the walk of the verifier keeps the last, a mail client
 * may keep the first; a multipart under either must be looked into), at most MAX_READINGS, each media type once.
 */
function contentTypes(entity: Entity): ContentType[] {
  const fields = entity.fields.filter((f: HeaderField) => f.key === 'content-type').slice(0, MAX_READINGS);
  if (fields.length <= 1) return [entity.type];
  const seen = new Set<string>();
  return fields
    .map((f) => parseContentType(f.value))
    .filter((t) => {
      const key = `${t.mediaType} ${t.parameters.boundary ?? ''}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}

/**
 * The parts of a multipart body. A body without its closing delimiter, which mail clients still show part by part,
 * is split at its delimiter lines up to its end.
 */
function partsOf(body: Buffer, boundary: string): Buffer[] {
  try {
    return multipartParts(body, boundary);
  } catch {
    return unclosedParts(body, boundary);
  }
}

function unclosedParts(body: Buffer, boundary: string): Buffer[] {
  if (boundary === '' || boundary.length > 200) return [];
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  const starts: number[] = [];
  for (let i = body.indexOf(delimiter); i !== -1; i = body.indexOf(delimiter, i + delimiter.length)) {
    if (i === 0 || (body[i - 2] === 0x0d && body[i - 1] === 0x0a)) starts.push(i);
  }
  const parts: Buffer[] = [];
  for (const [k, start] of starts.entries()) {
    if (body[start + delimiter.length] === 0x2d && body[start + delimiter.length + 1] === 0x2d) break;
    const lineEnd = body.indexOf('\r\n', start);
    if (lineEnd === -1) break;
    const end = k + 1 < starts.length ? (starts[k + 1] as number) - 2 : body.length;
    if (end > lineEnd + 2) parts.push(body.subarray(lineEnd + 2, end));
  }
  return parts;
}

/** The MIME entity inside an opaque S/MIME signature (smime.p7m), as mail clients show it; else undefined. */
function opaqueContent(entity: Entity): Buffer | undefined {
  if (entity.filename !== undefined && !/^smime\.p7m$/i.test(entity.filename)) return undefined;
  try {
    const parsed = parseContentInfo(decodedBody(entity));
    if (parsed.kind !== 'signed-data' || !parsed.signedData.eContent) return undefined;
    return Buffer.concat(parsed.signedData.eContent);
  } catch {
    return undefined;
  }
}
