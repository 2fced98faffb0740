// Who the message says it is from, against whom the certificates say signed it. Every From field and every address
// in it, and Sender, must be held by a signer's certificate; only the addr-spec counts as the address, and an address
// that a display name or comment shows must be a signer's too (a reader takes it for the sender). Several From fields,
// none, or one without an address are a mismatch. Signing times after the Date header or in the future are flagged.
import { addressLikeTokens, type HeaderField, listedAddresses } from '@smgw/mime';
import type { ReportedSignature } from './mime-walk.ts';

export interface IdentityCheck {
  /** `not-applicable` when no signature names a signer without being TOTAL_FAILED. */
  status: 'match' | 'mismatch' | 'not-applicable';
  fromAddresses: string[];
  senderAddresses: string[];
  /** Addresses held by the certificates of signatures that were not found forged (TOTAL_FAILED). */
  signerAddresses: string[];
  /** Why it is a mismatch, one sentence each (English). */
  problems: string[];
}

/** RFC 5280 §7.5: the local part exactly, the domain case-insensitively. */
export function sameAddress(a: string, b: string): boolean {
  const atA = a.lastIndexOf('@');
  const atB = b.lastIndexOf('@');
  if (atA <= 0 || atB <= 0) return false;
  return a.slice(0, atA) === b.slice(0, atB) && a.slice(atA + 1).toLowerCase() === b.slice(atB + 1).toLowerCase();
}

export function checkIdentity(fields: readonly HeaderField[], signatures: readonly ReportedSignature[]): IdentityCheck {
  const signerAddresses = [
    ...new Set(
      signatures.filter((s) => s.indication !== 'TOTAL_FAILED').flatMap((s) => s.signer?.emailAddresses ?? []),
    ),
  ];
  const fromFields = fields.filter((f) => f.key === 'from');
  const senderFields = fields.filter((f) => f.key === 'sender');
  const fromListed = fromFields.map((f) => ({ value: f.value, addresses: listedAddresses(f.value) }));
  const fromAddresses = fromListed.flatMap((f) => f.addresses);
  const senderAddresses = senderFields.flatMap((f) => listedAddresses(f.value));
  // A signer whose signature is forged or broken proves nothing about who wrote the message.
  const hasSigner = signatures.some((s) => s.signer !== undefined && s.indication !== 'TOTAL_FAILED');
  if (!hasSigner) {
    return { status: 'not-applicable', fromAddresses, senderAddresses, signerAddresses, problems: [] };
  }
  const held = (address: string) => signerAddresses.some((signerAddress) => sameAddress(signerAddress, address));
  const problems: string[] = [];
  if (fromFields.length === 0) problems.push('The message has no From field.');
  if (fromFields.length > 1) problems.push(`The message has ${fromFields.length} From fields.`);
  if (fromFields.length > 0 && fromAddresses.filter((a) => a !== '').length === 0) {
    problems.push('The From field holds no address.');
  }
  for (const address of fromAddresses) {
    if (address === '') problems.push('A From entry has a name but no address.');
    else if (!held(address)) problems.push(`The From address ${address} is not in any signer’s certificate.`);
  }
  for (const field of fromListed) {
    const listed = field.addresses;
    for (const token of addressLikeTokens(field.value)) {
      if (listed.some((a) => sameAddress(a, token)) || held(token)) continue;
      problems.push(`The From field shows ${token} in a display name or comment, which is not a signer’s address.`);
    }
  }
  if (senderFields.length > 1) problems.push(`The message has ${senderFields.length} Sender fields.`);
  for (const address of senderAddresses) {
    if (address !== '' && !held(address)) {
      problems.push(`The Sender address ${address} is not in any signer’s certificate.`);
    }
  }
  return {
    status: problems.length > 0 ? 'mismatch' : 'match',
    fromAddresses,
    senderAddresses,
    signerAddresses,
    problems,
  };
}

export interface TimeFinding {
  signatureId: string;
  kind: 'AFTER_DATE_HEADER' | 'IN_FUTURE';
  detail: string;
}

/** Claimed signing times later than the Date header or than now (each with a tolerance for clock skew). */
export function checkSigningTimes(
  fields: readonly HeaderField[],
  signatures: readonly ReportedSignature[],
  now: Date,
  toleranceMs: number,
): TimeFinding[] {
  const dateValue = fields.find((f) => f.key === 'date')?.value;
  const dateHeader = dateValue ? new Date(Date.parse(dateValue)) : undefined;
  const findings: TimeFinding[] = [];
  for (const signature of signatures) {
    const claimed = signature.claimedSigningTime;
    if (!claimed) continue;
    if (claimed.getTime() > now.getTime() + toleranceMs) {
      findings.push({
        signatureId: signature.id,
        kind: 'IN_FUTURE',
        detail: `The claimed signing time ${claimed.toISOString()} lies in the future (validation time ${now.toISOString()}).`,
      });
    }
    if (dateHeader && !Number.isNaN(dateHeader.getTime()) && claimed.getTime() > dateHeader.getTime() + toleranceMs) {
      findings.push({
        signatureId: signature.id,
        kind: 'AFTER_DATE_HEADER',
        detail: `The claimed signing time ${claimed.toISOString()} is after the message’s Date ${dateHeader.toISOString()}.`,
      });
    }
  }
  return findings;
}
