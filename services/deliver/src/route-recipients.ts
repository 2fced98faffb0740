// Where each recipient's copy goes next: the agencies' relay, the smarthost, or the recipient domain's MX.
import { domainToASCII } from 'node:url';
import { type HostPort, inDomains, isInternetAddress, isPlainAddress } from '@smgw/config';

export type Destination =
  /** The agencies' mail servers, tried in the order given. */
  | { kind: 'relay'; key: string; hosts: HostPort[] }
  /** One host for all mail to the outside (SMGW_SMARTHOST). */
  | { kind: 'smarthost'; key: string; host: HostPort }
  /** Direct delivery to the domain's MX hosts. */
  | { kind: 'mx'; key: string; domain: string };

/**
 * A recipient deliver will not hand to any next hop: it is not one plain address (isPlainAddress), it lies outside
 * the agency domains at no name of the internet (isInternetAddress), or its message can never be sent (the outbound
 * guard's bounceAs: encrypt gave it up). Never a Destination, so it can never reach a
 * transport; deliver records it as bounced without sending, with its own answer (`errorCode`, classified by
 * bounce-classification.ts, and `error`, the text of the trace and the DSN's Diagnostic-Code).
 */
export interface RefusedRecipient {
  kind: 'refused';
  key: 'refused:not-plain-address' | 'refused:not-internet-domain' | 'refused:not-encryptable';
  errorCode: string;
  error: string;
}

/** Where routeRecipient sends a recipient: a destination, or nowhere. */
export type Route = Destination | RefusedRecipient;

export const NOT_PLAIN_ADDRESS: RefusedRecipient = {
  kind: 'refused',
  key: 'refused:not-plain-address',
  errorCode: 'ENOTPLAINADDRESS',
  error: 'not one plain address (local@domain); not sent',
};

/**
 * An address outside the agencies at an IPv4 address, a bare host or a special-use name (`x@192.0.2.1`,
 * `x@localhost`): never looked up, never connected to (mx-connect connects to an address given as domain without an
 * MX lookup, to any public one), whoever wrote it (a stranger's MAIL FROM that gets a DSN, a portal registration).
 */
export const NOT_INTERNET_DOMAIN: RefusedRecipient = {
  kind: 'refused',
  key: 'refused:not-internet-domain',
  errorCode: 'ENOTINTERNETDOMAIN',
  error: 'the domain is no name of the internet (an IPv4 address, a bare host or a special-use name); not sent',
};

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
  if (!isPlainAddress(recipient)) return NOT_PLAIN_ADDRESS;
  if (inDomains(recipient, table.internalDomains)) {
    return {
      kind: 'relay',
      key: `relay:${table.internalRelay.map(formatHostPort).join(',')}`,
      hosts: table.internalRelay,
    };
  }
  // Neither to the smarthost: it would look the name up (or connect to the address) in its own network.
  if (!isInternetAddress(recipient)) return NOT_INTERNET_DOMAIN;
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
