// Header text (a decoded Subject, a display name, a file name) made fit to stand on one line: shown in the portal, or
// written again into a header field (encrypt's PGP/MIME Subject), where a line break would end the field.

// C0 and C1 controls (a tab or newline becomes a space first), DEL, bidi embeddings, overrides and isolates, the
// marks LRM/RLM/ALM, zero-width joiners and spaces, the BOM, line and paragraph separators, interlinear annotations.
// biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/g;

/**
 * Text fit to be shown on one line: NFC, no controls or bidi formatting, white space collapsed, at most `max` chars
 * (all of it when no `max` is given).
 */
export function displayText(value: string, max = Number.POSITIVE_INFINITY): string {
  const cleaned = value
    .normalize('NFC')
    .replace(/[\t\r\n]/g, ' ')
    .replace(INVISIBLE, '')
    .replace(/\s+/g, ' ')
    .trim();
  const chars = [...cleaned];
  return chars.length <= max ? cleaned : `${chars.slice(0, max - 1).join('')}…`;
}
