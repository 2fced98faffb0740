// Names and types an attachment is shown and downloaded with. The sender chose the filename: it may hold path
// separators, control characters, bidi overrides ("rechnung\u202Efdp.exe" reads as "rechnungexe.pdf"), quotes and
// line breaks for header injection, or be a kilobyte long. What leaves here is one harmless path segment.
import { displayText } from '@smgw/mime';

export const MAX_FILENAME_CHARS = 120;

// Windows refuses these as names, with any extension.
const RESERVED_NAME = /^(?:con|prn|aux|nul|com[0-9]|lpt[0-9])(?:\.|$)/i;

// Characters that show as blank but are no white space to a regex (Hangul fillers, the blank braille pattern): a run
// of them would push the real extension out of sight ("rechnung.pdf⠀⠀⠀…⠀.exe"), so they count as spaces.
const BLANK_LOOKALIKES = /[\u115f\u1160\u2800\u3164\uffa0]/g;

// Matched from the start of a run only: /[\s.]+$/ tried again from each character of a run that does not end the name
// (quadratic: the 10,000 characters displayText keeps took 65 ms, for each of a message's 500 parts).
const TRAILING_DOTS_AND_SPACES = /(?<![\s.])[\s.]+$/;

/** A filename safe to show and to save: no separators, controls, bidi formatting; not hidden; length-limited. */
export function safeFilename(name: string | undefined, fallback: string): string {
  let cleaned = displayText((name ?? '').replace(BLANK_LOOKALIKES, ' '), 10_000)
    .replace(/[/\\:*?"<>|]/g, '_')
    .replace(/^[\s.]+/, '')
    .replace(TRAILING_DOTS_AND_SPACES, '');
  if (RESERVED_NAME.test(cleaned)) cleaned = `_${cleaned}`;
  const chars = [...cleaned];
  if (chars.length > MAX_FILENAME_CHARS) {
    // Keep a short extension: it is what the reader's system opens the file with.
    const extension = /\.[\p{L}\p{N}]{1,10}$/u.exec(cleaned)?.[0] ?? '';
    cleaned =
      chars
        .slice(0, MAX_FILENAME_CHARS - [...extension].length)
        .join('')
        .replace(TRAILING_DOTS_AND_SPACES, '') + extension;
  }
  return cleaned || fallback;
}

/** An ASCII stand-in for clients that do not read filename* (RFC 6266 §4.3): letters without accents, else "_". */
export function asciiFilename(name: string): string {
  const ascii = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^\x20-\x7e]/g, '_')
    .replace(/["\\%;]/g, '_');
  return ascii.trim() || 'download';
}

// RFC 5987 attr-char: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
function encodeExtValue(value: string): string {
  return encodeURIComponent(value).replace(/['()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `attachment; filename="…"; filename*=UTF-8''…` for a name that went through safeFilename. */
export function attachmentDisposition(filename: string): string {
  return `attachment; filename="${asciiFilename(filename)}"; filename*=UTF-8''${encodeExtValue(filename)}`;
}

/**
 * The Content-Type a download is served with. Only types a browser shows passively keep theirs; everything it could
 * run or render as a document (HTML, XHTML, SVG, XML, JavaScript, CSS, PDF with its scripting viewer, text
 * whose charset it would guess, anything unknown) goes out as application/octet-stream. The download is `attachment` and sandboxed anyway; this is the
 * second lock.
 */
const PASSIVE_TYPES = new Set([
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'application/zip',
  'application/msword',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  'application/vnd.ms-excel',
  'application/vnd.oasis.opendocument.text',
  'application/vnd.oasis.opendocument.spreadsheet',
]);

export function downloadContentType(declared: string): string {
  const type = declared.trim().toLowerCase();
  return PASSIVE_TYPES.has(type) ? type : 'application/octet-stream';
}
