// RFC 2047 encoded-words: non-ASCII text in header fields. Written here rather than taken from libmime or nodemailer
// (whose encoders fill words differently and join them with a space instead of folding): the outer headers of
// encrypted mail must stay byte for byte what they were. Generated mail is encoded by nodemailer's MimeNode itself.

// 45 bytes of UTF-8 become 60 base64 characters, plus 12 for =?UTF-8?B??= : within the limit of 75 (RFC 2047 §2).
const WORD_BYTES = 45;

/** Text as UTF-8 B encoded-words of at most 75 characters, split on character boundaries, folded with CRLF SP. */
export function encodeWords(text: string): string {
  const words: string[] = [];
  let current = '';
  for (const char of text) {
    if (Buffer.byteLength(current + char) > WORD_BYTES) {
      words.push(current);
      current = '';
    }
    current += char;
  }
  if (current) words.push(current);
  return words.map((word) => `=?UTF-8?B?${Buffer.from(word).toString('base64')}?=`).join('\r\n ');
}

const ENCODED_WORD = /=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g;

/**
 * Decodes RFC 2047 encoded-words (B and Q) in any charset TextDecoder knows (else as Latin-1); whitespace between two
 * encoded-words disappears (§6.2).
 */
export function decodeEncodedWords(value: string): string {
  const joined = value.replace(/(\?=)\s+(?==\?)/g, '$1');
  return joined.replace(ENCODED_WORD, (_match, charset: string, encoding: string, text: string) => {
    const bytes =
      encoding.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64')
        : Buffer.from(
            text
              .replace(/_/g, ' ')
              .replace(/=([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))),
            'latin1',
          );
    try {
      // RFC 2231 §5: a language may follow the charset after '*'.
      return new TextDecoder(charset.replace(/\*.*$/, '')).decode(bytes);
    } catch {
      return bytes.toString('latin1');
    }
  });
}
