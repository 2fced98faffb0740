// Per outbound recipient, the form its copy takes, from its looked-up keys (outbound-keys.ts): a current certificate
// that validates now → S/MIME; else an approved OpenPGP key without problems → OpenPGP; else the portal. Every refusal
// carries its reason for the trace.
import type { StoredCapabilities } from '@smgw/key-directory';
import type { RecipientKeys } from './outbound-keys.ts';

export type RecipientChoice =
  | {
      form: 'smime';
      recipient: string;
      fingerprint: string;
      certificate: Buffer;
      keyType: 'rsa' | 'ec';
      /** What the holder announced in signed mail (null: nothing harvested): decides OAEP and GCM. */
      capabilities: StoredCapabilities | null;
    }
  | { form: 'pgp'; recipient: string; fingerprint: string; armored: string }
  | { form: 'portal'; recipient: string; code: PortalReasonCode; why: string };

/** Why a recipient goes to the portal (the first reason found). */
export type PortalReasonCode =
  /** neither a certificate nor an OpenPGP key for the address */
  | 'ENCRYPT_NO_KEY'
  /** certificates exist, none validates now (the why names the validation code) */
  | 'ENCRYPT_CERTIFICATE_INVALID'
  /** an OpenPGP key exists but no operator has approved it */
  | 'ENCRYPT_PGP_KEY_PENDING'
  /** the approved OpenPGP key is expired, revoked, weak or has no encryption key */
  | 'ENCRYPT_PGP_KEY_UNUSABLE'
  /** an earlier handling of this message handed the recipient to the portal (a redelivery keeps that way) */
  | 'ENCRYPT_PORTAL_EARLIER';

/** How an earlier handling of the message sent a recipient on: to the portal, or encrypted to deliver. */
export type EarlierRoute = 'portal' | 'encrypted';

/**
 * An earlier handling sent the recipient on encrypted, and no usable key is left now: handing it to the portal could
 * bring it the message twice (encrypted and in the portal), so the envelope retries, and parks after the last try.
 */
export class EarlierFormUnavailableError extends Error {
  readonly code = 'ENCRYPT_EARLIER_FORM_UNAVAILABLE';
}

/**
 * The choice for a recipient of a redelivered message: the way an earlier handling sent it on, whose children may have
 * gone already. Mailbox and deliver each take a message once per recipient, but neither knows the other: a recipient
 * once handed to the portal stays there, and one once encrypted is never handed to the portal as well.
 */
export function keepEarlierRoute(choice: RecipientChoice, earlier: EarlierRoute | undefined): RecipientChoice {
  if (earlier === 'portal' && choice.form !== 'portal') {
    const why = 'handed to the portal on an earlier handling of this message: kept there, not also sent encrypted';
    return { form: 'portal', recipient: choice.recipient, code: 'ENCRYPT_PORTAL_EARLIER', why };
  }
  if (earlier === 'encrypted' && choice.form === 'portal') {
    throw new EarlierFormUnavailableError(
      `${choice.recipient} was sent on encrypted on an earlier handling and has no usable key now (${choice.why}): ` +
        'not handed to the portal as well',
    );
  }
  return choice;
}

/** Revocation of a certificate could not be fetched now: the envelope retries instead of choosing another form. */
export class RevocationUnavailableError extends Error {
  readonly code = 'ENCRYPT_REVOCATION_UNAVAILABLE';
}

/**
 * The form for one recipient. Throws RevocationUnavailableError when no certificate validated and one of them only
 * for want of its revocation, unless this is the last attempt (then that certificate is refused like any other).
 */
export function chooseForm(keys: RecipientKeys, lastAttempt: boolean): RecipientChoice {
  const { recipient } = keys;
  const refusals: Array<{ code: PortalReasonCode; why: string }> = [];
  let revocationUnavailable: string | undefined;
  for (const certificate of keys.certificates) {
    const { validation } = certificate;
    if (validation.ok) {
      return {
        form: 'smime',
        recipient,
        fingerprint: certificate.fingerprint,
        certificate: certificate.der,
        keyType: validation.keyType,
        capabilities: certificate.capabilities,
      };
    }
    if (validation.revocationUnavailable !== undefined) revocationUnavailable = validation.revocationUnavailable;
    refusals.push({
      code: 'ENCRYPT_CERTIFICATE_INVALID',
      why: `certificate ${certificate.fingerprint.slice(0, 16)} invalid: ${validation.problem}`,
    });
  }
  if (revocationUnavailable !== undefined && !lastAttempt) {
    throw new RevocationUnavailableError(
      `revocation of ${recipient}'s certificate not available: ${revocationUnavailable}`,
    );
  }

  for (const key of keys.pgpKeys) {
    if (key.state === 'rejected') continue;
    if (key.state === 'pending') {
      refusals.push({ code: 'ENCRYPT_PGP_KEY_PENDING', why: `OpenPGP key ${key.fingerprint} pending approval` });
      continue;
    }
    if (key.problems.length === 0)
      return { form: 'pgp', recipient, fingerprint: key.fingerprint, armored: key.armored };
    refusals.push({
      code: 'ENCRYPT_PGP_KEY_UNUSABLE',
      why: `OpenPGP key ${key.fingerprint} unusable: ${key.problems.join(', ')}`,
    });
  }

  const first = refusals[0];
  if (!first) return { form: 'portal', recipient, code: 'ENCRYPT_NO_KEY', why: 'no certificate and no OpenPGP key' };
  return { form: 'portal', recipient, code: first.code, why: refusals.map((r) => r.why).join('; ') };
}
