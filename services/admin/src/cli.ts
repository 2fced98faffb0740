#!/usr/bin/env node
// The operator CLI: wraps the admin API (SPEC.md). `./smgw <command>` or `pnpm smgw <command>`.
// Reads SMGW_ADMIN_URL (default http://127.0.0.1:8081/api/v1) and SMGW_ADMIN_TOKEN.
import { parseArgs } from 'node:util';
import type { QuarantineEntry } from '@smgw/quarantine';
import { KEY_DIRECTORY_USAGE, KeyDirectoryCliError, runKeyDirectoryCommand } from './cli-key-directory.ts';
import { PORTAL_USAGE, PortalCliError, runPortalCommand } from './cli-portal.ts';
import { formatQuarantineEntry, formatQuarantineList } from './format-quarantine.ts';
import { formatTrace } from './format-trace.ts';
import { terminalSafe } from './terminal-safe.ts';

const USAGE = `operator commands (talk to the admin API):
  trace <message-id> [--json]         every stage, outcome, time and reason of a message, per recipient
  quarantine list [--all] [--json]    quarantined messages, newest first (open ones; --all: released too)
             [--limit n] [--before <id>]
  quarantine show <id> [--json]       one quarantine entry: finding, sender, recipients, release
  quarantine release <id> [--reason "..."] [--operator <name>]
                                      let the message continue its route (recorded with who and why)
${KEY_DIRECTORY_USAGE}
${PORTAL_USAGE}
  account add <username> --address a [--address a2 ...] [--domain d ...]
                                      a submission account for SMTP AUTH on 2587, allowed to send as those
                                      addresses (envelope sender, From, Sender) and, with --domain, as every
                                      address of those domains; the password comes from SMGW_ACCOUNT_PASSWORD
                                      (or --password)
  account list [--json]               submission accounts (never their passwords)
  account disable|enable <username> [--operator <name>]
                                      a disabled account cannot AUTH, and its open sessions are refused at their
                                      next MAIL FROM
  account password <username> [--operator <name>]
                                      a new password (from SMGW_ACCOUNT_PASSWORD); sessions that logged in with
                                      the old one are refused at their next MAIL FROM
  account addresses <username> --address a [--address a2 ...] [--domain d ...] [--operator <name>]
                                      replace the addresses (and the domain grant: none without --domain) the
                                      account may send as; open sessions send by them from their next MAIL FROM
  account delete <username> [--operator <name>]
                                      delete the account; its open sessions are refused at their next MAIL FROM
  help                                this text
settings: SMGW_ADMIN_URL (default http://127.0.0.1:8081/api/v1), SMGW_ADMIN_TOKEN,
          SMGW_OPERATOR (default operator name for release, trust add, cert add|withdraw|reinstate,
                         pgp approve|reject, agency signing, mailbox lock|unlock|resend-activation|delete,
                         registration accept|reject, agency portal-reachable,
                         account disable|enable|password|addresses|delete)`;

const OPTIONS = {
  json: { type: 'boolean' },
  all: { type: 'boolean' },
  limit: { type: 'string' },
  before: { type: 'string' },
  reason: { type: 'string' },
  operator: { type: 'string' },
  help: { type: 'boolean' },
  address: { type: 'string', multiple: true },
  state: { type: 'string' },
  domain: { type: 'string', multiple: true },
  'verify-signatures': { type: 'boolean' },
  password: { type: 'string' },
  note: { type: 'string' },
  confirm: { type: 'string' },
} as const;

