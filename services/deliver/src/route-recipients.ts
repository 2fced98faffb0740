// Where each recipient's copy goes next: the agencies' relay, the smarthost, or the recipient domain's MX.
import { domainToASCII } from 'node:url';
import { type HostPort, inDomains, normalizeDomain } from '@smgw/config';

export type Destination =
  /** The agencies' mail servers, tried in the order given. */
  | { kind: 'relay'; key: string; hosts: HostPort[] }
  /** One host for all mail to the outside (SMGW_SMARTHOST). */
  | { kind: 'smarthost'; key: string; host: HostPort }
  /** Direct delivery to the domain's MX hosts. */
  | { kind: 'mx'; key: string; domain: string };

/**
 * A recipient deliver will not hand to any next hop: it is not one plain address (isPlainAddress). Never a
 * Destination, so it can never reach a transport; deliver records it as bounced without sending.
 */
export interface RefusedRecipient {
  kind: 'refused';
  key: 'refused:not-plain-address';
}

/** Where routeRecipient sends a recipient: a destination, or nowhere. */
export type Route = Destination | RefusedRecipient;

const REFUSED: RefusedRecipient = { kind: 'refused', key: 'refused:not-plain-address' };

export interface RoutingTable {
  internalDomains: string[];
  internalRelay: HostPort[];
  smarthost?: HostPort | undefined;
}

/** Recipients that share a destination share one SMTP transaction (refused ones: none at all). */
export interface RecipientGroup {
  destination: Route;
  recipients: string[];
}

/** Letters, digits and the atext specials of RFC 5322 §3.2.3 except `%` and `!` (routes, see isPlainAddress). */
const ATEXT = "[A-Za-z0-9#$&'*+/=?^_`{|}~\\-]|[^\\x00-\\x7f]";
/**
 * A local part of atext and dots: what nodemailer sends bare, as written (anything else it would quote or re-parse).
 * Dots anywhere (leading, trailing, doubled), unlike a strict dot-atom: ingest takes such legacy addresses, and a
 * message it answered 250 for must not bounce here for that (addressparser reads them back unchanged).
 */
const LOCAL_PART = new RegExp(`^(?:${ATEXT}|\\.)+$`, 'u');

/**
 * Is `address` one plain address that every later reader (nodemailer's addressparser before RCPT TO, the next hop)
 * takes for exactly this mailbox? Exactly one `@`; a local part of atext and dots without `%` (the percent hack) or `!`
 * (bang paths), which a server after us might still read as a route (as ingest's recipient policy refuses them);
 * a domain name (no address literal) that normalizeDomain accepts; no white space, control characters, quotes,
 * brackets, comments or list separators anywhere. deliver routes, guards and sends only such addresses, so what it
 * judged is what goes out.
 */
export function isPlainAddress(address: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
  if (/[\s\x00-\x1f\x7f]/u.test(address)) return false;
  const at = address.indexOf('@');
  if (at <= 0 || at !== address.lastIndexOf('@')) return false;
  const domain = address.slice(at + 1);
  if (!LOCAL_PART.test(address.slice(0, at))) return false;
  return !/[<>()[\]\\,;:"]/.test(domain) && normalizeDomain(domain) !== '';
}

/** The domain of an address, lower-cased, in ASCII (punycode) form: MX lookups and grouping need one spelling. */
export function recipientDomain(address: string): string {
  const domain = address
    .slice(address.lastIndexOf('@') + 1)
    .toLowerCase()
    .replace(/\.$/, '');
  return domainToASCII(domain) || domain;
}

function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

export function routeRecipient(recipient: string, table: RoutingTable): Route {
  if (!isPlainAddress(recipient)) return REFUSED;
  if (inDomains(recipient, table.internalDomains)) {
    return {
      kind: 'relay',
      key: `relay:${table.internalRelay.map(formatHostPort).join(',')}`,
      hosts: table.internalRelay,
    };
  }
  if (table.smarthost) {
    return { kind: 'smarthost', key: `smarthost:${formatHostPort(table.smarthost)}`, host: table.smarthost };
  }
  const domain = recipientDomain(recipient);
  return { kind: 'mx', key: `mx:${domain}`, domain };
}

/**
 * Groups recipients by destination, keeping the order in which destinations first appear; recipients that are not
 * plain addresses form a group of their own that is never sent (kind `refused`).
 */
export function groupByDestination(recipients: string[], table: RoutingTable): RecipientGroup[] {
  const groups = new Map<string, RecipientGroup>();
  for (const recipient of recipients) {
    const destination = routeRecipient(recipient, table);
    const group = groups.get(destination.key);
    if (group) group.recipients.push(recipient);
    else groups.set(destination.key, { destination, recipients: [recipient] });
  }
  return [...groups.values()];
}
