// Who a portal user may write to, decided in one place (issue 9): agencies only, never anyone outside.
// - A reply goes to the original's sender, its From address, and only if that is an agency address. Never to its
//   Reply-To or Cc: whoever wrote the original chose those, and could name any outside address there.
// - A new message goes only to agency addresses an operator marked as reachable from the portal
//   (key-directory listPortalReachableAddresses).
// Either way the address must lie in SMGW_INTERNAL_DOMAINS: those are the domains deliver hands to the agencies'
// relay; it refuses to send a portal message anywhere else (outbound-guard.ts), so this check keeps the user from
// seeing "sent" for a message that could never arrive.
import { inDomains, isPlainAddress, normalizeDomain } from '@smgw/config';
import type { Pool } from '@smgw/db';
import { listPortalReachableAddresses } from '@smgw/key-directory';
import { PortalWriteError } from './errors.ts';
import type { ReplyContext } from './reply-context.ts';

/** More recipients than this in one new message are refused. */
export const MAX_RECIPIENTS = 10;

export type RecipientRequest =
  /** A reply: the original's header as readReplyContext read it. */
  | { kind: 'reply'; original: Pick<ReplyContext, 'fromAddresses'> }
  /** A new message: the addresses the user chose from the reachable list. */
  | { kind: 'new'; chosen: readonly string[] };

export interface RecipientRules {
  pool: Pool;
  /** SMGW_INTERNAL_DOMAINS. */
  internalDomains: string[];
}

/**
 * `local@domain` with the local part lower-cased and the domain an A-label; '' when it is not one plain address
 * (@smgw/config isPlainAddress, the rule ingest and deliver apply) with a local part of printable ASCII: agency
 * addresses and the portal user's own.
 */
export function plainAddress(address: string): string {
  const trimmed = address.trim();
  if (!isPlainAddress(trimmed)) return '';
  const at = trimmed.indexOf('@');
  const local = trimmed.slice(0, at).toLowerCase();
  // The portal's own addresses stay ASCII: they are typed into forms and shown in mails to people.
  if (!/^[\x21-\x7e]+$/.test(local)) return '';
  return `${local}@${normalizeDomain(trimmed.slice(at + 1))}`;
}

/** The recipients of the message, normalised. Throws PortalWriteError when the request is not allowed. */
export async function decidePortalRecipients(rules: RecipientRules, request: RecipientRequest): Promise<string[]> {
  if (request.kind === 'reply') {
    const from = request.original.fromAddresses.filter((a) => a !== '');
    if (from.length !== 1 || request.original.fromAddresses.length !== 1) {
      throw new PortalWriteError('REPLY_NO_SENDER', 'the message has no single sender address to reply to');
    }
    const address = plainAddress(from[0] as string);
    if (!address || !inDomains(address, rules.internalDomains)) {
      throw new PortalWriteError('REPLY_SENDER_NOT_AGENCY', 'replies go only to agencies; this sender is none');
    }
    return [address];
  }

  const chosen = [...new Set(request.chosen.map(plainAddress))];
  if (chosen.length === 0 || chosen.includes('')) {
    throw new PortalWriteError(chosen.length === 0 ? 'NO_RECIPIENT' : 'RECIPIENT_NOT_REACHABLE', 'no valid recipient');
  }
  if (chosen.length > MAX_RECIPIENTS) {
    throw new PortalWriteError('TOO_MANY_RECIPIENTS', `at most ${MAX_RECIPIENTS} recipients`);
  }
  const reachable = new Set((await listPortalReachableAddresses(rules.pool)).map((r) => plainAddress(r.address)));
  for (const address of chosen) {
    if (!reachable.has(address) || !inDomains(address, rules.internalDomains)) {
      throw new PortalWriteError('RECIPIENT_NOT_REACHABLE', 'this address cannot be written to from the portal');
    }
  }
  return chosen;
}
