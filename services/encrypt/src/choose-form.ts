// Per outbound recipient, the form its copy takes: a current certificate that validates now → S/MIME; else an
// approved OpenPGP key without problems → OpenPGP; else the portal. Every refusal carries its reason for the trace.
import { X509Certificate } from 'node:crypto';
import {
  inspectPublicKey,
  type KeyUsageName,
  type RevocationFetcher,
  type RevocationMode,
  validateCertificatePathFetchingRevocation,
} from '@smgw/crypto';
import type { Pool } from '@smgw/db';
import { currentCertificates, pgpKeysFor, type StoredCapabilities } from '@smgw/key-directory';

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
  | 'ENCRYPT_PGP_KEY_UNUSABLE';

/** Revocation of a certificate could not be fetched now: the envelope retries instead of choosing another form. */
export class RevocationUnavailableError extends Error {
  readonly code = 'ENCRYPT_REVOCATION_UNAVAILABLE';
}

export interface ChooseFormDeps {
  pool: Pool;
  trustAnchors: readonly Buffer[];
  fetcher: RevocationFetcher;
  revocationMode: RevocationMode;
  now: Date;
  /** On the last attempt a certificate whose revocation cannot be fetched is refused instead of retried. */
  lastAttempt: boolean;
}

export async function chooseForm(deps: ChooseFormDeps, recipient: string): Promise<RecipientChoice> {
  const refusals: Array<{ code: PortalReasonCode; why: string }> = [];
  const certificates = await currentCertificates(deps.pool, recipient);
  let revocationUnavailable: string | undefined;
  for (const certificate of certificates) {
    const usage = encryptionKeyUsage(certificate.der);
    if (typeof usage === 'string') {
      refusals.push({
        code: 'ENCRYPT_CERTIFICATE_INVALID',
        why: `certificate ${certificate.fingerprint.slice(0, 16)} invalid: ${usage}`,
      });
      continue;
    }
    const result = await validateCertificatePathFetchingRevocation(
      {
        endEntity: certificate.der,
        intermediates: certificate.intermediates,
        trustAnchors: deps.trustAnchors.map((der) => ({ certificate: der })),
        time: deps.now,
        purpose: 'emailProtection',
        emailAddress: recipient,
        leafKeyUsage: usage.keyUsage,
        revocation: deps.revocationMode,
      },
      deps.fetcher,
    );
    if (result.ok) {
      return {
        form: 'smime',
        recipient,
        fingerprint: certificate.fingerprint,
        certificate: certificate.der,
        keyType: usage.keyType,
        capabilities: certificate.smimeCapabilities,
      };
    }
    if (result.code === 'REVOCATION_UNKNOWN' && result.fetchProblems.length > 0) {
      revocationUnavailable = result.reason;
    }
    refusals.push({
      code: 'ENCRYPT_CERTIFICATE_INVALID',
      why: `certificate ${certificate.fingerprint.slice(0, 16)} invalid: ${result.code} (${result.reason})`,
    });
  }
  if (revocationUnavailable !== undefined && !deps.lastAttempt) {
    throw new RevocationUnavailableError(
      `revocation of ${recipient}'s certificate not available: ${revocationUnavailable}`,
    );
  }

  const keys = await pgpKeysFor(deps.pool, recipient);
  for (const key of keys) {
    if (key.state === 'rejected') continue;
    if (key.state === 'pending') {
      refusals.push({ code: 'ENCRYPT_PGP_KEY_PENDING', why: `OpenPGP key ${key.fingerprint} pending approval` });
      continue;
    }
    let problems: string[];
    try {
      problems = (await inspectPublicKey(key.armored, { now: deps.now })).problems.map((p) => p.code);
    } catch (err) {
      problems = [(err as { code?: string }).code ?? 'PGP_KEY_MALFORMED'];
    }
    if (problems.length === 0) return { form: 'pgp', recipient, fingerprint: key.fingerprint, armored: key.armored };
    refusals.push({
      code: 'ENCRYPT_PGP_KEY_UNUSABLE',
      why: `OpenPGP key ${key.fingerprint} unusable: ${problems.join(', ')}`,
    });
  }

  const first = refusals[0];
  if (!first) return { form: 'portal', recipient, code: 'ENCRYPT_NO_KEY', why: 'no certificate and no OpenPGP key' };
  return { form: 'portal', recipient, code: first.code, why: refusals.map((r) => r.why).join('; ') };
}

/**
 * The key usage a certificate needs for us to encrypt to it (RFC 8550 §4.4.2): keyEncipherment for RSA key
 * transport, keyAgreement for ECDH; or why we cannot encrypt to it at all.
 */
function encryptionKeyUsage(der: Buffer): { keyType: 'rsa' | 'ec'; keyUsage: KeyUsageName[] } | string {
  let keyType: string | undefined;
  try {
    keyType = new X509Certificate(der).publicKey.asymmetricKeyType;
  } catch {
    return 'MALFORMED_CERTIFICATE (not readable)';
  }
  if (keyType === 'rsa') return { keyType, keyUsage: ['keyEncipherment'] };
  if (keyType === 'ec') return { keyType, keyUsage: ['keyAgreement'] };
  return `UNSUPPORTED_ALGORITHM (cannot encrypt to a ${keyType ?? 'unknown'} key)`;
}
