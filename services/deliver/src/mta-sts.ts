// MTA-STS (RFC 8461) for mail to the outside. A recipient domain's policy is discovered and fetched here, not by
// mx-connect (through mailauth): the fetch is an HTTPS request to wherever a stranger's `mta-sts.<domain>` points, and
// mailauth connected to any public address there, the agencies' own included (their relay, their networks: the
// gateway knocking on port 443 inside the closed network on a stranger's behalf), read the answer without a size bound
// and had only an idle timeout. Here the name is resolved once, every address it has is checked (`refuse`), the
// request goes to the checked address (no second lookup, no DNS rebinding), follows no redirect (RFC 8461 §3.3: only a
// 200 counts) and is bounded in time and size. A policy that cannot be had counts as none, unless one is cached and
// unexpired (RFC 8461 §5.1). mx-connect still applies the policy to each MX host (mxConnectMtaSts).
import { request } from 'node:https';
import { LRUCache } from 'lru-cache';
import type { MTASTSPolicy } from 'mailauth';
import { parsePolicy, resolvePolicy } from 'mailauth/lib/mta-sts.js';

/** A DNS question as mx-connect asks it (A: string[], AAAA: string[], TXT: string[][], MX: records). */
export type DnsResolve = (name: string, type: string) => Promise<unknown>;

export interface MtaStsFetch {
  resolve: DnsResolve;
  /** Why the policy host may not be contacted at this address, or undefined when it may. */
  refuse: (address: string) => Promise<string | undefined>;
  /** The whole request, connect to last byte. */
  timeoutMs: number;
  maxBytes: number;
  /** TESTS ONLY: a port other than 443, and the CA of the test's HTTPS server. */
  testOnly?: { port: number; ca: string | Buffer };
}

/** RFC 8461 §3.3 suggests bounding the fetch; a policy is a few lines. */
export const MTA_STS_MAX_BYTES = 64 * 1024;
export const MTA_STS_TIMEOUT_MS = 15_000;
/** After a failed fetch (no cached policy), how long the domain counts as having none before it is tried again. */
export const MTA_STS_RETRY_MS = 60 * 60_000;
/** Domains whose policy (or failure) is kept at most, and their bytes: strangers' domains can be made many. */
const MAX_DOMAINS = 10_000;
const MAX_CACHE_BYTES = 4 * 1024 * 1024;

export class MtaStsFetchError extends Error {
  readonly code = 'MTA_STS_FETCH_FAILED';
  constructor(message: string) {
    super(message);
    this.name = 'MtaStsFetchError';
  }
}

const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA']);

async function addressesOf(name: string, resolve: DnsResolve): Promise<string[]> {
  // As mailauth does: the IPv4 addresses, or the IPv6 ones when there are none.
  for (const type of ['A', 'AAAA']) {
    try {
      const answer = await resolve(name, type);
      const addresses = Array.isArray(answer) ? answer.filter((a): a is string => typeof a === 'string') : [];
      if (addresses.length > 0) return addresses;
    } catch (err) {
      if (!NOT_FOUND.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    }
  }
  return [];
}

/** Fetches and parses the policy of `domain` as described above; rejects when there is none to be had. */
export async function fetchMtaStsPolicy(domain: string, fetch: MtaStsFetch): Promise<MTASTSPolicy> {
  const host = `mta-sts.${domain}`;
  const addresses = await addressesOf(host, fetch.resolve);
  const first = addresses[0];
  if (!first) throw new MtaStsFetchError(`${host} has no address`);
  for (const address of addresses) {
    // One refused address refuses the name: a resolver that answers a public and an internal one is not trusted.
    const why = await fetch.refuse(address);
    if (why) throw new MtaStsFetchError(`${host} is at ${address}: ${why}; not contacted`);
  }
  return parsePolicy(await policyText(first, host, fetch));
}

function policyText(address: string, host: string, fetch: MtaStsFetch): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        host: address,
        port: fetch.testOnly?.port ?? 443,
        path: '/.well-known/mta-sts.txt',
        method: 'GET',
        headers: { host },
        servername: host,
        rejectUnauthorized: true,
        ...(fetch.testOnly ? { ca: fetch.testOnly.ca } : {}),
        agent: false,
      },
      (response) => {
        if (response.statusCode !== 200) {
          response.resume();
          // 3xx included: a redirect is never followed (RFC 8461 §3.3).
          return fail(
            new MtaStsFetchError(`https://${host}/.well-known/mta-sts.txt answered HTTP ${response.statusCode}`),
          );
        }
        const chunks: Buffer[] = [];
        let total = 0;
        response.on('data', (chunk: Buffer) => {
          total += chunk.length;
          if (total > fetch.maxBytes)
            return fail(new MtaStsFetchError(`the policy of ${host} is over ${fetch.maxBytes} bytes`));
          chunks.push(chunk);
        });
        response.on('end', () => {
          clearTimeout(deadline);
          resolve(Buffer.concat(chunks));
        });
        response.on('error', fail);
      },
    );
    const deadline = setTimeout(
      () => fail(new MtaStsFetchError(`no policy from ${host} within ${fetch.timeoutMs} ms`)),
      fetch.timeoutMs,
    );
    outgoing.on('error', fail);
    outgoing.end();

    function fail(err: Error) {
      clearTimeout(deadline);
      outgoing.destroy();
      reject(err);
    }
  });
}

