// Recent successful path validations, for a stage that validates the same recipient certificate for message after
// message (encrypt). A result of validateCertificatePathFetchingRevocation is reused for the same inputs for a short
// time: only successes are kept, never past the earliest notAfter on the path nor past the earliest nextUpdate of the
// revocation answers it rests on, and anything that changes an input (the certificate, the intermediates, the trust
// anchors, the address, the key usage, the revocation mode) makes another entry. Inputs that bring CRLs or OCSP
// answers of their own are validated every time.
import { createHash, X509Certificate } from 'node:crypto';
import { type RevocationFetcher, validateCertificatePathFetchingRevocation } from './revocation-fetcher.ts';
import type { PathValidationInput, PathValidationResult } from './types.ts';

type FetchingResult = PathValidationResult & { fetchProblems: string[] };

export interface PathValidationCache {
  /** validateCertificatePathFetchingRevocation, or its recent success for the same inputs at `input.time`. */
  validate(input: PathValidationInput, fetcher: RevocationFetcher): Promise<FetchingResult>;
}

interface Entry {
  result: FetchingResult;
  /** The validation time it was made for, and the first time it no longer holds (ms). */
  validatedAt: number;
  expires: number;
}

export function createPathValidationCache(options: { ttlMs: number; maxEntries?: number }): PathValidationCache {
  const maxEntries = options.maxEntries ?? 1000;
  const entries = new Map<string, Entry>();
  return {
    async validate(input, fetcher) {
      const key = cacheKey(input);
      const time = input.time.getTime();
      if (key !== undefined) {
        const entry = entries.get(key);
        if (entry && entry.validatedAt <= time && time < entry.expires) return entry.result;
        if (entry) entries.delete(key);
      }
      const result = await validateCertificatePathFetchingRevocation(input, fetcher);
      const expires = key !== undefined && result.ok ? holdsUntil(result, time + options.ttlMs) : undefined;
      if (key !== undefined && expires !== undefined && expires > time) {
        entries.set(key, { result, validatedAt: time, expires });
        // The oldest entry goes first (a Map keeps insertion order).
        while (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
      }
      return result;
    },
  };
}

/** Every input but the time, hashed; undefined for inputs that are not cached. */
function cacheKey(input: PathValidationInput): string | undefined {
  if ((input.crls?.length ?? 0) > 0 || (input.ocspResponses?.length ?? 0) > 0) return undefined;
  const hash = createHash('sha256');
  // Each part with its length in front, so that no two different inputs give the same bytes.
  const part = (bytes: Uint8Array | string) => {
    const data = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length, 0);
    hash.update(length).update(data);
  };
  part(input.endEntity);
  part(String(input.intermediates?.length ?? 0));
  for (const der of input.intermediates ?? []) part(der);
  part(String(input.trustAnchors.length));
  for (const anchor of input.trustAnchors) {
    part(anchor.certificate);
    part(`${anchor.enforceConstraints === true}/${anchor.checkValidity === true}`);
  }
  part(
    JSON.stringify([
      input.purpose,
      input.emailAddress ?? null,
      input.leafKeyUsage ?? null,
      input.initialPolicySet ?? null,
      input.initialExplicitPolicy ?? null,
      input.initialPolicyMappingInhibit ?? null,
      input.initialAnyPolicyInhibit ?? null,
      input.revocation ?? 'require',
      input.algorithmPolicy ?? null,
    ]),
  );
  return hash.digest('hex');
}

/** The earliest of `limit`, the notAfter of each certificate on the path and each revocation answer's nextUpdate. */
function holdsUntil(result: FetchingResult & { ok: true }, limit: number): number | undefined {
  let until = limit;
  for (const der of result.path) {
    let notAfter: number;
    try {
      notAfter = new X509Certificate(der).validToDate.getTime();
    } catch {
      return undefined;
    }
    until = Math.min(until, notAfter);
  }
  for (const evidence of result.revocationEvidence ?? []) {
    if (evidence?.nextUpdate) until = Math.min(until, evidence.nextUpdate.getTime());
  }
  return until;
}
