// Who may send through the submission listener: a client in SMGW_SUBMISSION_NETWORKS, or one that authenticated
// (after STARTTLS); either way the envelope sender must be in an agency domain, and an authenticated account only
// in the sender domains of that account. The inbound listener takes any sender (including the null sender).
import { inDomains } from '@smgw/config';
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
