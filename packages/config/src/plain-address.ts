// One rule for "one plain address", shared by every door and the way out: ingest refuses at RCPT what deliver would
// refuse to send (so no 250 turns into a bounce for the address's spelling), the portal's forms take only such
// addresses, and deliver routes, guards and sends nothing else.
import { normalizeDomain } from './parsers.ts';

/** Letters, digits and the atext specials of RFC 5322 §3.2.3 except `%` and `!` (routes, see isPlainAddress). */
const ATEXT = "[A-Za-z0-9#$&'*+/=?^_`{|}~\\-]|[^\\x00-\\x7f]";
/**
 * A local part of atext and dots: what nodemailer sends bare, as written (anything else it would quote or re-parse).
 * Dots anywhere (leading, trailing, doubled), unlike a strict dot-atom: such legacy addresses exist, and
 * addressparser reads them back unchanged.
 */
const LOCAL_PART = new RegExp(`^(?:${ATEXT}|\\.)+$`, 'u');

/** RFC 5321 §4.5.3.1.3: a path of at most 256 octets, its angle brackets included, so an address of at most 254. */
export const MAX_ADDRESS_OCTETS = 254;

/**
 * Is `address` longer than a path may be (RFC 5321 §4.5.3.1.3: 254 octets of UTF-8 without the brackets), as written or
 * with its domain's A-labels (the spelling the gateway keeps and sends)? The domain alone normalizeDomain holds to 253.
 * The 64 octets §4.5.3.1.1 gives a local part are not enforced, as smtp-server does not: forwarders' envelope senders
 * (SRS, BATV, Gmail's forwarding addresses) go beyond them, and §4.5.3.1 asks for no limit where none is needed. Without
 * this the portal's forms took 320 characters, and ingest 253 characters of any width (smtp-server counts characters).
 */
export function addressTooLong(address: string): boolean {
  if (Buffer.byteLength(address) > MAX_ADDRESS_OCTETS) return true;
  return Buffer.byteLength(withNormalDomain(address)) > MAX_ADDRESS_OCTETS;
}

/**
 * Is `address` one plain address that every later reader (nodemailer's addressparser before RCPT TO, the next hop)
 * takes for exactly this mailbox? Exactly one `@`; a local part of atext and dots without `%` (the percent hack) or `!`
 * (bang paths), which a server after us might still read as a route (RFC 5321 §3.6.1); a domain name (no address
 * literal) that normalizeDomain accepts; no white space, control characters, quotes, brackets, comments or list
 * separators anywhere; no longer than a path may be (addressTooLong).
 */
export function isPlainAddress(address: string): boolean {
  return plainAddressDomain(address) !== undefined;
}

/** The domain of a plain address (isPlainAddress) as normalizeDomain writes it, found once; undefined otherwise. */
function plainAddressDomain(address: string): string | undefined {
  if (Buffer.byteLength(address) > MAX_ADDRESS_OCTETS) return undefined;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
  if (/[\s\x00-\x1f\x7f]/u.test(address)) return undefined;
  const at = address.indexOf('@');
  if (at <= 0 || at !== address.lastIndexOf('@')) return undefined;
  const domain = address.slice(at + 1);
  if (!LOCAL_PART.test(address.slice(0, at)) || /[<>()[\]\\,;:"]/.test(domain)) return undefined;
  const normal = normalizeDomain(domain);
  // Not longer than a path may be with the domain's A-labels either (addressTooLong).
  if (normal === '' || Buffer.byteLength(address) - Buffer.byteLength(domain) + normal.length > MAX_ADDRESS_OCTETS) {
    return undefined;
  }
  return normal;
}

/**
 * Top-level labels of names that never denote a host on the internet, so never a domain outside to mail: loopback
 * (`localhost`, RFC 6761 §6.3), the local link (`local`, mDNS, RFC 6762), private networks (`internal`, reserved by
 * ICANN for private use in 2024), names that must not resolve (`invalid`, RFC 6761 §6.4), the DNS's own infrastructure
 * (`arpa`, RFC 3172: reverse lookups, `home.arpa` of RFC 8375) and other name spaces (`onion`, RFC 7686; `alt`,
 * RFC 9476). `test` and `example` (RFC 2606) stay: they are for tests and documentation, the test worlds use them,
 * and the public DNS has none (deliver bounces them, 5.1.2).
 */
export const NOT_INTERNET_TOP_LABELS: ReadonlySet<string> = new Set([
  'localhost',
  'local',
  'internal',
  'invalid',
  'onion',
  'alt',
  'arpa',
]);

/**
 * Is `address` one the gateway may send to outside the closed network (an address a stranger may have chosen)? One
 * plain address (isPlainAddress) whose domain is a name of the internet: at least two labels (a bare host such as
 * `localhost` or `mail` is looked up wherever the gateway runs), a top label that is no number (`192.0.2.1`, and
 * `127.1` or `0x7f.1`, which normalizeDomain reads as 127.0.0.1: mx-connect connects to an address it is given without
 * asking the DNS for an MX), and none of NOT_INTERNET_TOP_LABELS. Agencies' own domains are judged by their
 * configuration (SMGW_INTERNAL_DOMAINS), not by this: call it for addresses outside them.
 */
export function isInternetAddress(address: string): boolean {
  const domain = plainAddressDomain(address);
  if (domain === undefined) return false;
  const labels = domain.split('.');
  const top = labels.at(-1) ?? '';
  if (labels.length < 2 || /^(?:[0-9]+|0x[0-9a-f]*)$/.test(top)) return false;
  return !NOT_INTERNET_TOP_LABELS.has(top);
}

/**
 * `address` with its domain as the gateway compares domains (normalizeDomain: the A-label, lower case), the local part
 * as written; unchanged when the domain is no name. One mailbox has one spelling then: `bürger@bücher.example` and
 * `bürger@xn--bcher-kva.example` are one recipient.
 */
export function withNormalDomain(address: string): string {
  const at = address.lastIndexOf('@');
  if (at <= 0) return address;
  const domain = normalizeDomain(address.slice(at + 1));
  return domain ? `${address.slice(0, at)}@${domain}` : address;
}
