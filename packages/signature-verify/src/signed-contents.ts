// The contents inside every CMS SignedData a message carries, for the virus scan. clamd has no CMS parser: the signed
// content of an opaque-signed S/MIME message (a whole MIME entity with its attachments) or of a .p7m attachment is
// base64 DER to it, while a mail client shows it directly. So the MIME tree is walked as mime-walk.ts walks it (the
// same entities, the same decoding), every SignedData is read with parseContentInfo, and its encapsulated content is
// taken out and looked at again (an inner MIME entity, a SignedData inside a SignedData). Nothing is verified here.
// A part is SignedData when it says so (a CMS media type, a .p7m/.p7s name) or its decoded bytes start like one.
// What looks like SignedData and cannot be taken apart, or lies beyond the limits, is a problem: the caller must
// not call such a message clean.
import { multipartParts } from '@smgw/crypto';
import { bareLfToCrlf, type HeaderBudget, HeaderBudgetError, headerBudget, MAX_WALK_HEADER_LINES } from '@smgw/mime';
import { childPath, decodedBody, type Entity, entityOf, PKCS7_MIME_TYPES, SIGNATURE_TYPES } from './mime-walk.ts';
import { contentBytes, parseContentInfo } from './signed-data.ts';
import { mayCarrySignedData, startsLikeSignedData } from './signed-data-hint.ts';

export interface SignedContentLimits {
  /** MIME entities and SignedData nested deeper than this (each counts one level) are not opened; default 12. */
  maxDepth: number;
  /** SignedData read in all; default 32. */
  maxSignedData: number;
  /** Bytes taken out of SignedData in all (a nested content counts again); default 128 MiB. */
  maxBytes: number;
  /**
   * MIME entities walked in all (also those inside SignedData); default 10,000, clamd's MaxFiles. The walk is
   * synchronous: a stranger's 31 MB of a million tiny parts held the scan stage's event loop for 1.5–1.9 s of CPU.
   */
  maxParts: number;
  /**
   * Header lines read in all (every entity's, also inside SignedData); default 100,000 (MAX_WALK_HEADER_LINES), and
   * no block over 1 MiB. Parsing costs about 0.3 µs a line: a stranger's 31 MB of header lines in one part held the
   * scan stage's event loop for 2–3 s.
   */
  maxHeaderLines: number;
}

export const DEFAULT_SIGNED_CONTENT_LIMITS: SignedContentLimits = {
  maxDepth: 12,
  maxSignedData: 32,
  maxBytes: 128 * 1024 * 1024,
  maxParts: 10_000,
  maxHeaderLines: MAX_WALK_HEADER_LINES,
};

export interface SignedContent {
  /** MIME path of the SignedData, `/content` appended (the paths of mime-walk.ts). */
  path: string;
  bytes: Buffer;
  /** The content is a MIME entity (opaque-signed S/MIME): a mail client shows its parts; else a document. */
  mime: boolean;
}

export type SignedContentProblemKind =
  | 'malformed'
  | 'too-deep'
  | 'too-many'
  | 'too-large'
  | 'too-many-parts'
  | 'header-too-large';

export interface SignedContentProblem {
  kind: SignedContentProblemKind;
  /** MIME path of what could not be taken apart. */
  path: string;
  reason: string;
}

export interface SignedContents {
  /** Every encapsulated content found, outer before inner. */
  contents: SignedContent[];
  /** The first SignedData (or what may hold one) that could not be taken apart; the walk stops there. */
  problem?: SignedContentProblem;
}

/** Thrown inside the walk to end it at the first problem; never leaves signedContentsOf. */
class Unopened extends Error {
  readonly problem: SignedContentProblem;
  constructor(problem: SignedContentProblem) {
    super(problem.reason);
    this.problem = problem;
  }
}

interface State {
  limits: SignedContentLimits;
  contents: SignedContent[];
  signedData: number;
  bytes: number;
  parts: number;
  headers: HeaderBudget;
}

/** Takes out the contents of every SignedData in a message (header and body, CRLF or bare LF). Never throws. */
export function signedContentsOf(
  message: Buffer,
  limits: SignedContentLimits = DEFAULT_SIGNED_CONTENT_LIMITS,
): SignedContents {
  const state: State = {
    limits,
    contents: [],
    signedData: 0,
    bytes: 0,
    parts: 0,
    headers: headerBudget(limits.maxHeaderLines),
  };
  try {
    walkEntity(entityWithin(bareLfToCrlf(message), '/', state), 0, state);
    return { contents: state.contents };
  } catch (error) {
    if (!(error instanceof Unopened)) throw error;
    return { contents: state.contents, problem: error.problem };
  }
}

/**
 * The entity at `path`, its header block read within the walk's budget of header lines. Beyond it nothing is looked
 * at (its Content-Type may declare CMS): a problem, never a partial all-clear.
 */
function entityWithin(bytes: Buffer, path: string, state: State): Entity {
  try {
    return entityOf(bytes, path, state.headers);
  } catch (error) {
    if (error instanceof HeaderBudgetError) throw unopened('header-too-large', path, error.message);
    throw error;
  }
}

function unopened(kind: SignedContentProblemKind, path: string, reason: string): Unopened {
  return new Unopened({ kind, path, reason });
}

/** Declared as CMS: a pkcs7 media type or a .p7m/.p7s name (what makes a mail client open it as such). */
function declaredCms(entity: Entity): boolean {
  const mediaType = entity.type.mediaType;
  return PKCS7_MIME_TYPES.has(mediaType) || SIGNATURE_TYPES.has(mediaType) || /\.p7[ms]$/i.test(entity.filename ?? '');
}

