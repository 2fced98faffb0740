// Who may send through the submission listener: a client in SMGW_SUBMISSION_NETWORKS, or one that authenticated
// (after STARTTLS). Which addresses it may use (as envelope sender here, in From and Sender in submission-header.ts):
// always agency addresses only; an authenticated account only the addresses it owns or those of a domain it was
// granted (@smgw/submission-accounts); a trusted network without AUTH any address of the agency domains. The inbound
// listener takes any sender (including the null sender) except an agency's own: only agencies speak for agencies,
// and they do so through submission.
import { addressTooLong, inAddressesOrDomains, inDomains, normalizeDomain } from '@smgw/config';
import { accountMayUse, type SubmissionAccount } from '@smgw/submission-accounts';
import { routeOf } from './recipient-policy.ts';
import type { ReplyCode } from './smtp-replies.ts';

/** Who is sending on the submission listener. */
export interface SubmissionClient {
  /** The client address lies in SMGW_SUBMISSION_NETWORKS. */
  trustedNetwork: boolean;
  /** The authenticated account, if the client used AUTH: then its rights, not the network's, count. */
  account: SubmissionAccount | undefined;
}

export interface SubmissionSender extends SubmissionClient {
  /** MAIL FROM address; '' for the null reverse-path. */
  address: string;
}

export type SenderDecision = { accept: true } | { accept: false; code: ReplyCode };

/** May this client use `address` as envelope sender, From or Sender? */
export function mayUseSenderAddress(client: SubmissionClient, address: string, internalDomains: string[]): boolean {
  if (routeOf(address, internalDomains) !== 'agency') return false;
  if (client.account) return accountMayUse(client.account, address);
  return client.trustedNetwork;
}

export function decideSubmissionSender(sender: SubmissionSender, internalDomains: string[]): SenderDecision {
  if (!sender.trustedNetwork && !sender.account) return { accept: false, code: 'AUTH_REQUIRED' };
  if (addressTooLong(sender.address)) return { accept: false, code: 'SENDER_TOO_LONG' };
  if (!mayUseSenderAddress(sender, sender.address, internalDomains)) {
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
  if (addressTooLong(address)) return { accept: false, code: 'SENDER_TOO_LONG' };
  const route = routeOf(address, internalDomains);
  if (route === 'invalid') return { accept: false, code: 'SENDER_INVALID' };
  if (route === 'agency' && !inAddressesOrDomains(address, exceptions)) {
    return { accept: false, code: 'AGENCY_SENDER_FROM_OUTSIDE' };
  }
  return { accept: true };
}

/**
 * The MX port's rule for the From and Sender fields, as for the envelope sender: the internet may not write an
 * agency address there (an agency employee would read the message as her colleague's), except the listed ones. Judged
 * by the domain alone: a local part no router would take (`chefin%x@`) still reads as the agency's. Fails closed: a
 * domain that is no name (`behoerde.example..`, `[behoerde.example]`) is judged as a reader sees it (without brackets
 * and trailing dots), and one that cannot be read as a name even then is refused, since we cannot tell whose it is.
 */
export function mayAppearAsInboundAuthor(address: string, internalDomains: string[], exceptions: string[]): boolean {
  const domain = address.slice(address.lastIndexOf('@') + 1);
  const shown = shownDomain(address);
  const readable = normalizeDomain(domain) !== '';
  if (!readable && normalizeDomain(shown) === '') return false;
  if (!inDomains(domain, internalDomains) && !inDomains(shown, internalDomains)) return true;
  return readable && inAddressesOrDomains(address, exceptions);
}

// Matched only from the first dot of a run: /\.+$/ tried again from each dot of a run that does not end the domain
// (quadratic: a From domain of 100,000 dots and a letter took 5 s of the MX port, the 1 MiB a header may hold minutes).
const TRAILING_DOTS = /(?<!\.)\.+$/;

/** The domain of an address as a reader sees it: without brackets and trailing dots (`a@[bank.example.]`). */
export function shownDomain(address: string): string {
  return address
    .slice(address.lastIndexOf('@') + 1)
    .trim()
    .replace(/^\[(.*)\]$/, '$1')
    .trim()
    .replace(TRAILING_DOTS, '');
}
