// The encrypt stage's work on one envelope: outbound mail is encrypted per recipient (or handed to the portal),
// inbound mail is decrypted for the agency. Anything that fails in between retries: never plaintext outside. Only
// outbound mail whose own header can never be encrypted is given up at once: deliver bounces it with a DSN (the whole
// message here when no copy at all can be made; encrypt-outbound.ts gives up the copies of one form alone).
import { readingOnce } from '@smgw/blob-store';
import {
  advance,
  type Envelope,
  NOT_ENCRYPTABLE_STATUS,
  type NotEncryptableCode,
  rerouteAfterCurrent,
  SAFE_OUTBOUND_CRYPTO_STATUSES,
  withVerdict,
} from '@smgw/envelope';
import { type Handler, type HandlerContext, next, type Outcome, reject, retry } from '@smgw/mq';
import { recordEvent } from '@smgw/trace';
import { decryptInbound, type InboundDeps } from './decrypt-inbound.ts';
import { encryptOutbound, type OutboundDeps } from './encrypt-outbound.ts';
import { notEncryptableBy } from './not-encryptable.ts';

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
    // The message's own header: the same bytes fail the same way every time, so retrying cannot help. Outbound, its
    // sender is told now (giveUp); inbound (a header block over 1 MiB), the envelope is parked.
    const notEncryptable = notEncryptableBy(err);
    if (notEncryptable && envelope.direction === 'outbound') {
      return giveUp(deps, envelope, context, notEncryptable.code, notEncryptable.reason);
    }
    if (notEncryptable) return reject(notEncryptable.code, notEncryptable.reason);
    return retryAfter(err, context);
  }
  return reject(
    'ENCRYPT_UNEXPECTED_DIRECTION',
    `${envelope.direction} mail has no encrypt step (safe outbound statuses: ${SAFE_OUTBOUND_CRYPTO_STATUSES.join(', ')})`,
  );
}

/**
 * Database, blob store, revocation fetch, or a crypto failure we did not expect: the envelope waits and tries again;
 * after the last attempt it is parked with this reason, never sent on unencrypted.
 */
function retryAfter(err: unknown, context: HandlerContext): Outcome {
  const code = (err as { code?: unknown }).code;
  const stable = typeof code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(code) ? code : 'ENCRYPT_FAILED';
  context.log.warn({ code: stable, err, attempt: context.attempt }, 'not processed; will retry');
  return retry(stable, (err as Error).message);
}

/**
 * Gives the message up: on to deliver with the crypto verdict `not-encryptable`, where the outbound guard sends it
 * nowhere and bounces every recipient with a DSN to the sender (deliver's, as for any bounce). The envelope keeps
 * the message as the agency sent it, which that DSN quotes the header block of. The encryptor's own words go to the
 * trace (`message.not-encryptable`), not to the DSN.
 */
async function giveUp(
  deps: EncryptDeps,
  envelope: Envelope,
  context: HandlerContext,
  code: NotEncryptableCode,
  reason: string,
): Promise<Outcome> {
  const at = deps.now();
  try {
    await recordEvent(deps.pool, envelope.id, {
      stage: 'encrypt',
      event: 'message.not-encryptable',
      outcome: 'next',
      code,
      reason,
      at,
    });
  } catch (err) {
    return retryAfter(err, context);
  }
  context.log.warn({ code, reason }, 'the header cannot be encrypted: given up, to be bounced by deliver');
  const verdict = { status: NOT_ENCRYPTABLE_STATUS, code, detail: reason, at: at.toISOString() };
  return next(advance(withVerdict(rerouteAfterCurrent(envelope, ['deliver']), 'crypto', verdict), 'encrypt'));
}
