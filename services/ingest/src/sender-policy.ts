// Who may send through the submission listener: a client in SMGW_SUBMISSION_NETWORKS, or one that authenticated
// (after STARTTLS); either way the envelope sender must be in an agency domain, and an authenticated account only
// in the sender domains of that account. The inbound listener takes any sender (including the null sender) except
// an agency's own: only agencies speak for agencies, and they do so through submission.
import { inAddressesOrDomains, inDomains } from '@smgw/config';
import { routeOf } from './recipient-policy.ts';
import type { ReplyCode } from './smtp-replies.ts';

export interface SubmissionSender {
  /** MAIL FROM address; '' for the null reverse-path. */
  address: string;
  /** The client address lies in SMGW_SUBMISSION_NETWORKS. */
  trustedNetwork: boolean;
  /** The authenticated account, if the client used AUTH. */
  account: { username: string; senderDomains: string[] } | undefined;
}

export type SenderDecision = { accept: true } | { accept: false; code: ReplyCode };

export function decideSubmissionSender(sender: SubmissionSender, internalDomains: string[]): SenderDecision {
  if (!sender.trustedNetwork && !sender.account) return { accept: false, code: 'AUTH_REQUIRED' };
  if (routeOf(sender.address, internalDomains) !== 'agency') return { accept: false, code: 'SENDER_NOT_ALLOWED' };
  if (sender.account && !inDomains(sender.address, sender.account.senderDomains)) {
    return { accept: false, code: 'SENDER_NOT_ALLOWED' };
  }
  return { accept: true };
}

/**
 * The MX port refuses an agency domain as envelope sender: mail from the internet claiming to come from an agency
 * would otherwise be delivered inside as the agency's own (and its bounces trusted). `exceptions` lists agency
 * addresses or domains that legitimately send from outside (SMGW_MX_AGENCY_SENDER_EXCEPTIONS).
 */
export function decideInboundSender(address: string, internalDomains: string[], exceptions: string[]): SenderDecision {
  if (address === '') return { accept: true };
  const route = routeOf(address, internalDomains);
  if (route === 'invalid') return { accept: false, code: 'SENDER_INVALID' };
  if (route === 'agency' && !inAddressesOrDomains(address, exceptions)) {
    return { accept: false, code: 'AGENCY_SENDER_FROM_OUTSIDE' };
  }
  return { accept: true };
}
