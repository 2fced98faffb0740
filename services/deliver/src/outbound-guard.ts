// Fail closed (ARCHITECTURE.md rule 4): nothing leaves the closed network in clear. Runs before anything else:
// first on what the envelope says (direction, recipients, the crypto verdict), then on the bytes that would be sent,
// with the same predicate the encrypt stage uses for mail that arrives already encrypted: a verdict written
// earlier is not proof, the message itself must be one complete encrypted structure.
import type { Readable } from 'node:stream';
import { inDomains, isPlainAddress } from '@smgw/config';
import { checkWholeMessageEncrypted } from '@smgw/crypto';
import {
  type Envelope,
  leavesClosedNetwork,
  type NotEncryptableCode,
  notEncryptableCode,
  SAFE_OUTBOUND_CRYPTO_STATUSES,
} from '@smgw/envelope';
import type { RefusedRecipient } from './route-recipients.ts';

export interface GuardRefusal {
  code: 'OUTBOUND_NOT_ENCRYPTED' | 'PLAINTEXT_TO_OUTSIDE' | NotEncryptableCode;
  reason: string;
  /**
   * The message itself can never be sent (encrypt gave it up): instead of the envelope parking, every recipient is
   * bounced this way, without sending, and the sender gets a DSN as for any bounce. Absent: the envelope parks.
   */
  bounceAs?: RefusedRecipient;
}

/** What deliver answers, per recipient, for outbound mail encrypt gave up (the trace's reason, the Diagnostic-Code). */
const NOT_ENCRYPTABLE_ERRORS: Record<NotEncryptableCode, string> = {
  ENCRYPT_HEADER_INVALID: 'ENCRYPT_HEADER_INVALID: the header cannot stand outside the encryption; not sent',
  ENCRYPT_HEADER_TOO_LARGE: 'ENCRYPT_HEADER_TOO_LARGE: the header block is over 1 MiB; not sent',
};

/** Directions whose content is meant for the agencies only; the gateway's own mail (generated) may go anywhere. */
const AGENCY_ONLY_DIRECTIONS: readonly string[] = ['inbound', 'internal', 'portal'];

/** Why this envelope must not be sent at all, or undefined when it may go. */
export function checkOutboundGuard(envelope: Envelope, internalDomains: string[]): GuardRefusal | undefined {
  if (leavesClosedNetwork(envelope)) {
    // Encrypt gave it up for its own header, which no attempt can change: its sender is told now, not after a park.
    const givenUp = notEncryptableCode(envelope.verdicts.crypto);
    if (givenUp) {
      const error = NOT_ENCRYPTABLE_ERRORS[givenUp];
      return {
        code: givenUp,
        reason: `encrypt gave the message up (${envelope.verdicts.crypto?.detail ?? givenUp}); its recipients bounced`,
        bounceAs: { kind: 'refused', key: 'refused:not-encryptable', errorCode: givenUp, error },
      };
    }
    const status = envelope.verdicts.crypto?.status;
    if (status === undefined || !SAFE_OUTBOUND_CRYPTO_STATUSES.includes(status)) {
      return {
        code: 'OUTBOUND_NOT_ENCRYPTED',
        reason: `outbound message has crypto verdict ${status ?? 'none'}; only ${SAFE_OUTBOUND_CRYPTO_STATUSES.join(', ')} may leave`,
      };
    }
    return undefined;
  }
  if (AGENCY_ONLY_DIRECTIONS.includes(envelope.direction)) {
    // Judged on the address that would be sent: one that is not one plain address (`<x@outside>@agency`,
    // `x@outside, y@agency`) is not known to be inside, whatever text follows its last `@`.
    const outside = envelope.recipients.filter((r) => !isPlainAddress(r) || !inDomains(r, internalDomains));
    if (outside.length > 0) {
      return {
        code: 'PLAINTEXT_TO_OUTSIDE',
        reason: `${envelope.direction} message (not encrypted) addressed outside the agency domains or not to one plain address: ${outside.map((r) => JSON.stringify(r)).join(', ')}`,
      };
    }
  }
  return undefined;
}

/** For mail that leaves the closed network: why its bytes may not go, or undefined when they are wholly encrypted. */
export async function checkOutboundBytes(envelope: Envelope, open: () => Readable): Promise<GuardRefusal | undefined> {
  if (!leavesClosedNetwork(envelope)) return undefined;
  const check = await checkWholeMessageEncrypted(open());
  if (check.encrypted) return undefined;
  return { code: 'OUTBOUND_NOT_ENCRYPTED', reason: `the message to be sent is not wholly encrypted: ${check.reason}` };
}
