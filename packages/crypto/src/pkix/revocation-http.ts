// The only way the gateway reaches out for revocation information (CRL, OCSP), and so the only place a stranger's
// certificate could steer it: URLs in a certificate are chosen by whoever issued it. So every request here is
// http(s) only, follows no redirect, has a deadline and a size cap, and goes only to a public address: the name is
// resolved once, every address it resolves to is checked, and the socket connects to the checked address (no DNS
// rebinding between check and connect). Loopback, private, link-local, multicast and other special ranges are
// refused unless the operator listed them (SMGW_REVOCATION_ALLOW: an internal CRL server, or a test's own).
import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * SMGW_REVOCATION_ALLOW, as @smgw/config parses it: networks (CIDR) and single `host:port` endpoints that may be
 * reached although they are loopback, private, link-local or otherwise special.
 */
export interface RevocationAllow {
  networks: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]>;
  endpoints: Array<{ host: string; port: number }>;
}

export const NOTHING_ALLOWED: RevocationAllow = { networks: [], endpoints: [] };

/** ipaddr.js range names that are public unicast; everything else is special and refused unless allowed. */
const PUBLIC_RANGES = new Set(['unicast']);

/**
 * Why an address may not be connected to, or undefined when it may. `allowedBy` names the setting that lists `allow`
 * ('' when none does: deliver's MTA-STS fetch).
 */
export function refusedAddress(
  address: string,
  port: number,
  hostname: string,
  allow: RevocationAllow,
  allowedBy = 'SMGW_REVOCATION_ALLOW',
): string | undefined {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.process(address); // ::ffff:10.0.0.1 is judged as 10.0.0.1
  } catch {
    return `${address} is not an IP address`;
  }
  const allowed =
    allow.networks.some(([net, bits]) => parsed.kind() === net.kind() && parsed.match([net, bits] as never)) ||
    allow.endpoints.some(
      (e) => e.port === port && (e.host.toLowerCase() === hostname.toLowerCase() || sameAddress(e.host, parsed)),
    );
  if (allowed) return undefined;
  const range = parsed.range();
  if (PUBLIC_RANGES.has(range)) return undefined;
  return `${parsed.toString()} is a ${range} address${allowedBy ? ` (not listed in ${allowedBy})` : ''}`;
}

function sameAddress(host: string, address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  try {
    return ipaddr.process(host).toString() === address.toString();
  } catch {
    return false;
  }
}

export class RevocationHttpError extends Error {
  readonly code: 'REVOCATION_URL_REFUSED' | 'REVOCATION_FETCH_FAILED';
  constructor(code: RevocationHttpError['code'], message: string) {
    super(message);
    this.name = 'RevocationHttpError';
    this.code = code;
  }
}

export interface RevocationRequest {
  url: string;
  method: 'GET' | 'POST';
  body?: Uint8Array;
  contentType?: string;
  maxBytes: number;
  timeoutMs: number;
  allow: RevocationAllow;
}

/** One request as described above; resolves to the body of a 2xx answer, or rejects with RevocationHttpError. */
export async function requestRevocationData(request: RevocationRequest): Promise<Uint8Array> {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    throw new RevocationHttpError('REVOCATION_URL_REFUSED', 'not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new RevocationHttpError('REVOCATION_URL_REFUSED', `${url.protocol} URLs are not fetched`);
  }
  if (url.username || url.password) throw new RevocationHttpError('REVOCATION_URL_REFUSED', 'URL with credentials');
  const https = url.protocol === 'https:';
  const port = Number(url.port || (https ? 443 : 80));
  const hostname = url.hostname.replace(/^\[|\]$/g, '');

  // An address literal is never looked up by node:net, so it is checked here; a name is checked in `lookup`.
  if (isIP(hostname)) {
    const why = refusedAddress(hostname, port, hostname, request.allow);
    if (why) throw new RevocationHttpError('REVOCATION_URL_REFUSED', why);
  }
  const lookup: LookupFunction = (name, options, callback) => {
    dnsLookup(name, { all: true, verbatim: true }).then(
      (addresses) => {
        const refused = addresses.map((a) => refusedAddress(a.address, port, hostname, request.allow)).find(Boolean);
        const first = addresses[0];
        if (refused || !first) {
          const error = new RevocationHttpError('REVOCATION_URL_REFUSED', refused ?? `${name} has no address`);
          return callback(error, '', 4);
        }
        // Every address the name has was checked (a resolver that mixes one public and one internal address is
        // refused outright); the connection goes to the first, exactly the address checked.
        if ((options as { all?: boolean }).all) return callback(null, [first] as never);
        callback(null, first.address, first.family);
      },
      (error: Error) => callback(error as NodeJS.ErrnoException, '', 4),
    );
  };

  const options: RequestOptions = {
    method: request.method,
    host: hostname,
    port,
    path: `${url.pathname}${url.search}`,
    headers: {
      ...(request.contentType ? { 'content-type': request.contentType } : {}),
      ...(request.body ? { 'content-length': String(request.body.byteLength) } : {}),
      // A revocation answer is DER; nothing else is useful to ask for.
      accept: request.method === 'POST' ? 'application/ocsp-response' : 'application/pkix-crl, */*;q=0.1',
    },
    agent: false,
    lookup,
    timeout: request.timeoutMs,
    ...(https ? { servername: isIP(hostname) ? undefined : hostname } : {}),
  };

  return new Promise<Uint8Array>((resolve, reject) => {
    const deadline = setTimeout(
      () => fail(new RevocationHttpError('REVOCATION_FETCH_FAILED', `no answer within ${request.timeoutMs} ms`)),
      request.timeoutMs,
    );
    const outgoing = (https ? httpsRequest : httpRequest)(options, (response: IncomingMessage) => {
      const status = response.statusCode ?? 0;
      if (status < 200 || status > 299) {
        response.resume();
        // 3xx included: a redirect is never followed (it could point anywhere).
        return fail(new RevocationHttpError('REVOCATION_FETCH_FAILED', `HTTP ${status}`));
      }
      const declared = Number(response.headers['content-length'] ?? '0');
      if (declared > request.maxBytes) return fail(tooLarge());
      const chunks: Buffer[] = [];
      let total = 0;
      response.on('data', (chunk: Buffer) => {
        total += chunk.length;
        if (total > request.maxBytes) return fail(tooLarge());
        chunks.push(chunk);
      });
      response.on('end', () => {
        clearTimeout(deadline);
        resolve(new Uint8Array(Buffer.concat(chunks)));
      });
      response.on('error', (error) => fail(error));
    });
    outgoing.on('error', (error) => fail(error));
    outgoing.on('timeout', () =>
      fail(new RevocationHttpError('REVOCATION_FETCH_FAILED', `no answer within ${request.timeoutMs} ms`)),
    );
    outgoing.end(request.body ? Buffer.from(request.body) : undefined);

    function tooLarge() {
      return new RevocationHttpError('REVOCATION_FETCH_FAILED', `the answer is larger than ${request.maxBytes} bytes`);
    }
    function fail(error: Error) {
      clearTimeout(deadline);
      outgoing.destroy();
      reject(
        error instanceof RevocationHttpError
          ? error
          : new RevocationHttpError('REVOCATION_FETCH_FAILED', error.message),
      );
    }
  });
}
