// The key usage a certificate needs for us to encrypt to it (RFC 8550 §4.4.2): keyEncipherment for RSA key transport,
// keyAgreement for ECDH. One rule for the encrypt stage (path validation with leafKeyUsage, for every recipient) and
// for taking a certificate into the key directory (harvest, admin, portal): a certificate we cannot encrypt to, kept
// as the newest of its address, would replace the one we can (a qualified signature card's signing certificate).
import { X509Certificate } from 'node:crypto';
import { MalformedCertificateError, parseCertificate } from './certificate.ts';
import type { KeyUsageName } from './types.ts';

export type EncryptionKeyUsage =
  | { ok: true; keyType: 'rsa' | 'ec'; keyUsage: KeyUsageName[] }
  | { ok: false; code: 'MALFORMED_CERTIFICATE' | 'UNSUPPORTED_ALGORITHM'; reason: string };

/** The key usage the certificate's key type needs for encryption (one of them), or why we cannot encrypt to it. */
export function encryptionKeyUsage(der: Uint8Array): EncryptionKeyUsage {
  let keyType: string | undefined;
  try {
    keyType = new X509Certificate(der).publicKey.asymmetricKeyType;
  } catch {
    return { ok: false, code: 'MALFORMED_CERTIFICATE', reason: 'not readable' };
  }
  if (keyType === 'rsa') return { ok: true, keyType, keyUsage: ['keyEncipherment'] };
  if (keyType === 'ec') return { ok: true, keyType, keyUsage: ['keyAgreement'] };
  return { ok: false, code: 'UNSUPPORTED_ALGORITHM', reason: `cannot encrypt to a ${keyType ?? 'unknown'} key` };
}

/** RFC 5280 §4.2.1.3: without a keyUsage extension a key may be used for anything; with one, for what it lists. */
export function keyUsageAllows(
  keyUsage: ReadonlySet<KeyUsageName> | undefined,
  wanted: readonly KeyUsageName[],
): boolean {
  return !keyUsage || wanted.some((usage) => keyUsage.has(usage));
}

/**
 * Whether we can encrypt to the certificate by its key alone (encryptionKeyUsage, and its keyUsage allows it: the
 * test path validation makes with leafKeyUsage), before and without validating any path.
 */
export function checkEncryptionKeyUsage(
  der: Uint8Array,
):
  | { ok: true; keyType: 'rsa' | 'ec' }
  | { ok: false; code: 'MALFORMED_CERTIFICATE' | 'UNSUPPORTED_ALGORITHM' | 'KEY_USAGE'; reason: string } {
  const usage = encryptionKeyUsage(der);
  if (!usage.ok) return usage;
  let keyUsage: ReadonlySet<KeyUsageName> | undefined;
  try {
    keyUsage = parseCertificate(der).keyUsage;
  } catch (err) {
    if (!(err instanceof MalformedCertificateError)) throw err;
    return { ok: false, code: 'MALFORMED_CERTIFICATE', reason: err.message };
  }
  if (!keyUsageAllows(keyUsage, usage.keyUsage)) {
    return {
      ok: false,
      code: 'KEY_USAGE',
      reason: `the certificate's keyUsage (${[...(keyUsage ?? [])].join(', ')}) allows none of: ${usage.keyUsage.join(', ')}`,
    };
  }
  return { ok: true, keyType: usage.keyType };
}
