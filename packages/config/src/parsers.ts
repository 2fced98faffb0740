// Parsers of raw environment values and the Setting type.
import { domainToASCII } from 'node:url';
import ipaddr from 'ipaddr.js';

/** Reads one environment value; returns the parsed value or throws a plain message saying what is wrong. */
export type Parser<T> = (raw: string) => T;

export interface Setting<T, Always extends boolean = boolean> {
  readonly env: string;
  readonly parse: Parser<T>;
  /** Raw default (parsed like a real value); undefined = optional or required. */
  readonly fallback: string | undefined;
  readonly required: boolean;
  readonly secret: boolean;
  readonly help: string;
  /** Type-level only: true when the loaded value is never undefined (it has a default or is required). */
  readonly always?: Always;
}

/** A setting with a default (or, with `required`, one that must be given): its value is always there. */
export function setting<T>(
  env: string,
  parse: Parser<T>,
  fallback: string,
  help: string,
  options?: { secret?: boolean },
): Setting<T, true>;
export function setting<T>(
  env: string,
  parse: Parser<T>,
  fallback: undefined,
  help: string,
  options: { secret?: boolean; required: true },
): Setting<T, true>;
export function setting<T>(
  env: string,
  parse: Parser<T>,
  fallback: undefined,
  help: string,
  options?: { secret?: boolean; required?: false },
): Setting<T, false>;
export function setting<T>(
  env: string,
  parse: Parser<T>,
  fallback: string | undefined,
  help: string,
  options: { secret?: boolean; required?: boolean } = {},
): Setting<T> {
  return { env, parse, fallback, help, secret: options.secret ?? false, required: options.required ?? false };
}

// --- parsers -------------------------------------------------------------------------------------------------------

export const text: Parser<string> = (raw) => raw;

/** A secret people or scripts present (a bearer token): long enough that guessing it is hopeless. */
export function secretToken(minChars: number): Parser<string> {
  return (raw) => {
    if (raw.trim() !== raw || /\s/.test(raw)) throw new Error('must not contain white space');
    if (raw.length < minChars)
      throw new Error(`must be at least ${minChars} characters (for example: openssl rand -base64 ${minChars})`);
    return raw;
  };
}

export function integer(min: number, max: number): Parser<number> {
  return (raw) => {
    if (!/^\d+$/.test(raw.trim())) throw new Error('must be a whole number');
    const n = Number(raw);
    if (n < min || n > max) throw new Error(`must be between ${min} and ${max}`);
    return n;
  };
}

export const port: Parser<number> = integer(0, 65535);

export const bool: Parser<boolean> = (raw) => {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new Error('must be true or false');
};

/** One of a fixed set of words (lower-cased). */
export function oneOf<const T extends string>(values: readonly T[]): Parser<T> {
  return (raw) => {
    const v = raw.trim().toLowerCase();
    if (!(values as readonly string[]).includes(v)) throw new Error(`must be one of ${values.join(', ')}`);
    return v as T;
  };
}

export function url(protocols: string[]): Parser<string> {
  return (raw) => {
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      throw new Error('is not a URL');
    }
    if (!protocols.includes(parsed.protocol)) throw new Error(`must start with ${protocols.join(' or ')}//`);
    return raw;
  };
}

export interface HostPort {
  host: string;
  port: number;
}

export const hostPort: Parser<HostPort> = (raw) => {
  const match = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(raw.trim());
  if (!match) throw new Error('must be host:port');
  const p = Number(match[2]);
  if (p < 1 || p > 65535) throw new Error('port must be between 1 and 65535');
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port: p };
};

export const hostPortList: Parser<HostPort[]> = (raw) => {
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0) throw new Error('must list at least one host:port');
  return list.map((item) => hostPort(item));
};

const DOMAIN = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * A domain as the gateway compares it: IDNA A-label (xn--…), lower case, no trailing dot; '' when it is not a
 * valid domain name. Every comparison with the agency domains goes through this, so `BEHOERDE.example.`,
 * `behörde.example` and `xn--behrde-fxa.example` are judged alike.
 */
export function normalizeDomain(domain: string): string {
  const bare = domain.trim().replace(/\.$/, '');
  // An address literal ([192.0.2.1], [IPv6:…]) is no name: it is compared as written.
  if (/^\[[^\]]+\]$/.test(bare)) return bare.toLowerCase();
  const ascii = domainToASCII(bare.toLowerCase());
  return ascii.length <= 253 && HOST_NAME.test(ascii) ? ascii : '';
}

