// Fetches the revocation information validateCertificatePath needs: OCSP (RFC 6960, POST) from the
// certificate's authorityInfoAccess, CRLs from its distribution points (http/https only), each with a timeout
// and a size cap, cached until the answer's nextUpdate. Never throws: what could not be fetched is reported
// in `problems`, and validation then fails closed (REVOCATION_UNKNOWN) in `require` mode.
import * as pkijs from 'pkijs';
import { EXT, type ParsedCertificate, parseCertificate } from './certificate.ts';
import { distributionPointUris } from './distribution-points.ts';
import { parseCrl } from './revocation-crl.ts';
import { parseOcspResponse } from './revocation-ocsp.ts';
import type { PathValidationInput, PathValidationResult } from './types.ts';
import { validateCertificatePath } from './validate-certificate-path.ts';

const OCSP_ACCESS_METHOD = '1.3.6.1.5.5.7.48.1';

export interface RevocationFetcherOptions {
  /** Per request; default 5000 ms. */
  timeoutMs?: number;
  /** Default 10 MiB: CRLs of large CAs are big. */
  maxCrlBytes?: number;
  /** Default 64 KiB. */
  maxOcspBytes?: number;
  /** The injected clock, used for cache expiry. */
  now: () => Date;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
}

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

async function readCapped(response: Response, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > maxBytes) throw new FetchError(`the answer is larger than ${maxBytes} bytes`);
  const reader = response.body?.getReader();
  if (!reader) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw new FetchError(`the answer is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return new Uint8Array(Buffer.concat(chunks));
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
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxCrlBytes = options.maxCrlBytes ?? 10 * 1024 * 1024;
  const maxOcspBytes = options.maxOcspBytes ?? 64 * 1024;
  const fetchImpl = options.fetch ?? fetch;
  const crlCache = new Map<string, CacheEntry>();
  const ocspCache = new Map<string, CacheEntry>();

  const cached = (cache: Map<string, CacheEntry>, key: string): Uint8Array | undefined => {
    const entry = cache.get(key);
    if (entry && entry.expires > options.now().getTime()) return entry.der;
    cache.delete(key);
    return undefined;
  };

  async function fetchCrl(url: string): Promise<Uint8Array> {
    const hit = cached(crlCache, url);
    if (hit) return hit;
    const response = await fetchImpl(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
    if (!response.ok) throw new FetchError(`HTTP ${response.status}`);
    let der = await readCapped(response, maxCrlBytes);
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
    if (crl.nextUpdate) crlCache.set(url, { der, expires: crl.nextUpdate.getTime() });
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
    const response = await fetchImpl(url, {
      method: 'POST',
      headers: { 'content-type': 'application/ocsp-request' },
      body: new Uint8Array(request.toSchema(true).toBER()),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
    if (!response.ok) throw new FetchError(`HTTP ${response.status}`);
    const der = await readCapped(response, maxOcspBytes);
    const parsed = parseOcspResponse(der);
    if (!parsed) throw new FetchError('the answer is not a successful OCSP response');
    const nextUpdates = parsed.basic.tbsResponseData.responses
      .map((r) => r.nextUpdate?.getTime())
      .filter((t): t is number => t !== undefined);
    if (nextUpdates.length > 0) ocspCache.set(key, { der, expires: Math.min(...nextUpdates) });
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
        const urls = issuer ? ocspUrls(certificate) : [];
        for (const url of urls) {
          tasks.push(
            fetchOcsp(url, certificate, issuer as ParsedCertificate).then(
              (der) => void result.ocspResponses.push(der),
              (error: Error) => void result.problems.push(`OCSP ${url}: ${error.message}`),
            ),
          );
        }
        for (const url of crlUrls(certificate)) {
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

/** validateCertificatePath after fetching revocation information for the given certificates (added to any given). */
export async function validateCertificatePathFetchingRevocation(
  input: PathValidationInput,
  fetcher: RevocationFetcher,
): Promise<PathValidationResult & { fetchProblems: string[] }> {
  const fetched =
    input.revocation === 'off'
      ? { crls: [], ocspResponses: [], problems: [] }
      : await fetcher.fetchFor(
          input.endEntity,
          input.intermediates ?? [],
          input.trustAnchors.map((anchor) => anchor.certificate),
        );
  const result = validateCertificatePath({
    ...input,
    crls: [...(input.crls ?? []), ...fetched.crls],
    ocspResponses: [...(input.ocspResponses ?? []), ...fetched.ocspResponses],
  });
  if (!result.ok && result.code === 'REVOCATION_UNKNOWN' && fetched.problems.length > 0) {
    return { ...result, reason: `${result.reason} (${fetched.problems.join('; ')})`, fetchProblems: fetched.problems };
  }
  return { ...result, fetchProblems: fetched.problems };
}
