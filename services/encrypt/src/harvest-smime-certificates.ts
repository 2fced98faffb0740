// S/MIME certificate harvesting (inbound): the certificate of a validly signed message enters the key directory
// (source `harvested`) with the S/MIME capabilities the signer announced, when it validates now for the sender's
// address. The path is validated before any revocation is fetched, so a stranger's certificate cannot make the
// gateway fetch URLs of its choosing. A renewed certificate replaces the older one (key-directory.ts); a certificate
// we could not encrypt to (keyUsage without keyEncipherment for RSA or keyAgreement for EC) is not stored at all.
import { X509Certificate } from 'node:crypto';
import {
  checkEncryptionKeyUsage,
  type KeyUsageName,
  type PathValidationSuccess,
  type RevocationFetcher,
  type RevocationMode,
  type SmimeCapabilities,
  validateCertificatePath,
  validateCertificatePathFetchingRevocation,
  verifySignedMessage,
} from '@smgw/crypto';
import type { Pool } from '@smgw/db';
import { type KeyDirectoryCache, storeHarvestedCertificate } from '@smgw/key-directory';
import { listedAddresses } from '@smgw/mime';

export interface HarvestCertificateDeps {
  pool: Pool;
  /** The trust anchors in memory (while their changes are heard); else read each time. */
  keyDirectory: Pick<KeyDirectoryCache, 'trustAnchorCertificates'>;
  fetcher: RevocationFetcher;
  revocationMode: RevocationMode;
  now: Date;
}

export type CertificateHarvest =
  | {
      stored: true;
      /** false: the certificate was known; only its capabilities and last validation were refreshed. */
      created: boolean;
      fingerprint: string;
      addresses: string[];
      replaced: string[];
      capabilities: SmimeCapabilities | null;
    }
  /** Nothing stored, and why (for the debug log: an unsigned or invalid message is not an error). */
  | { stored: false; why: string };

/**
 * Harvests the certificate of the signed `message` (header and body; for decrypted mail the decrypted entity under
 * the outer header). `sender` is the From address (or the envelope sender when From is missing).
 */
export async function harvestSmimeCertificate(
  deps: HarvestCertificateDeps,
  message: Buffer,
  sender: string,
): Promise<CertificateHarvest> {
  const verification = await verifySignedMessage(message);
  if (!verification.valid || !verification.signerCertificate) {
    return { stored: false, why: `signature not valid: ${verification.code} (${verification.reason})` };
  }
  const der = verification.encryptionCertificate ?? verification.signerCertificate;
  // The directory holds the certificates outbound mail is encrypted to, and the newest of an address replaces the
  // others: stored, a signing-only certificate (a qualified signature card's, beside a separate encryption
  // certificate) would send every later message to its holder to the portal. Checked before any path is validated.
  const forEncryption = checkEncryptionKeyUsage(der);
  if (!forEncryption.ok) {
    return { stored: false, why: `not a certificate to encrypt to: ${forEncryption.code} (${forEncryption.reason})` };
  }
  const trustAnchors = (await deps.keyDirectory.trustAnchorCertificates()).map((certificate) => ({ certificate }));
  // The signer must be trusted for this address too: its signature vouches for the capabilities and for the
  // encryption certificate it names. RFC 8551 §2.5.3: a sender may name a separate encryption certificate
  // (id-aa-encrypKeyPref); else the signer's certificate is the one to use.
  const signer = await validateForHarvest(deps, trustAnchors, verification.signerCertificate, verification, sender, [
    'digitalSignature',
    'nonRepudiation',
  ]);
  if (!signer.ok) return { stored: false, why: `signer certificate invalid: ${signer.why}` };
  const result = der.equals(verification.signerCertificate)
    ? signer
    : await validateForHarvest(deps, trustAnchors, der, verification, sender);
  if (!result.ok) return { stored: false, why: `encryption certificate invalid: ${result.why}` };
  // Only the path that validated is kept (end entity and anchor excluded), never the rest of the sender's bag:
  // every certificate stored is fetched for again on outbound mail.
  const intermediates = result.result.path.slice(1, -1).map((c) => Buffer.from(c));

  const x509 = new X509Certificate(der);
  // Stored for the sender's address only: the message vouches for who sent it, not for the other addresses the
  // certificate names. Stored for all of them, a signed mail from a stranger would replace the certificates of
  // everyone else its certificate happens to name (an agency's, another citizen's) for outbound encryption.
  const addresses = emailAddressesOf(x509.subjectAltName).filter((address) => address === sender.toLowerCase());
  if (addresses.length === 0) return { stored: false, why: 'certificate does not name the sender address' };
  const capabilities = verification.capabilities ?? null;
  const fingerprint = x509.fingerprint256.replaceAll(':', '').toLowerCase();
  const stored = await storeHarvestedCertificate(deps.pool, {
    fingerprint,
    subject: oneLine(x509.subject),
    addresses,
    issuer: oneLine(x509.issuer),
    serial: x509.serialNumber.toUpperCase(),
    notBefore: x509.validFromDate,
    notAfter: x509.validToDate,
    der: Buffer.from(x509.raw),
    intermediates,
    smimeCapabilities: capabilities,
    lastValidation: {
      at: deps.now.toISOString(),
      ok: true,
      revocationMode: deps.revocationMode,
      revocation: result.result.revocation,
      fetchProblems: result.result.fetchProblems,
      by: 'harvest',
    },
  });
  return { stored: true, created: stored.created, fingerprint, addresses, replaced: stored.replaced, capabilities };
}

