// The portal commands of the operator CLI: mailbox, registration, agency portal-reachable. Each wraps one admin API
// call (mailbox-routes.ts, agency-registration-routes.ts, portal-reachable-routes.ts).
import type { CliCall } from './cli-key-directory.ts';
import { oneLine } from './terminal-safe.ts';

export const PORTAL_USAGE = `  mailbox show <address> [--json]     a portal mailbox: state, logins, usage and quota, messages per folder,
                                      the live activation link (no secrets), warnings, recent audit events
  mailbox lock|unlock <address>       lock a mailbox (its owner's sessions end at their next request) or
                                      unlock it (recorded with --operator)
  mailbox resend-activation <address> a new link and PIN: earlier ones stop working; the mailbox service
                                      mails the link now and the PIN after SMGW_PIN_DELAY
  mailbox delete <address> --confirm <address>
                                      delete the mailbox with its messages and data key (cannot be undone)
  registration list [--state pending|accepted|rejected|all] [--json]
                                      agency registrations from the portal's form (default: pending)
  registration show <id> [--json]
  registration accept <id> [--note "..."]
                                      create the agency with the registered domains (then add its
                                      addresses and keys with agency address / agency key)
  registration reject <id> --note "..."
  agency portal-reachable <agency-id> <address> on|off
                                      whether portal users may write new messages to the address
  agency portal-reachable list        the addresses portal users may write to`;

export interface PortalValues {
  json: boolean;
  state?: string | undefined;
  note?: string | undefined;
  confirm?: string | undefined;
  operator?: string | undefined;
}

/** A failed call or bad usage: the CLI prints the message and exits 1. */
export class PortalCliError extends Error {}

const enc = encodeURIComponent;

function expect(status: number[], answer: { status: number; body: unknown }): void {
  if (status.includes(answer.status)) return;
  const e = (answer.body as { error?: { code?: string; message?: string } })?.error;
  throw new PortalCliError(
    e
      ? `${e.code}: ${e.message} (HTTP ${answer.status})`
      : `HTTP ${answer.status}: ${String(answer.body).slice(0, 200)}`,
  );
}

interface MailboxView {
  address: string;
  state: string;
  createdAt: string;
  activatedAt: string | null;
  lastLoginAt: string | null;
  usage: { bytes: number; quotaBytes: number };
  folders: Record<string, { messages: number; bytes: number; unread: number }>;
  activationToken: {
    purpose: string;
    expiresAt: string;
    expired: boolean;
    pinMailSent: boolean;
    pinMailDueAt: string;
    wrongPins: number;
  } | null;
  warnings: Array<{ kind: string; sentAt: string; deletionDueAt: string }>;
  audit: Array<{ event: string; actor: string; at: string }>;
}

interface Registration {
  id: string;
  agencyName: string;
  contactName: string;
  contactEmail: string;
  contactPhone: string | null;
  domains: string[];
  note: string | null;
  state: string;
  createdAt: string;
  decidedBy: string | null;
  decisionNote: string | null;
  agencyId: string | null;
}