/** What is kept per domain: the policy of a TXT id, or none (a failed fetch) until `expiresAt`. */
interface KnownPolicy {
  id: string;
  policy?: MTASTSPolicy;
  expiresAt: number;
}

export interface MtaStsPolicies {
  /** The policy to apply to mail for `domain`, or undefined for none. Never rejects. */
  policyFor(domain: string): Promise<MTASTSPolicy | undefined>;
}

/**
 * Policies discovered, fetched and kept as RFC 8461 §5.1 says, in a bounded cache (least recently used go first).
 * `onFetchFailed` hears of every policy that could not be fetched (for the log).
 */
export function createMtaStsPolicies(
  fetch: MtaStsFetch,
  options: { now?: () => number; onFetchFailed?: (domain: string, err: Error) => void } = {},
): MtaStsPolicies {
  const now = options.now ?? Date.now;
  const known = new LRUCache<string, KnownPolicy>({
    max: MAX_DOMAINS,
    maxSize: MAX_CACHE_BYTES,
    sizeCalculation: (value, key) => JSON.stringify(value.policy ?? null).length + key.length + 64,
  });
  const asking = new Map<string, Promise<MTASTSPolicy | undefined>>();

  async function discover(domain: string): Promise<MTASTSPolicy | undefined> {
    const kept = known.get(domain);
    const cached = kept && kept.expiresAt > now() ? kept : undefined;
    let id: string | false;
    try {
      id = await resolvePolicy(domain, { resolver: fetch.resolve as never });
    } catch {
      return cached?.policy; // DNS failed: an unexpired policy still holds
    }
    // No TXT record: the cached policy holds until it expires (RFC 8461 §5.1), a removed record ends nothing early.
    if (!id) return cached?.policy;
    if (cached && cached.id === id) return cached.policy;
    try {
      const policy = await fetchMtaStsPolicy(domain, fetch);
      known.set(domain, { id, policy, expiresAt: now() + (policy.maxAge ?? 0) * 1000 });
      return policy;
    } catch (err) {
      options.onFetchFailed?.(domain, err as Error);
      if (cached) return cached.policy;
      // None for now, asked again after a while (as mailauth did), so a failing host is not asked per connection.
      known.set(domain, { id, expiresAt: now() + MTA_STS_RETRY_MS });
      return undefined;
    }
  }

  return {
    policyFor(domain) {
      const key = domain.toLowerCase();
      let question = asking.get(key);
      if (!question) {
        question = discover(key).finally(() => asking.delete(key));
        asking.set(key, question);
      }
      return question;
    },
  };
}

/** The id mailauth compares: ours, as it only has to equal itself. */
const GIVEN_ID = 'smgw';

/**
 * The mx-connect options that make it apply `policy` (undefined: none) to each MX host while fetching nothing itself.
 * mx-connect asks mailauth's getPolicy with the cached policy, and getPolicy first asks the `_mta-sts` TXT record:
 * this resolver answers it with the id of the policy handed in (no record when there is none), so mailauth renews that
 * policy instead of fetching one (mailauth 5.0.1: a known policy of the same id without `expires` is renewed). As a
 * backstop it answers no address for any `mta-sts.` name, so a mailauth that decided to fetch after all could connect
 * nowhere (an MX host named `mta-sts.…` could not be reached either; none is known).
 */
export function mxConnectMtaSts(policy: MTASTSPolicy | undefined, resolve: DnsResolve) {
  const noRecord = (name: string) =>
    Object.assign(new Error(`${name}: no record (MTA-STS is applied by deliver)`), { code: 'ENODATA' });
  return {
    mtaSts: {
      enabled: true,
      cache: { get: () => (policy ? { ...policy, id: GIVEN_ID, expires: undefined } : false), set: () => {} },
    },
    resolveRecords: async (name: string, type: string): Promise<unknown> => {
      const lower = name.toLowerCase();
      if (type === 'TXT' && lower.startsWith('_mta-sts.')) {
        if (!policy) throw noRecord(name);
        return [[`v=STSv1; id=${GIVEN_ID}`]];
      }
      if ((type === 'A' || type === 'AAAA') && lower.startsWith('mta-sts.')) return [];
      return resolve(name, type);
    },
  };
}
