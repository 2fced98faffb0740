// Who the message says it is from, against whom the certificates say signed it. Every From field and every address
// in it, and Sender, must be held by a signer's certificate; only the addr-spec counts as the address, and an address
// that a display name or comment shows must be a signer's too (a reader takes it for the sender). Several From fields,
// none, or one without an address are a mismatch. Signing times after the Date header or in the future are flagged.
import { addressLikeTokens, type HeaderField, listedAddresses } from '@smgw/mime';
import type { ReportedSignature, SignedHeader } from './mime-walk.ts';

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

export function checkIdentity(
  fields: readonly HeaderField[],
  signatures: readonly ReportedSignature[],
  signedHeaders: readonly SignedHeader[] = [],
): IdentityCheck {
  const signerAddresses = [
    ...new Set(
      signatures.filter((s) => s.indication !== 'TOTAL_FAILED').flatMap((s) => s.signer?.emailAddresses ?? []),
    ),
  ];
  const fromFields = fields.filter((f) => f.key === 'from');
  const senderFields = fields.filter((f) => f.key === 'sender');
  const fromAddresses = fromFields.flatMap((f) => listedAddresses(f.value));
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
  problems.push(...shownAddressProblems(fromFields, held, 'The From field'));
  if (senderFields.length > 1) problems.push(`The message has ${senderFields.length} Sender fields.`);
  for (const address of senderAddresses) {
    if (address !== '' && !held(address)) {
      problems.push(`The Sender address ${address} is not in any signer’s certificate.`);
    }
  }
  // A signed inner header (a wrapped message, protected headers) is what a reader may show as the sender: signed by
  // the signer, so a stranger can put anyone's address there under a valid signature of their own.
  for (const header of signedHeaders) {
    for (const key of ['from', 'sender']) {
      const name = key === 'from' ? 'From' : 'Sender';
      const signedFields = header.fields.filter((f) => f.key === key);
      if (signedFields.length > 1)
        problems.push(`The signed header at ${header.path} has ${signedFields.length} ${name} fields.`);
      for (const address of signedFields.flatMap((f) => listedAddresses(f.value))) {
        if (address === '') problems.push(`A ${name} entry of the signed header at ${header.path} has no address.`);
        else if (!held(address)) {
          problems.push(
            `The ${name} address ${address} of the signed header at ${header.path} is not in any signer’s certificate.`,
          );
        }
      }
      if (key === 'from') {
        problems.push(
          ...shownAddressProblems(signedFields, held, `The From field of the signed header at ${header.path}`),
        );
      }
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

/** Addresses a From field shows in a display name or comment (a reader takes them for the sender) not held by a signer. */
function shownAddressProblems(
  fromFields: readonly HeaderField[],
  held: (address: string) => boolean,
  what: string,
): string[] {
  const problems: string[] = [];
  for (const field of fromFields) {
    const listed = listedAddresses(field.value);
    for (const token of addressLikeTokens(field.value)) {
      if (listed.some((a) => sameAddress(a, token)) || held(token)) continue;
      problems.push(`${what} shows ${token} in a display name or comment, which is not a signer’s address.`);
    }
  }
  return problems;
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