function walkEntity(entity: Entity, depth: number, state: State): void {
  // Beyond the budget nothing is looked at, so SignedData may stand there: a problem, never a partial all-clear.
  if (++state.parts > state.limits.maxParts) {
    throw unopened('too-many-parts', entity.path, `more than ${state.limits.maxParts} MIME parts`);
  }
  const mediaType = entity.type.mediaType;
  if (depth > state.limits.maxDepth) {
    if (declaredCms(entity) || mayCarrySignedData([entity.body])) {
      throw unopened('too-deep', entity.path, `nested deeper than ${state.limits.maxDepth} levels`);
    }
    return;
  }
  if (mediaType.startsWith('multipart/')) {
    let parts: Buffer[];
    try {
      // Split no further than the budget: one part beyond it is enough to know (its walk ends in the problem).
      const partsLeft = Math.max(0, state.limits.maxParts - state.parts);
      parts = multipartParts(entity.body, entity.type.parameters.boundary ?? '', partsLeft);
    } catch (error) {
      // A mail client may still show the parts of a multipart we cannot split (one without its closing delimiter).
      if (mayCarrySignedData([entity.body])) {
        throw unopened('malformed', entity.path, `multipart not readable: ${(error as Error).message}`);
      }
      return;
    }
    for (const [index, part] of parts.entries()) {
      walkEntity(entityWithin(part, childPath(entity.path, index + 1), state), depth + 1, state);
    }
    return;
  }
  if (mediaType === 'message/rfc822' || mediaType === 'message/global') {
    // Decoded: RFC 2046 allows no base64 here, but lenient clients show such an attached message all the same.
    walkEntity(
      entityWithin(bareLfToCrlf(decodedBody(entity)), childPath(entity.path, 'message'), state),
      depth + 1,
      state,
    );
    return;
  }
  const bytes = decodedBody(entity);
  if (!declaredCms(entity) && !startsLikeSignedData(bytes)) return;
  // S/MIME opaque signing carries a MIME entity (smime.p7m); a .p7m named after a document carries that document.
  const carriesMime =
    PKCS7_MIME_TYPES.has(mediaType) && (entity.filename === undefined || /^smime\.p7m$/i.test(entity.filename));
  openCms(bytes, entity.path, depth, carriesMime, state, isDetachedSignature(entity));
}

/**
 * A detached signature (application/pkcs7-signature, a .p7s): it signs content beside it, which clamd sees as it
 * is, and mail clients show nothing of its own. One our strict reader cannot read is no reason to stop the message
 * (every signed mail of an unusual client would be quarantined); one it can read is still looked inside.
 */
function isDetachedSignature(entity: Entity): boolean {
  return SIGNATURE_TYPES.has(entity.type.mediaType) || /\.p7s$/i.test(entity.filename ?? '');
}

/** Reads one CMS blob; takes out a SignedData's content and looks at that again. */
function openCms(
  bytes: Buffer,
  path: string,
  depth: number,
  carriesMime: boolean,
  state: State,
  detachedSignature = false,
): void {
  if (++state.signedData > state.limits.maxSignedData) {
    throw unopened('too-many', path, `more than ${state.limits.maxSignedData} CMS objects`);
  }
  let parsed: ReturnType<typeof parseContentInfo>;
  try {
    parsed = parseContentInfo(bytes);
  } catch (error) {
    if (detachedSignature) return;
    throw unopened('malformed', path, (error as Error).message);
  }
  // Encrypted CMS is opened (or not) by the encrypt stage before scan; other content types hold nothing shown.
  if (parsed.kind !== 'signed-data' || !parsed.signedData.eContent) return;
  const content = contentBytes(parsed.signedData.eContent);
  state.bytes += content.length;
  if (state.bytes > state.limits.maxBytes) {
    throw unopened('too-large', path, `more than ${state.limits.maxBytes} bytes inside SignedData`);
  }
  const contentPath = childPath(path, 'content');
  // A MIME entity is scanned as mail whatever the name said (an x.eml.p7m carries one too): clamd decodes its parts
  // only then.
  const mime = carriesMime || startsLikeHeader(content);
  state.contents.push({ path: contentPath, bytes: content, mime });
  if (depth + 1 > state.limits.maxDepth) {
    if (startsLikeSignedData(content) || mayCarrySignedData([content])) {
      throw unopened('too-deep', contentPath, `nested deeper than ${state.limits.maxDepth} levels`);
    }
    return;
  }
  if (startsLikeSignedData(content)) {
    openCms(content, contentPath, depth + 1, false, state);
    return;
  }
  // A document that is no MIME entity is walked as one too when it shows a hint (an .eml signed as a .p7m).
  if (carriesMime || mayCarrySignedData([content])) {
    let inner: Entity;
    try {
      inner = entityWithin(carriesMime ? bareLfToCrlf(content) : content, contentPath, state);
    } catch (error) {
      // A document that does not start like a header (a PDF: /adbe.pkcs7.detached is a hint) is opened as mail by
      // no reader; its "header block" is its own bytes up to a blank line, and one beyond the budget is no finding.
      if (!mime && error instanceof Unopened && error.problem.kind === 'header-too-large') return;
      throw error;
    }
    walkEntity(inner, depth + 1, state);
  }
}

/** Whether bytes start with a header field line (a name of printable characters, then a colon). */
function startsLikeHeader(bytes: Buffer): boolean {
  return /^[!-9;-~]+[ \t]*:/.test(bytes.subarray(0, 200).toString('latin1'));
}