/** Dot-separated labels of 1 to 63 letters, digits, hyphens or underscores. */
const HOST_NAME = /^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$/;

/** Comma-separated domains, as A-labels; `*.example.org` matches every subdomain (not example.org itself). */
export const domainList: Parser<string[]> = (raw) => {
  const list = domainListOrEmpty(raw);
  if (list.length === 0) throw new Error('must list at least one domain');
  return list;
};

/** Like domainList, but empty is allowed. */
const domainListOrEmpty: Parser<string[]> = (raw) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((d) => {
      const wildcard = d.startsWith('*.');
      const normal = normalizeDomain(wildcard ? d.slice(2) : d);
      const result = wildcard ? `*.${normal}` : normal;
      if (!normal || !DOMAIN.test(result)) throw new Error(`"${d}" is not a domain (wildcards as *.example.org)`);
      return result;
    });

/**
 * Comma-separated addresses and domains (`*.example.org` allowed), possibly empty: an exception list. Domains are
 * normalised like domainList, addresses to `local@domain` with the local part lower-cased.
 */
export const domainOrAddressList: Parser<string[]> = (raw) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((item) => {
      const at = item.lastIndexOf('@');
      if (at < 0) return domainListOrEmpty(item)[0] as string;
      const local = item.slice(0, at).toLowerCase();
      const domain = normalizeDomain(item.slice(at + 1));
      if (!local || /[\s@"%!]/.test(local) || !domain || !DOMAIN.test(domain))
        throw new Error(`"${item}" is not an address or a domain`);
      return `${local}@${domain}`;
    });

/** Is `address` one of the list's addresses, or in one of its domains (domainOrAddressList)? */
export function inAddressesOrDomains(address: string, list: string[]): boolean {
  const at = address.lastIndexOf('@');
  if (at <= 0) return false;
  const normal = `${address.slice(0, at).toLowerCase()}@${normalizeDomain(address.slice(at + 1))}`;
  const domains = list.filter((item) => !item.includes('@'));
  return list.includes(normal) || inDomains(address, domains);
}

export type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** Comma-separated networks in CIDR notation (a bare address means that one address). */
export const cidrList: Parser<Cidr[]> = (raw) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((item) => {
      try {
        if (item.includes('/')) return ipaddr.parseCIDR(item);
        const addr = ipaddr.parse(item);
        return [addr, addr.kind() === 'ipv4' ? 32 : 128] as Cidr;
      } catch {
        throw new Error(`"${item}" is not a network like 10.0.0.0/8`);
      }
    });

/**
 * Comma-separated DNS servers (`192.0.2.53`, `192.0.2.53:5353`, `[2001:db8::53]:53`), possibly empty (the system's),
 * in the form node:dns `setServers` takes.
 */
export const dnsServerList: Parser<string[]> = (raw) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((item) => {
      const bracketed = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(item);
      const v4 = /^([0-9.]+)(?::(\d{1,5}))?$/.exec(item);
      const [address, portText] = bracketed
        ? [bracketed[1] as string, bracketed[2]]
        : v4
          ? [v4[1] as string, v4[2]]
          : [item, undefined];
      const p = portText === undefined ? 53 : Number(portText);
      if (!ipaddr.isValid(address) || p < 1 || p > 65535) {
        throw new Error(`"${item}" is not a DNS server address like 192.0.2.53 or [2001:db8::53]:53`);
      }
      if (portText === undefined) return address;
      return address.includes(':') ? `[${address}]:${p}` : `${address}:${p}`;
    });

/** Networks and single endpoints an outgoing connection may reach although they are not public. */
export interface AllowList {
  networks: Cidr[];
  endpoints: HostPort[];
}

/** Comma-separated CIDR networks (`10.0.0.0/8`, a bare address) and `host:port` endpoints; may be empty. */
export const allowList: Parser<AllowList> = (raw) => {
  const result: AllowList = { networks: [], endpoints: [] };
  for (const item of raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (/^\[?[0-9a-fA-F:.]+\]?(\/\d+)?$/.test(item) && (item.includes('/') || ipaddr.isValid(item))) {
      result.networks.push(...cidrList(item));
      continue;
    }
    try {
      result.endpoints.push(hostPort(item));
    } catch {
      throw new Error(`"${item}" is neither a network like 10.0.0.0/8 nor host:port`);
    }
  }
  return result;
};

/** Comma-separated delays like "5m,30m,2h,1d"; the retry ladder of a stage. */
export const delayList: Parser<number[]> = (raw) => {
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0) throw new Error('must list at least one delay');
  return list.map((item) => {
    const match = /^(\d+)(ms|s|m|h|d)$/.exec(item);
    if (!match) throw new Error(`"${item}" is not a delay like 30s, 5m, 2h or 1d`);
    const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'ms'];
    const ms = Number(match[1]) * factor;
    if (ms < 100) throw new Error(`"${item}" is shorter than 100ms`);
    return ms;
  });
};

