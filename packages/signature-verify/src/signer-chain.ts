// The signer certificate's path to our trust anchors, by @smgw/crypto's RFC 5280 validation (validateCertificatePath,
// and with a fetcher validateCertificatePathFetchingRevocation: its SSRF guard and SMGW_REVOCATION_ALLOW rules stay
// in force), turned into the EN 319 102-1 §5.2.6 judgement. Results are cached for a short time per certificate set,
// except those that depend on a source being reachable (TRY_LATER).
import {
  type CertificatePurpose,
  type PathValidationResult,
  type RevocationEvidence,
  type RevocationFetcher,
  type RevocationMode,
  type TrustAnchorInput,
  validateCertificatePath,
  validateCertificatePathFetchingRevocation,
} from '@smgw/crypto';
import { type CertificateFacts, certificateFacts } from './certificate-facts.ts';
import type { EmbeddedRevocation } from './embedded-revocation.ts';
import { failed, indeterminate, type Judgement, PASSED } from './indication.ts';

export interface ChainOptions {
  trustAnchors: TrustAnchorInput[];
  /** Default `require`: no revocation answer → INDETERMINATE TRY_LATER. */
  revocation: RevocationMode;
  /** Fetches OCSP/CRL for paths that reach an anchor (createRevocationFetcher from @smgw/crypto). */
  fetcher?: RevocationFetcher;
  /** DER CRLs and OCSP responses already at hand. */
  crls?: Uint8Array[];
  ocspResponses?: Uint8Array[];
  /** Extra intermediate certificates (DER) besides those in the signature. */
  intermediates?: Uint8Array[];
  /** How long a chain result is reused, by the injected clock; default 60 s, 0 = never. */
  cacheMs?: number;
}

export interface ChainCertificate {
  subject: string;
  issuer: string;
  serialNumber: string;
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
  /** How revocation was established: by OCSP or CRL (good or revoked), not at all, or not needed (the anchor). */
  revocation: 'good-ocsp' | 'good-crl' | 'revoked' | 'unknown' | 'not-checked' | 'trust-anchor';
  /** The revocation data the status rests on: where it came from, its kind and the time it speaks for. */
  revocationData?: RevocationData;
}

export interface RevocationData {
  /** `embedded` in the signature, `fetched` from the CA's OCSP/CRL address, `configured` (given to the verifier). */
  source: 'embedded' | 'fetched' | 'configured';
  kind: 'crl' | 'ocsp';
  /** CRL thisUpdate or OCSP thisUpdate. */
  time: Date;
  nextUpdate?: Date;
}

export interface ChainReport {
  judgement: Judgement;
  /** From the signer to the trust anchor when a path was found; the signer alone otherwise. */
  certificates: ChainCertificate[];
  /** The path validation code when it failed (PathValidationCode of @smgw/crypto). */
  code?: string;
  reason?: string;
  /** Revocation sources that could not be used. */
  fetchProblems: string[];
}

interface CacheEntry {
  report: ChainReport;
  path: CertificateFacts[];
  expires: number;
}

export type ChainCache = Map<string, CacheEntry>;

const CACHE_LIMIT = 1000;

function chainCertificate(
  facts: CertificateFacts,
  revocation: ChainCertificate['revocation'],
  revocationData?: RevocationData,
): ChainCertificate {
  return {
    ...(revocationData ? { revocationData } : {}),
    subject: facts.subject,
    issuer: facts.issuer,
    serialNumber: facts.serialNumber,
    fingerprint: facts.fingerprint,
    notBefore: facts.notBefore,
    notAfter: facts.notAfter,
    revocation,
  };
}

/** EN 319 102-1 §5.2.6 X.509 certificate validation outcome for a refused path. */
function judgementOf(result: Extract<PathValidationResult, { ok: false }>, fetchProblems: string[]): Judgement {
  switch (result.code) {
    case 'UNTRUSTED_ROOT':
    case 'NO_PATH':
      return indeterminate('NO_CERTIFICATE_CHAIN_FOUND');
    case 'EXPIRED':
      // Only the claimed signing time says it was made in time, and a claim is no proof of existence.
      return indeterminate('OUT_OF_BOUNDS_NO_POE');
    case 'NOT_YET_VALID':
      return indeterminate('NOT_YET_VALID');
    case 'REVOKED':
      return (result.certificateIndex ?? 0) === 0 ? failed('REVOKED') : indeterminate('REVOKED_CA_NO_POE');
    case 'REVOCATION_UNKNOWN':
      return fetchProblems.length > 0 ? indeterminate('TRY_LATER') : indeterminate('CERTIFICATE_CHAIN_GENERAL_FAILURE');
    case 'WEAK_KEY':
    case 'WEAK_SIGNATURE':
    case 'UNSUPPORTED_ALGORITHM':
      return indeterminate('CRYPTO_CONSTRAINTS_FAILURE');
    case 'KEY_USAGE':
    case 'EXTENDED_KEY_USAGE':
    case 'NAME_CONSTRAINTS_VIOLATED':
    case 'POLICY_REQUIRED':
    case 'NOT_A_CA':
    case 'PATH_LENGTH_EXCEEDED':
    case 'UNKNOWN_CRITICAL_EXTENSION':
      return indeterminate('CHAIN_CONSTRAINTS_FAILURE');
    default:
      return indeterminate('CERTIFICATE_CHAIN_GENERAL_FAILURE');
  }
}

