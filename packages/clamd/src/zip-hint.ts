// Whether a message may carry a zip archive, told from its raw bytes as they go by: the cheap test that decides which
// messages the scan stage takes apart to check their zip members against clamd's MaxFileSize (clamd answers OK for a
// zip member it skipped over that limit, even with AlertExceedsMax: ClamAV issue 633). It errs towards yes: a hint
// costs a MIME walk, a miss lets a member that clamd never looked at pass. Office documents (.docx, .xlsx, .odt) are
// zips too, so many messages hint. Free of imports on purpose: ingest loads it to leave such messages to scan.

/**
 * The signatures of a zip's local header (PK 3 4), central directory header (PK 1 2) and end record (PK 5 6): in
 * binary; quoted-printable (each byte as it is or =XX); or in base64 at each of the three alignments, matched after
 * everything outside the base64 alphabet is dropped (decoders skip line breaks, blanks and other characters between
 * the letters, so a sender may split a signature with them). Only the letters a signature fixes are matched.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the signatures' bytes are what is looked for
const ZIP_BINARY = /PK[\x01\x03\x05][\x02\x04\x06]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: quoted-printable may leave these bytes as they are
const ZIP_QUOTED_PRINTABLE = /(?:P|=50)(?:K|=4B)(?:[\x01\x03\x05]|=0[135])(?:[\x02\x04\x06]|=0[246])/i;
const ZIP_BASE64 = /UEsDB|BLAw|QSwME|UEsBA|BLAQ|QSwEC|UEsFB|BLBQ|QSwUG/;
const BASE64_WORD = /base64/i;
const QUOTED_PRINTABLE_WORD = /quoted-printable/i;
/** The bytes of the base64 alphabet (1), the rest (0). */
const IN_BASE64 = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') IN_BASE64[c.charCodeAt(0)] = 1;
/** A quoted-printable soft line break, which decoders remove wherever it stands. */
const SOFT_BREAK = /=\r?\n/g;

/** Characters of one chunk's text carried into the next, so that a signature cut by a chunk boundary is still found. */
const OVERLAP = 64;

export interface ZipHint {
  /** Looks at the next bytes of the message. */
  push(chunk: Uint8Array): void;
  /** True once any bytes pushed so far hinted at a zip. */
  readonly seen: boolean;
}

/** A hint that looks at a message chunk by chunk, in order (memory: one chunk and a little of the last). */
export function zipHint(): ZipHint {
  let raw = '';
  let letters = '';
  let seen = false;
  // Base64 and quoted-printable are decoded only in a part whose Content-Transfer-Encoding says so, and that header
  // comes before its body: until the word is seen, a message's text is not run through that (costlier) test. The
  // word is a token, matched in any case, also where a fold or a comment stands around it.
  let base64Declared = false;
  let quotedPrintableDeclared = false;
  return {
    push(chunk) {
      if (seen || chunk.byteLength === 0) return;
      const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      const text = raw + bytes.toString('latin1');
      base64Declared ||= BASE64_WORD.test(text);
      quotedPrintableDeclared ||= QUOTED_PRINTABLE_WORD.test(text);
      const base64 = base64Declared ? letters + base64Letters(bytes) : '';
      seen =
        ZIP_BINARY.test(text) ||
        (quotedPrintableDeclared && ZIP_QUOTED_PRINTABLE.test(text.replace(SOFT_BREAK, ''))) ||
        ZIP_BASE64.test(base64);
      raw = text.slice(-OVERLAP);
      letters = base64.slice(-OVERLAP);
    },
    get seen() {
      return seen;
    },
  };
}

/**
 * The bytes of `chunk` in the base64 alphabet, as text. A loop over a lookup table: a regular expression's replace
 * took four times as long, and this runs over every byte of every message ingest scans itself.
 */
function base64Letters(chunk: Buffer): string {
  const letters = Buffer.allocUnsafe(chunk.length);
  let kept = 0;
  for (let at = 0; at < chunk.length; at++) {
    const byte = chunk[at] as number;
    if (IN_BASE64[byte] === 1) letters[kept++] = byte;
  }
  return letters.toString('latin1', 0, kept);
}

/** Whether a message (its chunks in order) may carry a zip. */
export function mayCarryZip(chunks: Iterable<Uint8Array>): boolean {
  const hint = zipHint();
  for (const chunk of chunks) {
    hint.push(chunk);
    if (hint.seen) return true;
  }
  return false;
}