const mb = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MB`;

export function formatMailbox(m: MailboxView): string {
  const token = m.activationToken;
  const lines = [
    `${m.address}  ${m.state}`,
    `  created ${m.createdAt}  activated ${m.activatedAt ?? '-'}  last login ${m.lastLoginAt ?? '-'}`,
    `  usage ${mb(m.usage.bytes)} of ${mb(m.usage.quotaBytes)}`,
    `  folders ${Object.entries(m.folders)
      .map(([folder, c]) => `${folder} ${c.messages} (${c.unread} unread)`)
      .join(', ')}`,
    token
      ? `  activation link (${token.purpose}) ${token.expired ? 'expired' : 'valid until'} ${token.expiresAt}; PIN mail ${
          token.pinMailSent ? 'sent' : `due ${token.pinMailDueAt}`
        }; wrong PINs ${token.wrongPins}`
      : '  no live activation link',
    ...m.warnings.map((w) => `  warning ${w.kind} sent ${w.sentAt}, deletion due ${w.deletionDueAt}`),
    ...(m.audit.length ? ['  recent events:', ...m.audit.map((e) => `    ${e.at}  ${e.event}  by ${e.actor}`)] : []),
  ];
  return `${lines.join('\n')}\n`;
}

export function formatRegistration(r: Registration): string {
  const decided =
    r.state === 'pending' ? '' : `  ${r.state} by ${r.decidedBy}${r.agencyId ? ` as agency ${r.agencyId}` : ''}`;
  // One line, whatever the registering stranger typed (a line break would print a registration of its own).
  return oneLine(
    `${r.id}  ${r.state.padEnd(8)}  ${r.agencyName}  domains: ${r.domains.join(', ')}  contact: ${r.contactName} <${
      r.contactEmail
    }>${r.contactPhone ? ` ${r.contactPhone}` : ''}${decided}${r.decisionNote ? `  note: ${r.decisionNote}` : ''}`,
  );
}

/** Runs one portal command; returns what to print (text or, with --json, the API's answer). */
export async function runPortalCommand(
  command: string,
  positional: string[],
  values: PortalValues,
  call: CliCall,
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const [action, ...args] = positional;
  const operator = values.operator ?? env.SMGW_OPERATOR;
  const headers: Record<string, string> = operator ? { 'x-smgw-operator': operator } : {};
  const show = (body: unknown, text: () => string) => (values.json ? `${JSON.stringify(body, null, 2)}\n` : text());

  switch (`${command} ${action ?? ''}`) {
    case 'mailbox show': {
      const address = args[0];
      if (!address) throw new PortalCliError('usage: mailbox show <address>');
      const answer = await call('GET', `/mailboxes/${enc(address)}`);
      expect([200], answer);
      return show(answer.body, () => formatMailbox(answer.body as MailboxView));
    }
    case 'mailbox lock':
    case 'mailbox unlock': {
      const address = args[0];
      if (!address) throw new PortalCliError(`usage: mailbox ${action} <address> [--operator <name>]`);
      const answer = await call('POST', `/mailboxes/${enc(address)}/${action}`, { headers });
      expect([200], answer);
      const mailbox = answer.body as MailboxView;
      return show(answer.body, () => `${mailbox.address}: ${mailbox.state}\n`);
    }
    case 'mailbox resend-activation': {
      const address = args[0];
      if (!address) throw new PortalCliError('usage: mailbox resend-activation <address> [--operator <name>]');
      const answer = await call('POST', `/mailboxes/${enc(address)}/resend-activation`, { headers });
      expect([202], answer);
      const sent = answer.body as { address: string; expiresAt: string; pinMailDueAt: string };
      return show(
        answer.body,
        () =>
          `${sent.address}: new activation link (valid until ${sent.expiresAt}); earlier links and PINs revoked; ` +
          `link mail due now, PIN mail due ${sent.pinMailDueAt}\n`,
      );
    }
    case 'mailbox delete': {
      const address = args[0];
      if (!address || !values.confirm) {
        throw new PortalCliError('usage: mailbox delete <address> --confirm <address>  (cannot be undone)');
      }
      const answer = await call('DELETE', `/mailboxes/${enc(address)}?confirm=${enc(values.confirm)}`, { headers });
      expect([200], answer);
      const gone = answer.body as { address: string; messages: number; bytes: number };
      return show(answer.body, () => `deleted ${gone.address}: ${gone.messages} messages, ${mb(gone.bytes)}\n`);
    }
    case 'registration list': {
      const query = new URLSearchParams({ state: values.state ?? 'pending' });
      const answer = await call('GET', `/agency-registrations?${query}`);
      expect([200], answer);
      const { registrations } = answer.body as { registrations: Registration[] };
      return show(answer.body, () =>
        registrations.length === 0
          ? `no ${values.state && values.state !== 'all' ? `${values.state} ` : ''}registrations\n`
          : `${registrations.map(formatRegistration).join('\n')}\n`,
      );
    }
    case 'registration show': {
      const id = args[0];
      if (!id) throw new PortalCliError('usage: registration show <id>');
      const answer = await call('GET', `/agency-registrations/${enc(id)}`);
      expect([200], answer);
      const r = answer.body as Registration;
      return show(answer.body, () => `${formatRegistration(r)}${r.note ? `\n  their note: ${oneLine(r.note)}` : ''}\n`);
    }
    case 'registration accept': {
      const id = args[0];
      if (!id) throw new PortalCliError('usage: registration accept <id> [--note "..."] [--operator <name>]');
      const answer = await call('POST', `/agency-registrations/${enc(id)}/accept`, {
        body: values.note === undefined ? {} : { note: values.note },
        headers,
      });
      expect([200], answer);
      const { registration, agencyId } = answer.body as { registration: Registration; agencyId: string };
      return show(
        answer.body,
        () =>
          `accepted: agency ${agencyId} "${registration.agencyName}" with ${registration.domains.join(', ')}\n` +
          `next: agency address ${agencyId} <address>, agency key ${agencyId} <address> <file>\n`,
      );
    }
    case 'registration reject': {
      const id = args[0];
      if (!id || !values.note) throw new PortalCliError('usage: registration reject <id> --note "why"');
      const answer = await call('POST', `/agency-registrations/${enc(id)}/reject`, {
        body: { note: values.note },
        headers,
      });
      expect([200], answer);
      return show(answer.body, () => `${formatRegistration(answer.body as Registration)}\n`);
    }
    case 'agency portal-reachable': {
      if (args[0] === 'list') {
        const answer = await call('GET', '/portal-reachable-addresses');
        expect([200], answer);
        const { addresses } = answer.body as {
          addresses: Array<{ address: string; agencyId: string; agencyName: string }>;
        };
        return show(answer.body, () =>
          addresses.length === 0
            ? 'no addresses are reachable from the portal\n'
            : `${addresses.map((a) => `${a.address}  ${a.agencyName} (${a.agencyId})`).join('\n')}\n`,
        );
      }
      const [agencyId, address, setting] = args;
      if (!agencyId || !address || (setting !== 'on' && setting !== 'off')) {
        throw new PortalCliError('usage: agency portal-reachable <agency-id> <address> on|off');
      }
      const answer = await call('POST', `/agencies/${enc(agencyId)}/addresses/${enc(address)}/portal-reachable`, {
        body: { reachable: setting === 'on' },
        headers,
      });
      expect([200], answer);
      const result = answer.body as { address: string; portalReachable: boolean };
      return show(
        answer.body,
        () => `${result.address}: ${result.portalReachable ? 'reachable' : 'not reachable'} from the portal\n`,
      );
    }
    default:
      throw new PortalCliError(`unknown command "${command} ${action ?? ''}"\n${PORTAL_USAGE}`);
  }
}
