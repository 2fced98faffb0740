// The encrypt stage's work on one envelope: outbound mail is encrypted per recipient (or handed to the portal),
// inbound mail is decrypted for the agency. Anything that fails in between retries: never plaintext outside.
import { readingOnce } from '@smgw/blob-store';
import { PgpError, SmimeError } from '@smgw/crypto';
import { type Envelope, SAFE_OUTBOUND_CRYPTO_STATUSES } from '@smgw/envelope';
import { HeaderBlockError } from '@smgw/mime';
import { type Handler, type HandlerContext, type Outcome, reject, retry } from '@smgw/mq';
import { decryptInbound, type InboundDeps } from './decrypt-inbound.ts';
import { encryptOutbound, type OutboundDeps } from './encrypt-outbound.ts';

export type EncryptDeps = OutboundDeps & InboundDeps;

/** Outbound messages up to this size are read once per envelope (readingOnce); larger ones are streamed each time. */
const READ_ONCE_MAX_BYTES = 1024 * 1024;

export function createEncryptHandler(deps: EncryptDeps): Handler {
  return (envelope, context) => encryptEnvelope(deps, envelope, context);
}

export async function encryptEnvelope(
  deps: EncryptDeps,
  envelope: Envelope,
  context: HandlerContext,
): Promise<Outcome> {
  try {
    if (envelope.direction === 'outbound') {
      // Read for its header, then again for each copy: a small message is read (and decrypted) once.
      const blobStore = readingOnce(deps.blobStore, envelope.blob, READ_ONCE_MAX_BYTES);
      return await encryptOutbound({ ...deps, blobStore }, envelope, context);
    }
    if (envelope.direction === 'inbound') return await decryptInbound(deps, envelope, context);
  } catch (err) {
    // Database, blob store, revocation fetch, or a crypto failure we did not expect: the envelope waits and tries
    // again; after the last attempt it is parked with this reason, never sent on unencrypted.
    if (err instanceof HeaderBlockError) return reject('ENCRYPT_HEADER_TOO_LARGE', err.message); // retrying cannot shorten it
    if (isOuterHeaderRefused(err)) {
      // A value of the message's own header cannot stand outside the encryption: the same bytes fail the same way.
      context.log.warn({ code: 'ENCRYPT_HEADER_INVALID', err }, 'outer header refused; parked, not retried');
      return reject('ENCRYPT_HEADER_INVALID', `${err.code}: ${err.message}`);
    }
    const code = (err as { code?: unknown }).code;
    const stable = typeof code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(code) ? code : 'ENCRYPT_FAILED';
    context.log.warn({ code: stable, err, attempt: context.attempt }, 'not processed; will retry');
    return retry(stable, (err as Error).message);
  }
  return reject(
    'ENCRYPT_UNEXPECTED_DIRECTION',
    `${envelope.direction} mail has no encrypt step (safe outbound statuses: ${SAFE_OUTBOUND_CRYPTO_STATUSES.join(', ')})`,
  );
}

/** An outer header value the encryptor refuses (CR/LF, non-ASCII where it cannot stand): a fault of the message. */
function isOuterHeaderRefused(err: unknown): err is PgpError | SmimeError {
  return (
    (err instanceof PgpError && err.code === 'PGP_INVALID_HEADER') ||
    (err instanceof SmimeError && err.code === 'SMIME_INVALID_HEADER')
  );
}
