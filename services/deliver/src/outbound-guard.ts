// Fail closed (ARCHITECTURE.md rule 4): nothing leaves the closed network in clear. Runs before anything else:
// first on what the envelope says (direction, recipients, the crypto verdict), then on the bytes that would be sent,
// with the same predicate the encrypt stage uses for mail that arrives already encrypted: a verdict written
// earlier is not proof, the message itself must be one complete encrypted structure.
import type { Readable } from 'node:stream';
import { inDomains, isPlainAddress } from '@smgw/config';
import { checkWholeMessageEncrypted } from '@smgw/crypto';
import { type Envelope, leavesClosedNetwork, SAFE_OUTBOUND_CRYPTO_STATUSES } from '@smgw/envelope';

export interface GuardRefusal {
  code: 'OUTBOUND_NOT_ENCRYPTED' | 'PLAINTEXT_TO_OUTSIDE';
  reason: string;
}

/** Directions whose content is meant for the agencies only; the gateway's own mail (generated) may go anywhere. */
const AGENCY_ONLY_DIRECTIONS: readonly string[] = ['inbound', 'internal', 'portal'];

/** Why this envelope must not be sent at all, or undefined when it may go. */
export function checkOutboundGuard(envelope: Envelope, internalDomains: string[]): GuardRefusal | undefined {
  if (leavesClosedNetwork(envelope)) {
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