export async function runCli(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // Everything printed goes through terminalSafe: much of it was written by strangers.
  const out = (text: string) => process.stdout.write(terminalSafe(text));
  const base = (env.SMGW_ADMIN_URL ?? `http://127.0.0.1:${env.SMGW_ADMIN_PORT ?? '8081'}/api/v1`).replace(/\/$/, '');

  async function call(
    method: string,
    path: string,
    options: { body?: unknown; raw?: { bytes: Buffer; type: string }; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; body: unknown }> {
    if (!env.SMGW_ADMIN_TOKEN) throw new CliError('SMGW_ADMIN_TOKEN is not set (./smgw up prints it)');
    const headers: Record<string, string> = { authorization: `Bearer ${env.SMGW_ADMIN_TOKEN}`, ...options.headers };
    let payload: Uint8Array | string | undefined;
    if (options.raw) {
      headers['content-type'] = options.raw.type;
      payload = new Uint8Array(options.raw.bytes);
    } else if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(options.body);
    }
    let res: Response;
    try {
      res = await fetch(base + path, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
    } catch (err) {
      throw new CliError(`cannot reach the admin API at ${base}: ${(err as Error).cause ?? (err as Error).message}`);
    }
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {}
    return { status: res.status, body };
  }

  function print(json: boolean, body: unknown, text: () => string): void {
    out(json ? `${JSON.stringify(body, null, 2)}\n` : text());
  }

  try {
    let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
    try {
      parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    } catch (err) {
      throw new CliError(`${(err as Error).message}\n${USAGE}`);
    }
    const { values } = parsed;
    const [command, ...positional] = parsed.positionals;
    const json = values.json === true;
    if (values.help) {
      out(`${USAGE}\n`);
      return 0;
    }
    const keyDirectoryCommand = (command: string, positional: string[]) =>
      runKeyDirectoryCommand(
        command,
        positional,
        {
          json,
          all: values.all === true,
          // The key directory's lists filter by one --address; pgp approve names every one given.
          address: values.address?.at(-1),
          addresses: values.address,
          state: values.state,
          domain: values.domain,
          verifySignatures: values['verify-signatures'] === true,
          password: values.password,
          operator: values.operator,
          reason: values.reason,
        },
        call,
        env,
      );
    switch (command) {
      case 'trace':
      case 'message': {
        const id = positional[0];
        if (!id) throw new CliError('usage: trace <message-id>');
        const { status, body } = await call('GET', `/messages/${encodeURIComponent(id)}`);
        if (status !== 200) throw new CliError(errorText(status, body));
        print(json, body, () => formatTrace(body as never));
        return 0;
      }
      case 'quarantine': {
        const [action, id] = positional;
        switch (action) {
          case 'list':
          case undefined: {
            const query = new URLSearchParams({ state: values.all ? 'all' : 'open' });
            if (values.limit) query.set('limit', values.limit);
            if (values.before) query.set('before', values.before);
            const { status, body } = await call('GET', `/quarantine?${query}`);
            if (status !== 200) throw new CliError(errorText(status, body));
            const page = body as { entries: QuarantineEntry[]; nextBefore: string | null };
            print(json, body, () => {
              const more = page.nextBefore ? `more: quarantine list --before ${page.nextBefore}\n` : '';
              return formatQuarantineList(page.entries) + more;
            });
            return 0;
          }
          case 'show': {
            if (!id) throw new CliError('usage: quarantine show <id>');
            const { status, body } = await call('GET', `/quarantine/${encodeURIComponent(id)}`);
            if (status !== 200) throw new CliError(errorText(status, body));
            print(json, body, () => formatQuarantineEntry(body as QuarantineEntry));
            return 0;
          }
          case 'release': {
            if (!id) throw new CliError('usage: quarantine release <id> [--reason "..."] [--operator <name>]');
            const operator = values.operator ?? env.SMGW_OPERATOR;
            const { status, body } = await call('POST', `/quarantine/${encodeURIComponent(id)}/release`, {
              body: values.reason === undefined ? {} : { reason: values.reason },
              headers: operator ? { 'x-smgw-operator': operator } : {},
            });
            if (status !== 200) throw new CliError(errorText(status, body));
            const released = body as { entry: QuarantineEntry; queuedFor: string };
            print(
              json,
              body,
              () =>
                `released ${released.entry.id} (message ${released.entry.messageId}) by ${released.entry.releasedBy}: queued for ${released.queuedFor}\n`,
            );
            return 0;
          }
          default:
            throw new CliError(`unknown quarantine command "${action}"\n${USAGE}`);
        }
      }
      case 'mailbox':
      case 'registration':
      case 'agency': {
        if (command === 'agency' && positional[0] !== 'portal-reachable') {
          out(await keyDirectoryCommand(command, positional));
          return 0;
        }
        const output = await runPortalCommand(
          command,
          positional,
          { json, state: values.state, note: values.note, confirm: values.confirm, operator: values.operator },
          call,
          env,
        );
        out(output);
        return 0;
      }
      case 'trust':
      case 'cert':
      case 'pgp': {
        out(await keyDirectoryCommand(command, positional));
        return 0;
      }
      case 'account': {
        const action = positional[0];
        if (action === 'list') {
          const { status, body } = await call('GET', '/submission-accounts');
          if (status !== 200) throw new CliError(errorText(status, body));
          const accounts = (body as { accounts: ListedAccount[] }).accounts;
          out(json ? `${JSON.stringify(accounts, null, 2)}\n` : accounts.map(accountLine).join(''));
          return 0;
        }
        if (action === 'disable' || action === 'enable' || action === 'password') {
          const username = positional[1];
          if (!username) throw new CliError(`usage: account ${action} <username> [--operator <name>]`);
          const operator = values.operator ?? env.SMGW_OPERATOR;
          const password = values.password ?? env.SMGW_ACCOUNT_PASSWORD;
          if (action === 'password' && !password) {
            throw new CliError('set SMGW_ACCOUNT_PASSWORD (keeps the password out of the process list)');
          }
          const { status, body } = await call(
            'POST',
            `/submission-accounts/${encodeURIComponent(username)}/${action}`,
            {
              ...(action === 'password' ? { body: { password } } : {}),
              headers: operator ? { 'x-smgw-operator': operator } : {},
            },
          );
          if (status !== 200) throw new CliError(errorText(status, body));
          const done = { disable: 'disabled', enable: 'enabled', password: 'new password for' }[action];
          out(json ? `${JSON.stringify(body, null, 2)}\n` : `${done} ${(body as ListedAccount).username}\n`);
          return 0;
        }
        const addresses = values.address ?? [];
        const domains = values.domain ?? [];
        if (action === 'addresses' || action === 'delete') {
          const username = positional[1];
          if (!username || (action === 'addresses' && addresses.length + domains.length === 0)) {
            throw new CliError(
              action === 'delete'
                ? 'usage: account delete <username> [--operator <name>]'
                : 'usage: account addresses <username> --address a [--address a2 ...] [--domain d ...] [--operator <name>]',
            );
          }
          const operator = values.operator ?? env.SMGW_OPERATOR;
          const path = `/submission-accounts/${encodeURIComponent(username)}`;
          const { status, body } = await call(
            action === 'delete' ? 'DELETE' : 'PUT',
            action === 'delete' ? path : `${path}/addresses`,
            {
              ...(action === 'addresses' ? { body: { senderAddresses: addresses, senderDomains: domains } } : {}),
              headers: operator ? { 'x-smgw-operator': operator } : {},
            },
          );
          if (status !== 200) throw new CliError(errorText(status, body));
          const account = body as ListedAccount;
          out(
            json
              ? `${JSON.stringify(body, null, 2)}\n`
              : action === 'delete'
                ? `deleted ${account.username}\n`
                : accountLine(account),
          );
          return 0;
        }
        if (action !== 'add' || !positional[1] || addresses.length + domains.length === 0) {
          throw new CliError(
            'usage: account add <username> --address a [--address a2 ...] [--domain d ...]  (password: SMGW_ACCOUNT_PASSWORD)',
          );
        }
        const password = values.password ?? env.SMGW_ACCOUNT_PASSWORD;
        if (!password) throw new CliError('set SMGW_ACCOUNT_PASSWORD (keeps the password out of the process list)');
        const { status, body } = await call('POST', '/submission-accounts', {
          body: { username: positional[1], password, senderAddresses: addresses, senderDomains: domains },
        });
        if (status !== 201) throw new CliError(errorText(status, body));
        out(json ? `${JSON.stringify(body, null, 2)}\n` : `created ${(body as { username: string }).username}\n`);
        return 0;
      }
      case undefined:
      case 'help':
        out(`${USAGE}\n`);
        return 0;
      default:
        throw new CliError(`unknown command "${command}"\n${USAGE}`);
    }
  } catch (err) {
    if (!(err instanceof CliError) && !(err instanceof KeyDirectoryCliError) && !(err instanceof PortalCliError)) {
      throw err;
    }
    process.stderr.write(terminalSafe(`smgw: ${err.message}\n`));
    return 1;
  }
}

class CliError extends Error {}

interface ListedAccount {
  username: string;
  senderAddresses: string[];
  senderDomains: string[];
  disabled: boolean;
}

/** `username  addresses  domains: d1,d2` (the domain grant only when there is one). */
function accountLine(a: ListedAccount): string {
  const domains = a.senderDomains.length > 0 ? `  domains: ${a.senderDomains.join(',')}` : '';
  return `${a.username}  ${a.senderAddresses.join(',') || '-'}${domains}${a.disabled ? '  (disabled)' : ''}\n`;
}

function errorText(status: number, body: unknown): string {
  const e = (body as { error?: { code?: string; message?: string } })?.error;
  return e ? `${e.code}: ${e.message} (HTTP ${status})` : `HTTP ${status}: ${String(body).slice(0, 200)}`;
}

if (import.meta.main) {
  process.exitCode = await runCli(process.argv.slice(2));
}
