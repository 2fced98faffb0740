// The little MIME the signature check needs beyond @smgw/mime's header block: read a Content-Type with its
// parameters, tell a signed S/MIME entity by it, and find the parts of a multipart body. Light on purpose (no CMS
// library): ingest reads Content-Types with it through inbound-crypto-work.ts.
import { SmimeError } from './errors.ts';

export interface ContentType {
  /** `type/subtype`, lower-case. */
  readonly mediaType: string;
  /** Parameter names lower-case, values as written (quotes removed). */
  readonly parameters: Readonly<Record<string, string>>;
}

const CRLF = Buffer.from('\r\n');

/**
 * Longest Content-Type value whose parameters are read: real ones (RFC 2231 continuations of a long file name
 * included) stay far below; a longer value has its media type and no parameters, as one whose parameters are garbage.
 */
export const MAX_CONTENT_TYPE_PARAMETERS_LENGTH = 8 * 1024;

export interface ContentTypeParameter {
  /** Lower-case. */
  readonly name: string;
  /** As written, quotes and quoting backslashes removed. */
  readonly value: string;
}

const SPACE = /\s/;
// `.` after a backslash in a quoted string: any character but a line terminator.
const LINE_TERMINATOR = /[\n\r\u2028\u2029]/;

function skipSpace(text: string, pos: number): number {
  while (pos < text.length && SPACE.test(text[pos] as string)) pos++;
  return pos;
}

/** End of the quoted string opening at `pos`, after its closing quote; -1 when it is not closed. */
function quotedStringEnd(text: string, pos: number): number {
  for (let i = pos + 1; i < text.length; i++) {
    const ch = text[i] as string;
    if (ch === '"') return i + 1;
    if (ch === '\\') {
      if (i + 1 >= text.length || LINE_TERMINATOR.test(text[i + 1] as string)) return -1;
      i++;
    }
  }
  return -1;
}

/**
 * The parameters of a Content-Type (or Content-Disposition) value in the order written, repeats included: every
 * `name = value` after the first `;`, text that is not one skipped. One pass, linear in the value's length; none
 * for a value longer than MAX_CONTENT_TYPE_PARAMETERS_LENGTH.
 */
export function contentTypeParameters(value: string): ContentTypeParameter[] {
  const semicolon = value.indexOf(';');
  if (semicolon === -1 || value.length > MAX_CONTENT_TYPE_PARAMETERS_LENGTH) return [];
  const text = value.slice(semicolon + 1);
  const parameters: ContentTypeParameter[] = [];
  let pos = 0;
  while (pos < text.length) {
    const nameStart = skipSpace(text, pos);
    let nameEnd = nameStart;
    while (nameEnd < text.length && !/[=;\s]/.test(text[nameEnd] as string)) nameEnd++;
    if (nameEnd === nameStart) {
      pos = nameStart + 1; // `=`, `;` or the end: no name starts here
      continue;
    }
    const equals = skipSpace(text, nameEnd);
    if (text[equals] !== '=') {
      pos = equals;
      continue;
    }
    const valueStart = skipSpace(text, equals + 1);
    const quotedEnd = text[valueStart] === '"' ? quotedStringEnd(text, valueStart) : -1;
    let valueEnd = quotedEnd;
    if (valueEnd === -1) {
      valueEnd = valueStart;
      while (valueEnd < text.length && !/[;\s]/.test(text[valueEnd] as string)) valueEnd++;
    }
    const raw = text.slice(valueStart, valueEnd);
    parameters.push({
      name: text.slice(nameStart, nameEnd).toLowerCase(),
      value: raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw,
    });
    pos = valueEnd;
  }
  return parameters;
}

/** RFC 2045 Content-Type from the field's value; text/plain when the field is missing. A repeated parameter: the last. */
export function parseContentType(value = 'text/plain'): ContentType {
  const semicolon = value.indexOf(';');
  const mediaType = (semicolon === -1 ? value : value.slice(0, semicolon)).trim().toLowerCase();
  const parameters: Record<string, string> = {};
  for (const parameter of contentTypeParameters(value)) parameters[parameter.name] = parameter.value;
  return { mediaType, parameters };
}

/** Whether a Content-Type announces a signed S/MIME entity (cheap check before reading a message whole). */
export function isSignedContentType(contentType: string): boolean {
  const type = parseContentType(contentType);
  if (type.mediaType === 'multipart/signed') return true;
  const smimeType = (type.parameters['smime-type'] ?? '').toLowerCase();
  return (
    (type.mediaType === 'application/pkcs7-mime' || type.mediaType === 'application/x-pkcs7-mime') &&
    smimeType === 'signed-data'
  );
}

/**
 * The body parts of a multipart body (RFC 2046 §5.1.1), each exactly as it stands between its delimiter line and
 * the CRLF that belongs to the next delimiter. The body must already be CRLF-canonical.
 *
 * With `maxParts`, the search for delimiters stops once one part more than that is delimited: a caller that gets
 * `maxParts + 1` parts knows there are more (the rest, and whether the body is closed at all, are not looked at).
 * Splitting a body of a million tiny parts took 0.7 s of CPU in one synchronous call; a walk with a budget of parts
 * needs none of that beyond its budget.
 */
export function multipartParts(body: Buffer, boundary: string, maxParts = Number.POSITIVE_INFINITY): Buffer[] {
  if (boundary.length === 0 || boundary.length > 70) {
    throw new SmimeError('SMIME_MALFORMED', 'multipart boundary missing or longer than 70 characters');
  }
  const dashBoundary = Buffer.from(`--${boundary}`, 'latin1');
  // Delimiters start a line: at the very beginning or after CRLF.
  const starts: number[] = [];
  let closed = false;
  for (let i = body.indexOf(dashBoundary); i !== -1; i = body.indexOf(dashBoundary, i + 1)) {
    if (i !== 0 && !(body[i - 2] === 0x0d && body[i - 1] === 0x0a)) continue;
    const after = i + dashBoundary.length;
    const isClose = body[after] === 0x2d && body[after + 1] === 0x2d;
    // What follows the boundary on its line may only be linear white space (RFC 2046 transport padding).
    const lineEnd = body.indexOf(CRLF, after);
    const tail = body.subarray(after + (isClose ? 2 : 0), lineEnd === -1 ? body.length : lineEnd).toString('latin1');
    if (!/^[ \t]*$/.test(tail)) continue;
    starts.push(i);
    if (isClose) {
      closed = true;
      break;
    }
    if (starts.length > maxParts + 1) break;
  }
  const beyondMax = starts.length > maxParts + 1;
  if ((!closed && !beyondMax) || starts.length < 2) {
    throw new SmimeError('SMIME_MALFORMED', 'multipart body without its parts');
  }
  const parts: Buffer[] = [];
  for (let k = 0; k + 1 < starts.length; k++) {
    const lineEnd = body.indexOf(CRLF, starts[k] as number);
    const partStart = lineEnd + 2;
    const partEnd = (starts[k + 1] as number) - 2; // the CRLF before the next delimiter belongs to it
    if (lineEnd === -1 || partEnd < partStart) throw new SmimeError('SMIME_MALFORMED', 'empty or truncated body part');
    parts.push(body.subarray(partStart, partEnd));
  }
  return parts;
}
