// Taking a recipient certificate into the directory: only when its path validates now to one of the trust anchors,
// for e-mail protection, for the address it is taken for, with the key usage encryption needs (the encrypt stage's
// test: a signing-only certificate would replace the holder's encryption certificate), with revocation checked per
// SMGW_REVOCATION_MODE. One
// place for the rule: the admin API's POST /certificates (any address the certificate names) and the portal's
// bring-your-own-key page (the logged-in user's address only), and an operator's reinstatement of a withdrawn or
// replaced certificate (POST /certificates/{fingerprint}/reinstate), which must still validate now.
import {
  type CertificateFacts,
  certificateFacts,
  encryptionKeyUsage,
  type PathValidationCode,
  type RevocationFetcher,
  type RevocationMode,
  validateCertificatePathFetchingRevocation,
} from '@smgw/crypto';
import type { Pool } from '@smgw/db';
import {
  type AddedCertificate,
  addCertificate,
  type CertificateReinstatement,
  type CertificateSource,
  getCertificateChain,
  reinstateCertificate,
} from './certificates.ts';
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
  /** `takenOverFrom`: an operator added a certificate mail or the portal brought first, and it is theirs now. */
  | ({ ok: true } & AddedCertificate)
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
  const result = await validateRecipientCertificate(
    pool,
    leaf,
    intermediates.map((c) => c.der),
    address,
    input,
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
    intermediates: result.intermediates,
    smimeCapabilities: null,
    source: input.source,
    lastValidation: result.lastValidation,
  });
  return { ok: true, ...stored };
}

type RecipientValidation =
  | { ok: true; intermediates: Buffer[]; lastValidation: Record<string, unknown> }
  | { ok: false; code: PathValidationCode; reason: string };

/** The rule above for `leaf` and `address` (as written in the certificate); `by` goes into last_validation. */
async function validateRecipientCertificate(
  pool: Pool,
  leaf: CertificateFacts,
  intermediates: Buffer[],
  address: string,
  input: { by: string; now: Date; revocationMode: RevocationMode; revocationFetcher: RevocationFetcher },
): Promise<RecipientValidation> {
  const usage = encryptionKeyUsage(leaf.der);
  if (!usage.ok) return { ok: false, code: usage.code, reason: usage.reason };
  const result = await validateCertificatePathFetchingRevocation(
    {
      endEntity: leaf.der,
      intermediates,
      trustAnchors: (await trustAnchorCertificates(pool)).map((certificate) => ({ certificate })),
      time: input.now,
      purpose: 'emailProtection',
      emailAddress: address,
      leafKeyUsage: usage.keyUsage,
      revocation: input.revocationMode,
    },
    input.revocationFetcher,
  );
  if (!result.ok) return { ok: false, code: result.code, reason: result.reason };
  return {
    ok: true,
    intermediates: result.path.slice(1, -1).map((c) => Buffer.from(c)),
    lastValidation: {
      at: input.now.toISOString(),
      ok: true,
      revocationMode: input.revocationMode,
      revocation: result.revocation,
      fetchProblems: result.fetchProblems,
      by: input.by,
    },
  };
}

export interface CertificateReinstatementRequest {
  fingerprint: string;
  operator: string;
  reason: string;
  now: Date;
  revocationMode: RevocationMode;
  revocationFetcher: RevocationFetcher;
}

export type RecipientCertificateReinstatement =
  | CertificateReinstatement
  /** It does not validate now (or no longer names the address it is stored for): it stays as it is. */
  | { ok: false; code: PathValidationCode | 'ADDRESS_NOT_IN_CERTIFICATE'; message: string };

/**
 * An operator brings back a withdrawn or replaced certificate (reinstateCertificate), only if it validates now by the
 * rule above, with the intermediates stored with it, for the first address it is stored for. A current certificate
 * is refused before anything is fetched.
 */
export async function reinstateRecipientCertificate(
  pool: Pool,
  input: CertificateReinstatementRequest,
): Promise<RecipientCertificateReinstatement> {
  const fingerprint = input.fingerprint.toLowerCase();
  const chain = await getCertificateChain(pool, fingerprint);
  if (!chain) return { ok: false, code: 'CERTIFICATE_NOT_FOUND', message: `no certificate ${fingerprint}` };
  const stored = chain.certificate;
  if (stored.replacedBy === null && stored.withdrawnAt === null) {
    return { ok: false, code: 'CERTIFICATE_CURRENT', message: `${fingerprint} is current: nothing to reinstate` };
  }
  const leaf = certificateFacts(chain.der);
  const address = leaf.emailAddressesAsWritten.find((a) => a.toLowerCase() === stored.addresses[0]);
  if (!address) {
    return {
      ok: false,
      code: 'ADDRESS_NOT_IN_CERTIFICATE',
      message: `the certificate does not name ${stored.addresses[0]} (subjectAltName rfc822Name)`,
    };
  }
  const validation = await validateRecipientCertificate(pool, leaf, chain.intermediates, address, {
    ...input,
    by: input.operator,
  });
  if (!validation.ok) return { ok: false, code: validation.code, message: validation.reason };
  return reinstateCertificate(pool, {
    fingerprint,
    operator: input.operator,
    reason: input.reason,
    at: input.now,
    lastValidation: validation.lastValidation,
  });
}
