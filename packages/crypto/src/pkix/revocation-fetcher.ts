// Fetches the revocation information validateCertificatePath needs: OCSP (RFC 6960, POST) from the
// certificate's authorityInfoAccess, CRLs from its distribution points, through revocation-http.ts (http/https only,
// public addresses unless allowed, no redirects, a timeout and a size cap), cached until the answer's nextUpdate.
// Only certificates on a path that already validated up to one of our trust anchors are fetched for, at most a few
// URLs each and a few requests at once: a stranger's certificate cannot make the gateway a port scanner.
// Never throws: what could not be fetched is reported in `problems`, and validation then fails closed
// (REVOCATION_UNKNOWN) in `require` mode.

import { createHash } from 'node:crypto';
import * as pkijs from 'pkijs';
import { EXT, type ParsedCertificate, parseCertificate } from './certificate.ts';
import { distributionPointUris } from './distribution-points.ts';
import { parseCrl } from './revocation-crl.ts';
import { NOTHING_ALLOWED, type RevocationAllow, requestRevocationData } from './revocation-http.ts';
import { parseOcspResponse } from './revocation-ocsp.ts';
import type { PathValidationInput, PathValidationResult, RevocationEvidence } from './types.ts';
import { validateCertificatePath } from './validate-certificate-path.ts';

const OCSP_ACCESS_METHOD = '1.3.6.1.5.5.7.48.1';

export interface RevocationFetcherOptions {
  /** Per request; default 5000 ms. */
  timeoutMs?: number;
  /** Default 4 MiB. */
  maxCrlBytes?: number;
  /** Default 16 KiB. */
  maxOcspBytes?: number;
  /** OCSP URLs and CRL URLs used per certificate (each kind); default 2. The rest are ignored. */
  maxUrlsPerCertificate?: number;
  /** Requests in flight at once, over all callers of this fetcher; default 4. */
  maxConcurrentRequests?: number;
  /** CRLs and OCSP answers kept per cache (each up to its size cap); default 1000. */
  maxCacheEntries?: number;
  /** Loopback/private/link-local targets that may still be reached (SMGW_REVOCATION_ALLOW); default none. */
  allow?: RevocationAllow;
  /** The injected clock, used for cache expiry. */
  now: () => Date;
}

export const REVOCATION_FETCH_DEFAULTS = {
  timeoutMs: 5000,
  maxCrlBytes: 4 * 1024 * 1024,
  maxOcspBytes: 16 * 1024,
  maxUrlsPerCertificate: 2,
  maxConcurrentRequests: 4,
  maxCacheEntries: 1000,
} as const;

export interface FetchedRevocation {
  crls: Uint8Array[];
  ocspResponses: Uint8Array[];
  /** One sentence per source that could not be used. */
  problems: string[];
}

export interface RevocationFetcher {
  /** Anchors only serve as issuers (for OCSP requests); they are not checked themselves. */
  fetchFor(endEntity: Uint8Array, intermediates: Uint8Array[], anchors?: Uint8Array[]): Promise<FetchedRevocation>;
}

interface CacheEntry {
  der: Uint8Array;
  expires: number;
}

class FetchError extends Error {
  readonly code = 'REVOCATION_FETCH_FAILED';
}

