// Who may receive mail through which listener. Never an open relay: the inbound (MX) listener accepts recipients
// in the agency domains only; the submission listener accepts anyone and sorts recipients into internal (agency)
// and outbound (everyone else), which decides each envelope's itinerary.
import { addressTooLong, inDomains, isInternetAddress, isPlainAddress } from '@smgw/config';
import type { Direction } from '@smgw/envelope';
import type { ReplyCode } from './smtp-replies.ts';

export type Listener = 'inbound' | 'submission';

/** Where a recipient address leads, judged by its domain (the part after the only `@`). */
export type RecipientRoute = 'agency' | 'outside' | 'invalid';

/**
 * smtp-server has already parsed the address (one `@`, source route `@a,@b:` dropped as RFC 5321 §4.1.2 asks).
 * This repeats the checks that matter for relaying, so the policy holds even if the parser ever gets laxer: the
 * address must be one plain address (@smgw/config isPlainAddress, the rule deliver sends by), which refuses what a
 * mail server after us might still interpret as a route (RFC 5321 §3.6.1, §4.1.2): a second `@` (bare or quoted), a
 * quoted local part, `%` (the percent hack) and `!` (UUCP bang paths) in the local part, a leftover source route, an
 * address literal, or an empty part. Such an address is not routed at all, on either port, so
 * `u%outside.example@agency` can never reach an agency server that forwards it, and no message is answered 250 for a
 * recipient deliver would then refuse. The domain is compared after IDNA, case and trailing-dot normalisation. An
 * address outside the agency domains must be one of the internet (isInternetAddress): not `x@192.0.2.1`, not
 * `x@localhost`.
 */
export function routeOf(address: string, internalDomains: string[]): RecipientRoute {
  if (!isPlainAddress(address)) return 'invalid';
  if (inDomains(address, internalDomains)) return 'agency';
  // Outside the agencies only a name of the internet (isInternetAddress, the rule deliver sends by): never an IPv4
  // address or a bare host such as localhost, which no mail of the internet comes from and deliver will not mail.
  return isInternetAddress(address) ? 'outside' : 'invalid';
}

export type RecipientDecision = { accept: true; direction: Direction } | { accept: false; code: ReplyCode };

/** May `address` be a recipient on `listener`, and where does it go? */
export function decideRecipient(listener: Listener, address: string, internalDomains: string[]): RecipientDecision {
  if (addressTooLong(address)) return { accept: false, code: 'RECIPIENT_TOO_LONG' };
  const route = routeOf(address, internalDomains);
  if (route === 'invalid') return { accept: false, code: 'RECIPIENT_INVALID' };
  if (listener === 'inbound') {
    return route === 'agency' ? { accept: true, direction: 'inbound' } : { accept: false, code: 'RELAY_DENIED' };
  }
  return { accept: true, direction: route === 'agency' ? 'internal' : 'outbound' };
}

/**
 * The recipients of one accepted message grouped by direction, in a fixed order (inbound, internal, outbound):
 * one envelope per group. Throws if a recipient would not have been accepted (a bug, never a client's doing).
 */
export function groupByDirection(
  listener: Listener,
  recipients: string[],
  internalDomains: string[],
): { direction: Direction; recipients: string[] }[] {
  const groups = new Map<Direction, string[]>();
  for (const recipient of recipients) {
    const decision = decideRecipient(listener, recipient, internalDomains);
    if (!decision.accept) throw new Error(`recipient ${JSON.stringify(recipient)} was not accepted on ${listener}`);
    const group = groups.get(decision.direction) ?? [];
    group.push(recipient);
    groups.set(decision.direction, group);
  }
  const order: Direction[] = ['inbound', 'internal', 'outbound'];
  return order.flatMap((direction) => {
    const group = groups.get(direction);
    return group ? [{ direction, recipients: group }] : [];
  });
}
