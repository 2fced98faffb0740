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

/** RFC 2045 Content-Type from the field's value; text/plain when the field is missing. */
export function parseContentType(value = 'text/plain'): ContentType {
  const semicolon = value.indexOf(';');
  const mediaType = (semicolon === -1 ? value : value.slice(0, semicolon)).trim().toLowerCase();
  const parameters: Record<string, string> = {};
  const rest = semicolon === -1 ? '' : value.slice(semicolon + 1);
  for (const match of rest.matchAll(/\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)\s*;?/g)) {
    const name = (match[1] as string).toLowerCase();
    const raw = match[2] as string;
    parameters[name] = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
  }
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
 */
export function multipartParts(body: Buffer, boundary: string): Buffer[] {
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
  }
  if (!closed || starts.length < 2) throw new SmimeError('SMIME_MALFORMED', 'multipart body without its parts');
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
