// Inbound mail's Authentication-Results field (ingest's SPF, DKIM and DMARC verdict, `envelope.verdicts.auth.field`)
// goes on top of the message as deliver hands it on. Ingest cannot write it into the blob: the blob is stored while
// the DKIM verifier is still reading the body, and the field depends on the whole body. Carried in the envelope, it
// costs no second copy of the message; the field is checked here once more, so only a well-formed field in the
// envelope's own shape is ever sent.
import { Readable } from 'node:stream';
import type { Envelope } from '@smgw/envelope';

/** One field, folded with CRLF TAB, printable ASCII only, ending in CRLF (what ingest's mail-auth.ts writes). */
const FIELD = /^Authentication-Results: [\x20-\x7e]+(\r\n\t[\x20-\x7e]+)*\r\n$/;

/** The field to put in front of the message, or an empty buffer (no verdict, or one not in the expected form). */
export function authenticationResultsField(envelope: Envelope): Buffer {
  const field = envelope.verdicts.auth?.field;
  return typeof field === 'string' && FIELD.test(field) ? Buffer.from(field, 'latin1') : Buffer.alloc(0);
}

/**
 * `raw` with `prefix` in front, still streamed; destroying the result destroys `raw`. The prefix goes out joined to
 * the first chunk: one write to the socket instead of two.
 */
export function withPrefix(prefix: Buffer, raw: Readable): Readable {
  if (prefix.length === 0) return raw;
  return Readable.from(
    (async function* () {
      let first = true;
      for await (const chunk of raw) {
        yield first ? Buffer.concat([prefix, chunk as Buffer]) : (chunk as Buffer);
        first = false;
      }
      if (first) yield prefix;
    })(),
    { objectMode: false },
  );
}