/** Validates the signer's certificate at `time`; never throws. `path` is the facts of the validated path. */
export async function validateSignerChain(
  signer: CertificateFacts,
  /** The readable certificates the signature carries (the signer's among them). */
  bag: readonly CertificateFacts[],
  purpose: CertificatePurpose,
  time: Date,
  options: ChainOptions,
  cache: ChainCache,
  /** Revocation data from the signature itself, used before anything is fetched. */
  embedded?: EmbeddedRevocation,
): Promise<{ report: ChainReport; path: CertificateFacts[] }> {
  const others = bag.filter((c) => c.fingerprint !== signer.fingerprint);
  const intermediates = [...others.map((c) => c.der), ...(options.intermediates ?? [])];
  const cacheKey = [
    signer.fingerprint,
    purpose,
    options.revocation,
    ...others.map((c) => c.fingerprint).sort(),
    ...(options.intermediates ?? []).map(fingerprintOf),
    ...[...(embedded?.fingerprints ?? [])].sort().map((f) => `r:${f}`),
  ].join('|');
  const hit = cache.get(cacheKey);
  if (hit && hit.expires > time.getTime()) return { report: hit.report, path: hit.path };

  const input = {
    endEntity: signer.der,
    intermediates,
    trustAnchors: options.trustAnchors,
    time,
    purpose,
    leafKeyUsage: ['digitalSignature' as const, 'nonRepudiation' as const],
    revocation: options.revocation,
    crls: [...(embedded?.crls ?? []), ...(options.crls ?? [])],
    ocspResponses: [...(embedded?.ocspResponses ?? []), ...(options.ocspResponses ?? [])],
  };
  const dataOf = (evidence: RevocationEvidence | undefined): RevocationData | undefined =>
    evidence && {
      source:
        evidence.origin === 'fetched'
          ? 'fetched'
          : embedded?.fingerprints.has(evidence.sha256)
            ? 'embedded'
            : 'configured',
      kind: evidence.kind,
      time: evidence.thisUpdate,
      ...(evidence.nextUpdate ? { nextUpdate: evidence.nextUpdate } : {}),
    };
  const result =
    options.fetcher && options.revocation !== 'off'
      ? await validateCertificatePathFetchingRevocation(input, options.fetcher)
      : { ...validateCertificatePath(input), fetchProblems: [] as string[] };

  let outcome: { report: ChainReport; path: CertificateFacts[] };
  if (result.ok) {
    const path = result.path.map((der) => certificateFacts(Buffer.from(der)));
    outcome = {
      path,
      report: {
        judgement: PASSED,
        certificates: path.map((facts, index) =>
          index === path.length - 1
            ? chainCertificate(facts, 'trust-anchor')
            : chainCertificate(
                facts,
                result.revocation[index] ?? 'unknown',
                dataOf(result.revocationEvidence?.[index]),
              ),
        ),
        fetchProblems: result.fetchProblems,
      },
    };
  } else {
    outcome = {
      path: [signer],
      report: {
        judgement: judgementOf(result, result.fetchProblems),
        certificates: [
          result.code === 'REVOKED' && (result.certificateIndex ?? 0) === 0
            ? chainCertificate(signer, 'revoked', dataOf(result.revocationEvidence))
            : chainCertificate(signer, 'unknown'),
        ],
        code: result.code,
        reason: result.reason,
        fetchProblems: result.fetchProblems,
      },
    };
  }
  const cacheMs = options.cacheMs ?? 60_000;
  const dependsOnReachability =
    outcome.report.judgement.indication === 'INDETERMINATE' && result.fetchProblems.length > 0;
  if (cacheMs > 0 && !dependsOnReachability) {
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
    cache.set(cacheKey, { ...outcome, expires: time.getTime() + cacheMs });
  }
  return outcome;
}

function fingerprintOf(der: Uint8Array): string {
  try {
    return certificateFacts(Buffer.from(der)).fingerprint;
  } catch {
    return Buffer.from(der).toString('base64');
  }
}
