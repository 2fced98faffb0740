// Taking a recipient certificate into the directory: only when its path validates now to one of the trust anchors,
// for e-mail protection, for the address it is taken for, with the key usage encryption needs (the encrypt stage's
// test: a signing-only certificate would replace the holder's encryption certificate), with revocation checked per
// SMGW_REVOCATION_MODE. One
// place for the rule: the admin API's POST /certificates (any address the certificate names) and the portal's
// bring-your-own-key page (the logged-in user's address only).
import {
  type CertificateFacts,
  encryptionKeyUsage,
  type PathValidationCode,
  type RevocationFetcher,
  type RevocationMode,
  validateCertificatePathFetchingRevocation,
} from '@smgw/crypto';
import type { Pool } from '@smgw/db';
import { addCertificate, type CertificateSource, type StoredCertificate } from './certificates.ts';
import { trustAnchorCertificates } from './trust-anchors.ts';

export interface CertificateAcceptance {
  /** The upload's certificates, the recipient's first (readCertificateUpload). */
  chain: CertificateFacts[];
  /** The address it must hold and is stored for alone (the portal user's); without it, every address it names. */
  address?: string | undefined;
  source: Exclude<CertificateSource, 'harvested'>;
  /** Who brought it: the operator, or `portal:<mailbox id>`. */
  by: string;
  now: Date;
  revocationMode: RevocationMode;
  revocationFetcher: RevocationFetcher;
}

export type CertificateAcceptanceResult =
  | { ok: true; certificate: StoredCertificate; created: boolean; replaced: string[] }
  /** KEY_USAGE and UNSUPPORTED_ALGORITHM: we could not encrypt to it (encryptionKeyUsage). */
  | { ok: false; code: PathValidationCode | 'ADDRESS_NOT_IN_CERTIFICATE'; reason: string; fingerprint: string };

export async function acceptRecipientCertificate(
  pool: Pool,
  input: CertificateAcceptance,
): Promise<CertificateAcceptanceResult> {
  const [leaf, ...intermediates] = input.chain as [CertificateFacts, ...CertificateFacts[]];
  // Path validation compares the local part as written; the directory finds addresses lower-cased.
  const address = input.address
    ? leaf.emailAddressesAsWritten.find((a) => a.toLowerCase() === input.address?.toLowerCase())
    : leaf.emailAddressesAsWritten[0];
  if (!address) {
    return {
      ok: false,
      code: 'ADDRESS_NOT_IN_CERTIFICATE',
      reason: input.address
        ? `the certificate is not for ${input.address} (subjectAltName rfc822Name)`
        : 'the certificate names no e-mail address (subjectAltName rfc822Name)',
      fingerprint: leaf.fingerprint,
    };
  }
  const usage = encryptionKeyUsage(leaf.der);
  if (!usage.ok) return { ok: false, code: usage.code, reason: usage.reason, fingerprint: leaf.fingerprint };
  const result = await validateCertificatePathFetchingRevocation(
    {
      endEntity: leaf.der,
      intermediates: intermediates.map((c) => c.der),
      trustAnchors: (await trustAnchorCertificates(pool)).map((certificate) => ({ certificate })),
      time: input.now,
      purpose: 'emailProtection',
      emailAddress: address,
      leafKeyUsage: usage.keyUsage,
      revocation: input.revocationMode,
    },
    input.revocationFetcher,
  );
  if (!result.ok) return { ok: false, code: result.code, reason: result.reason, fingerprint: leaf.fingerprint };
  const stored = await addCertificate(pool, {
    fingerprint: leaf.fingerprint,
    subject: leaf.subject,
    // Taken for one address (the portal user's), it is stored for that address alone: the other addresses a
    // certificate names are not the uploader's to claim, and stored for them it would encrypt their mail and replace
    // their current certificates.
    addresses: input.address ? [address.toLowerCase()] : leaf.emailAddresses,
    issuer: leaf.issuer,
    serial: leaf.serial,
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
    der: leaf.der,
    // The path that validated, not every certificate of the upload: each one stored is fetched for again.
    intermediates: result.path.slice(1, -1).map((c) => Buffer.from(c)),
    smimeCapabilities: null,
    source: input.source,
    lastValidation: {
      at: input.now.toISOString(),
      ok: true,
      revocationMode: input.revocationMode,
      revocation: result.revocation,
      fetchProblems: result.fetchProblems,
      by: input.by,
    },
  });
  return { ok: true, ...stored };
}
