// The one door through which trusted-list XML is parsed: size-limited, UTF-8 only, no DTD at all (so no external
// entity can be fetched and no entity can be expanded), and any parser warning or error refuses the document.
import { DOMParser } from '@xmldom/xmldom';
import { TrustedListError } from './errors.ts';

/** Big enough for the largest national lists (DE ≈ 2 MB, the LOTL < 1 MB) with room to grow. */
export const DEFAULT_MAX_LIST_BYTES = 16 * 1024 * 1024;

export type XmlDocument = ReturnType<DOMParser['parseFromString']>;

/** Decodes and vets the bytes; returns the text the signature is checked over. */
export function decodeListText(bytes: Uint8Array, maxBytes = DEFAULT_MAX_LIST_BYTES): string {
  if (bytes.byteLength > maxBytes) {
    throw new TrustedListError(
      'TL_TOO_LARGE',
      `the list has ${bytes.byteLength} bytes, more than the limit of ${maxBytes}`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new TrustedListError('TL_NOT_XML', 'the list is not UTF-8');
  }
  const declared = /^<\?xml[^>]*\bencoding\s*=\s*["']([^"']+)["']/.exec(text)?.[1];
  if (declared !== undefined && !/^utf-?8$/i.test(declared)) {
    throw new TrustedListError(
      'TL_NOT_XML',
      `the list declares encoding ${JSON.stringify(declared)}; only UTF-8 is read`,
    );
  }
  // Refused before any parser sees them, wherever they stand (even inside a comment): no trusted list needs one.
  if (/<!DOCTYPE/i.test(text) || /<!ENTITY/i.test(text)) {
    throw new TrustedListError('TL_DTD_REFUSED', 'the list carries a DOCTYPE or ENTITY declaration, which is refused');
  }
  return text;
}

/** Parses vetted text; any warning or error from the parser refuses the document. */
export function parseXml(text: string): XmlDocument {
  const problems: string[] = [];
  let doc: XmlDocument | undefined;
  try {
    doc = new DOMParser({
      onError: (level, message) => {
        problems.push(`${level}: ${message}`);
      },
    }).parseFromString(text, 'text/xml');
  } catch (err) {
    // xmldom throws a ParseError on a fatal error (no root element, unclosed tags …)
    problems.push(`fatalError: ${(err as Error).message}`);
  }
  if (problems.length > 0 || !doc?.documentElement) {
    throw new TrustedListError('TL_NOT_XML', `the list is not well-formed XML (${problems[0] ?? 'no root element'})`);
  }
  return doc;
}