type HarvestValidation =
  | { ok: true; result: PathValidationSuccess & { fetchProblems: string[] } }
  | { ok: false; why: string };

/**
 * Validates a certificate from the message for the sender's address now. The path is validated without revocation
 * first, with no network; only a certificate that chains to our anchors may make us fetch revocation.
 */
async function validateForHarvest(
  deps: HarvestCertificateDeps,
  trustAnchors: Array<{ certificate: Buffer }>,
  der: Buffer,
  verification: { certificates: Buffer[] },
  sender: string,
  /** For the signer: the key usage a signature needs (when the certificate has keyUsage, one of these). */
  leafKeyUsage?: KeyUsageName[],
): Promise<HarvestValidation> {
  const input = {
    endEntity: der,
    intermediates: verification.certificates.filter((c) => !c.equals(der)),
    trustAnchors,
    time: deps.now,
    purpose: 'emailProtection' as const,
    emailAddress: sender,
    ...(leafKeyUsage ? { leafKeyUsage } : {}),
  };
  const path = validateCertificatePath({ ...input, revocation: 'off' });
  if (!path.ok) return { ok: false, why: `${path.code} (${path.reason})` };
  if (deps.revocationMode === 'off') return { ok: true, result: { ...path, fetchProblems: [] } };
  const result = await validateCertificatePathFetchingRevocation(
    { ...input, revocation: deps.revocationMode },
    deps.fetcher,
  );
  return result.ok ? { ok: true, result } : { ok: false, why: `${result.code} (${result.reason})` };
}

/**
 * The one address of a From field, as ingest's DMARC check read it (nodemailer's addressparser, which mailauth uses);
 * undefined for none or several. A `<address>` in a comment or display name is not the author: taken for it,
 * `From: stranger@own.example (<citizen@example.net>)` passed DMARC for the stranger's domain and had the stranger's
 * key stored for the citizen's address.
 */
export function fromAddress(from: string | undefined): string | undefined {
  if (!from) return undefined;
  const addresses = listedAddresses(from);
  if (addresses.length !== 1) return undefined;
  const [address] = addresses;
  return address && /^[^\s@]+@[^\s@]+$/.test(address) ? address : undefined;
}

/** SAN rfc822Name entries, lower-case, without duplicates (how the directory finds them). */
function emailAddressesOf(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  const addresses = new Set<string>();
  for (const match of subjectAltName.matchAll(/(?:^|, )email:("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    let value = match[1] as string;
    if (value.startsWith('"')) value = JSON.parse(value) as string;
    if (value.includes('@')) addresses.add(value.toLowerCase());
  }
  return [...addresses];
}

/** Node prints distinguished names one attribute per line; the directory stores them comma-separated. */
function oneLine(name: string): string {
  return name.split('\n').filter(Boolean).join(', ');
}