function ocspUrls(certificate: ParsedCertificate): string[] {
  const extension = certificate.certificate.extensions?.find((e) => e.extnID === EXT.authorityInfoAccess);
  const access = extension?.parsedValue as pkijs.InfoAccess | undefined;
  return (access?.accessDescriptions ?? [])
    .filter((d) => d.accessMethod === OCSP_ACCESS_METHOD && d.accessLocation.type === 6)
    .map((d) => String(d.accessLocation.value))
    .filter((uri) => /^https?:\/\//i.test(uri));
}

function crlUrls(certificate: ParsedCertificate): string[] {
  const extension = certificate.certificate.extensions?.find((e) => e.extnID === EXT.crlDistributionPoints);
  return extension ? distributionPointUris(extension) : [];
}

export function createRevocationFetcher(options: RevocationFetcherOptions): RevocationFetcher {
  const { timeoutMs, maxCrlBytes, maxOcspBytes, maxUrlsPerCertificate, maxConcurrentRequests, maxCacheEntries } = {
    ...REVOCATION_FETCH_DEFAULTS,
    ...options,
  };
  const allow = options.allow ?? NOTHING_ALLOWED;
  const slots = createSlots(maxConcurrentRequests);
  const crlCache = new Map<string, CacheEntry>();
  const ocspCache = new Map<string, CacheEntry>();
  /** Each cache holds at most maxCacheEntries answers; the oldest stored goes first (a Map keeps insertion order). */
  const remember = (cache: Map<string, CacheEntry>, key: string, entry: CacheEntry) => {
    cache.delete(key);
    cache.set(key, entry);
    while (cache.size > maxCacheEntries) cache.delete(cache.keys().next().value as string);
  };

  const cached = (cache: Map<string, CacheEntry>, key: string): Uint8Array | undefined => {
    const entry = cache.get(key);
    if (entry && entry.expires > options.now().getTime()) return entry.der;
    cache.delete(key);
    return undefined;
  };

  async function fetchCrl(url: string): Promise<Uint8Array> {
    const hit = cached(crlCache, url);
    if (hit) return hit;
    let der = await slots.run(() =>
      requestRevocationData({ url, method: 'GET', maxBytes: maxCrlBytes, timeoutMs, allow }),
    );
    if (Buffer.from(der.subarray(0, 10)).toString('latin1').startsWith('-----BEGIN')) {
      const base64 = Buffer.from(der)
        .toString('latin1')
        .replace(/-----[^-]+-----/g, '')
        .replace(/\s+/g, '');
      der = new Uint8Array(Buffer.from(base64, 'base64'));
    }
    const crl = parseCrl(der);
    if (!crl) throw new FetchError('the answer is not a CRL');
    // Cached until nextUpdate; a CRL without one is not cached (it cannot be used anyway).
    if (crl.nextUpdate) remember(crlCache, url, { der, expires: crl.nextUpdate.getTime() });
    return der;
  }

  async function fetchOcsp(
    url: string,
    certificate: ParsedCertificate,
    issuer: ParsedCertificate,
  ): Promise<Uint8Array> {
    const key = `${url}|${certificate.fingerprint}`;
    const hit = cached(ocspCache, key);
    if (hit) return hit;
    const request = new pkijs.OCSPRequest();
    await request.createForCertificate(certificate.certificate, {
      hashAlgorithm: 'SHA-256',
      issuerCertificate: issuer.certificate,
    });
    const der = await slots.run(() =>
      requestRevocationData({
        url,
        method: 'POST',
        contentType: 'application/ocsp-request',
        body: new Uint8Array(request.toSchema(true).toBER()),
        maxBytes: maxOcspBytes,
        timeoutMs,
        allow,
      }),
    );
    const parsed = parseOcspResponse(der);
    if (!parsed) throw new FetchError('the answer is not a successful OCSP response');
    const nextUpdates = parsed.basic.tbsResponseData.responses
      .map((r) => r.nextUpdate?.getTime())
      .filter((t): t is number => t !== undefined);
    if (nextUpdates.length > 0) remember(ocspCache, key, { der, expires: Math.min(...nextUpdates) });
    return der;
  }

  return {
    async fetchFor(endEntity, intermediates, anchors = []) {
      const result: FetchedRevocation = { crls: [], ocspResponses: [], problems: [] };
      let chain: ParsedCertificate[];
      let issuers: ParsedCertificate[];
      try {
        chain = [parseCertificate(endEntity), ...intermediates.map(parseCertificate)];
        issuers = [...chain, ...anchors.map(parseCertificate)];
      } catch (error) {
        result.problems.push(`a certificate could not be parsed: ${(error as Error).message}`);
        return result;
      }
      const crlDownloads = new Map<string, Promise<Uint8Array>>();
      const tasks: Promise<void>[] = [];
      for (const certificate of chain) {
        const issuer = issuers.find((c) => c.subject === certificate.issuer && c !== certificate);
        const urls = issuer ? ocspUrls(certificate).slice(0, maxUrlsPerCertificate) : [];
        for (const url of urls) {
          tasks.push(
            fetchOcsp(url, certificate, issuer as ParsedCertificate).then(
              (der) => void result.ocspResponses.push(der),
              (error: Error) => void result.problems.push(`OCSP ${url}: ${error.message}`),
            ),
          );
        }
        for (const url of crlUrls(certificate).slice(0, maxUrlsPerCertificate)) {
          if (crlDownloads.has(url)) continue;
          const download = fetchCrl(url);
          crlDownloads.set(url, download);
          tasks.push(
            download.then(
              (der) => void result.crls.push(der),
              (error: Error) => void result.problems.push(`CRL ${url}: ${error.message}`),
            ),
          );
        }
      }
      await Promise.all(tasks);
      return result;
    },
  };
}

/** At most `limit` of the given jobs run at once; the others wait their turn. */
function createSlots(limit: number) {
  let running = 0;
  const waiting: Array<() => void> = [];
  return {
    async run<T>(job: () => Promise<T>): Promise<T> {
      if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
      running++;
      try {
        return await job();
      } finally {
        running--;
        waiting.shift()?.();
      }
    },
  };
}

/** Whether a result needs no fetching: every certificate's status is known, or it is refused for another reason. */
function settledWithoutNetwork(result: PathValidationResult): boolean {
  if (!result.ok) return result.code !== 'REVOCATION_UNKNOWN';
  return result.revocation.every((status) => status === 'good-crl' || status === 'good-ocsp');
}

/**
 * validateCertificatePath with revocation information fetched for its path (added to any given). The path is
 * validated without revocation first, with no network at all: only when it reaches one of our trust anchors is
 * anything fetched, and then only for the certificates of that path, never for the rest of what a sender put in
 * the message. The CRLs and OCSP responses given (at hand, or embedded in a signature; checked like fetched ones:
 * signature, issuer, freshness at `input.time`) are tried first: when they settle every certificate, nothing is
 * fetched. A success's `path` is that path (end entity first, anchor last): store it, not the bag.
 */
export async function validateCertificatePathFetchingRevocation(
  input: PathValidationInput,
  fetcher: RevocationFetcher,
): Promise<PathValidationResult & { fetchProblems: string[] }> {
  const structural = validateCertificatePath({ ...input, revocation: 'off' });
  if (!structural.ok || input.revocation === 'off') return { ...structural, fetchProblems: [] };
  if ((input.crls?.length ?? 0) + (input.ocspResponses?.length ?? 0) > 0) {
    const withGiven = validateCertificatePath(input);
    if (settledWithoutNetwork(withGiven)) return { ...withGiven, fetchProblems: [] };
  }
  const intermediates = structural.path.slice(1, -1);
  const anchor = structural.path[structural.path.length - 1] as Uint8Array;
  const fetched = await fetcher.fetchFor(input.endEntity, intermediates, [anchor]);
  const result = validateCertificatePath({
    ...input,
    intermediates,
    crls: [...(input.crls ?? []), ...fetched.crls],
    ocspResponses: [...(input.ocspResponses ?? []), ...fetched.ocspResponses],
  });
  if (!result.ok && result.code === 'REVOCATION_UNKNOWN' && fetched.problems.length > 0) {
    return { ...result, reason: `${result.reason} (${fetched.problems.join('; ')})`, fetchProblems: fetched.problems };
  }
  // Which of the answers were fetched here (the same bytes given as well count as given).
  const given = new Set([...(input.crls ?? []), ...(input.ocspResponses ?? [])].map(sha256Of));
  const originOf = (evidence: RevocationEvidence): RevocationEvidence =>
    given.has(evidence.sha256) ? evidence : { ...evidence, origin: 'fetched' };
  if (result.ok) {
    return {
      ...result,
      ...(result.revocationEvidence
        ? { revocationEvidence: result.revocationEvidence.map((e) => (e ? originOf(e) : undefined)) }
        : {}),
      fetchProblems: fetched.problems,
    };
  }
  return {
    ...result,
    ...(result.revocationEvidence ? { revocationEvidence: originOf(result.revocationEvidence) } : {}),
    fetchProblems: fetched.problems,
  };
}

function sha256Of(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}