/**
 * Which reverse proxies in front of a web listener are trusted to name the client (X-Forwarded-For): `off` (the
 * default: the socket's address is the client) or comma-separated addresses/CIDR networks, in the form fastify's
 * `trustProxy` takes. Never "everyone": a forged header would then choose the client address of rate limits.
 */
export const trustedProxies: Parser<false | string[]> = (raw) => {
  const value = raw.trim().toLowerCase();
  if (value === 'off' || value === 'false' || value === 'no') return false;
  const networks = cidrList(raw).map(([address, bits]) => `${address.toString()}/${bits}`);
  if (networks.length === 0) throw new Error('must be off or proxy addresses/networks like 10.0.0.0/8');
  return networks;
};

/** One duration like "30d", "12h" or "90s" (retention periods). */
export const duration: Parser<number> = (raw) => {
  const [ms, ...more] = delayList(raw);
  if (ms === undefined || more.length > 0) throw new Error('must be one duration like 30d, 12h or 90s');
  return ms;
};

/** A base64 key of exactly `bytes` bytes (the master key, say). */
export function base64Key(bytes: number): Parser<Buffer> {
  return (raw) => {
    const key = Buffer.from(raw.trim(), 'base64');
    if (key.length !== bytes || key.toString('base64') !== raw.trim())
      throw new Error(`must be ${bytes} bytes in base64`);
    return key;
  };
}

/** Does `address` (an IP as the socket gives it) lie in one of the networks? */
export function inNetworks(address: string, networks: Cidr[]): boolean {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.process(address); // folds ::ffff:1.2.3.4 to IPv4
  } catch {
    return false;
  }
  return networks.some(([net, bits]) => parsed.kind() === net.kind() && parsed.match([net, bits] as never));
}

/**
 * Do two client addresses (as the socket gives them) lie in one network of what one holder gets cheaply: an IPv4 /24,
 * an IPv6 /48 (ingest counts connections the same way)? An address that does not parse is its own network.
 */
export function sameNetwork(a: string, b: string): boolean {
  let first: ipaddr.IPv4 | ipaddr.IPv6;
  let second: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    first = ipaddr.process(a); // folds ::ffff:1.2.3.4 to IPv4
    second = ipaddr.process(b);
  } catch {
    return a === b;
  }
  if (first.kind() !== second.kind()) return false;
  return first.match(second as never, first.kind() === 'ipv4' ? 24 : 48);
}

/**
 * The IPv4 address an IPv6 one carries to it, where a translator or relay on the path would deliver it there: the
 * NAT64 well-known prefix 64:ff9b::/96 (RFC 6052) and 6to4 2002::/16 (RFC 3056). (inNetworks folds ::ffff: itself.)
 */
export function embeddedIpv4(address: string): string | undefined {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(address.split('%')[0] ?? '');
  } catch {
    return undefined;
  }
  if (parsed.kind() !== 'ipv6') return undefined;
  const w = (parsed as ipaddr.IPv6).parts;
  const v4 = (high: number, low: number) => `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
  if (w[0] === 0x64 && w[1] === 0xff9b && w.slice(2, 6).every((x) => x === 0)) return v4(w[6] ?? 0, w[7] ?? 0);
  if (w[0] === 0x2002) return v4(w[1] ?? 0, w[2] ?? 0);
  return undefined;
}

/** Does the domain of `address` (or a bare domain) belong to the agency domains (wildcards allowed)? */
export function inDomains(addressOrDomain: string, domains: string[]): boolean {
  const at = addressOrDomain.lastIndexOf('@');
  const domain = normalizeDomain(at >= 0 ? addressOrDomain.slice(at + 1) : addressOrDomain);
  if (!domain) return false;
  return domains.some((d) => (d.startsWith('*.') ? domain.endsWith(d.slice(1)) : domain === d));
}
