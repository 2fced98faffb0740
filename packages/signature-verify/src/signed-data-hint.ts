// Whether a message may carry a CMS SignedData, told from its raw bytes as they go by: the cheap test that decides
// which messages have the contents inside their SignedData taken out and scanned (signed-contents.ts). Most mail has
// none and must not pay for more than this one pass. It errs towards yes: a hint only costs a MIME walk, a miss would
// let signed content pass unscanned. Free of imports on purpose: ingest loads only this file
// (`@smgw/signature-verify/signed-data-hint`).

/**
 * What a message carrying SignedData shows in its raw bytes: a CMS media type, a .p7m/.p7s name, a name in an
 * encoding that may spell one (RFC 2231, or an RFC 2047 word anywhere in it: clients decode `"Bescheid=?…?="` too),
 * an attached message (its header may be base64: `message/rfc822` parts are walked decoded), in any case (as mail
 * clients read them); or the signedData OID
 * (1.2.840.113549.1.7.2) at the start of a CMS blob, in base64 at each of the three alignments it can have or in
 * binary, case for case. Two expressions, not one case-blind alternation of all: that one took three to five times
 * as long (about 0.3 ms per 100 KB of text, on every message ingest or scan sees).
 */
const CMS_NAMED = /pkcs7|\.p7[ms]|name\*|name\s*=\s*"?[^";]{0,300}=\?|message\/(?:rfc822|global)/i;
// biome-ignore lint/suspicious/noControlCharactersInRegex: the OID's DER bytes are what is looked for
const SIGNED_DATA_OID = /BgkqhkiG9w0BBw|YJKoZIhvcNAQcC|GCSqGSIb3DQEHA|\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02/;

/** Bytes of one chunk carried into the next, so that a hint cut by a chunk boundary is still found. */
const OVERLAP = 64;

/** The DER of the signedData OID, with its tag and length: what starts a SignedData's ContentInfo after its header. */
export const SIGNED_DATA_OID_DER = Buffer.from('06092a864886f70d010702', 'hex');

export interface SignedDataHint {
  /** Looks at the next bytes of the message. */
  push(chunk: Uint8Array): void;
  /** True once any bytes pushed so far hinted at SignedData. */
  readonly seen: boolean;
}

/** A hint that looks at a message chunk by chunk, in order (memory: one chunk and OVERLAP bytes). */
export function signedDataHint(): SignedDataHint {
  let tail = '';
  let seen = false;
  return {
    push(chunk) {
      if (seen || chunk.byteLength === 0) return;
      const text = tail + Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('latin1');
      seen = CMS_NAMED.test(text) || SIGNED_DATA_OID.test(text);
      tail = text.slice(-OVERLAP);
    },
    get seen() {
      return seen;
    },
  };
}

/** Whether a message (its chunks in order) may carry SignedData. */
export function mayCarrySignedData(chunks: Iterable<Uint8Array>): boolean {
  const hint = signedDataHint();
  for (const chunk of chunks) {
    hint.push(chunk);
    if (hint.seen) return true;
  }
  return false;
}

/** Whether decoded bytes start like a ContentInfo holding SignedData (a SEQUENCE whose first element is the OID). */
export function startsLikeSignedData(bytes: Buffer): boolean {
  if (bytes[0] !== 0x30) return false;
  // SEQUENCE header: 2 bytes (short or indefinite length) up to 6 (a four-byte length).
  const at = bytes.subarray(0, 6 + SIGNED_DATA_OID_DER.length).indexOf(SIGNED_DATA_OID_DER);
  return at >= 2 && at <= 6;
}
