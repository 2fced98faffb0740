// The key-directory commands of the operator CLI: trust, cert, pgp, agency. Each wraps one admin API call.
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type {
  Agency,
  AgencyKey,
  CertificateAuditEntry,
  StoredCertificate,
  StoredPgpKey,
  TrustAnchor,
} from '@smgw/key-directory';
import { looksArmoredOpenPgp } from './key-material-bodies.ts';
import { oneLine } from './terminal-safe.ts';

export const KEY_DIRECTORY_USAGE = `  trust add <pem-file>                trust a CA (S/MIME and signature verification)
  trust list                          the trusted CAs
  cert add <pem-file>                 add a recipient certificate (chain allowed, first = the recipient's);
                                      accepted only if it validates now
  cert list [--address a] [--all]     recipient certificates (--all: replaced and withdrawn ones too)
  cert show <fingerprint>             one certificate, with who withdrew or reinstated it, when and why
  cert withdraw <fingerprint> --reason "..."
                                      take a certificate out of use (its holder lost the key, it was harvested
                                      by mistake): used for no address, not brought back by signed mail;
                                      recorded with --operator
  cert reinstate <fingerprint> --reason "..."
                                      use a withdrawn or replaced certificate again, if it validates now and no
                                      newer certificate of its addresses is current (recorded with --operator)
  pgp import <file>                   import an armored OpenPGP public key (pending until approved)
  pgp approve <fingerprint> [--address a ...]
                                      allow a key for encryption to the addresses named (default: all of its
                                      addresses, refused if one has another approved key; a named address moves
                                      from its other key to this one); recorded with --operator
  pgp reject <fingerprint>            refuse a key for encryption (recorded with --operator)
  pgp list [--state pending|approved|rejected] [--address a]
  agency add <name> --domain d [--domain d2 ...]
                                      onboard an agency with its domains; prints its id
  agency list                         agencies with domains, addresses and outbound signing
  agency signing <agency-id> on|off   sign the agency's outbound mail with the sender's key before encryption
                                      (recorded with --operator)
  agency address <agency-id> <address> [--verify-signatures]
                                      add an agency address (or switch its signature verification)
  agency key <agency-id> <address> <file> [--password p]
                                      upload the address's own private key: PKCS#12 (.p12/.pfx) or an armored
                                      OpenPGP private key (.asc); the password
                                      can also come from SMGW_KEY_PASSWORD (keeps it out of the process list)`;

export type CliCall = (
  method: string,
  path: string,
  options?: { body?: unknown; raw?: { bytes: Buffer; type: string }; headers?: Record<string, string> },
) => Promise<{ status: number; body: unknown }>;

export interface KeyDirectoryValues {
  json: boolean;
  all: boolean;
  address?: string | undefined;
  /** Every --address given (pgp approve names several). */
  addresses?: string[] | undefined;
  state?: string | undefined;
  domain?: string[] | undefined;
  verifySignatures: boolean;
  password?: string | undefined;
  operator?: string | undefined;
  /** Why a certificate is withdrawn or reinstated. */
  reason?: string | undefined;
}

/** A failed call or bad usage: the CLI prints the message and exits 1. */
export class KeyDirectoryCliError extends Error {}

const enc = encodeURIComponent;

async function readInput(file: string | undefined, usage: string): Promise<Buffer> {
  if (!file) throw new KeyDirectoryCliError(`usage: ${usage}`);
  try {
    return await readFile(file);
  } catch (err) {
    throw new KeyDirectoryCliError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

function expect(status: number[], answer: { status: number; body: unknown }): void {
  if (status.includes(answer.status)) return;
  const e = (answer.body as { error?: { code?: string; message?: string } })?.error;
  throw new KeyDirectoryCliError(
    e
      ? `${e.code}: ${e.message} (HTTP ${answer.status})`
      : `HTTP ${answer.status}: ${String(answer.body).slice(0, 200)}`,
  );
}

const anchorLine = (a: TrustAnchor) =>
  oneLine(`${a.fingerprint}  ${a.subject}  until ${a.notAfter.slice(0, 10)}  by ${a.addedBy}`);
const certificateLine = (c: StoredCertificate) =>
  oneLine(
    `${c.fingerprint}  ${c.addresses.join(', ')}  ${c.subject}  until ${c.notAfter.slice(0, 10)}${
      c.replacedBy ? `  replaced by ${c.replacedBy.slice(0, 16)}…` : ''
    }${c.withdrawnAt ? `  withdrawn by ${c.withdrawnBy} at ${c.withdrawnAt}` : ''}`,
  );
const auditLine = (e: CertificateAuditEntry) =>
  oneLine(`${e.at}  ${e.event.replace('certificate.', '')} by ${e.actor}: ${e.reason}`);
const pgpLine = (k: StoredPgpKey) =>
  `${k.fingerprint}  ${k.state.padEnd(8)}  ${k.addresses.join(', ')}${
    k.state === 'approved' ? `  (approved for ${k.approvedAddresses.join(', ') || 'no address'})` : ''
  }  ${k.algorithm}${
    k.expiresAt ? `  until ${k.expiresAt.slice(0, 10)}` : ''
  }${k.stateChangedBy ? `  (${k.state} by ${k.stateChangedBy} at ${k.stateChangedAt})` : ''}`;
const lines = <T>(items: T[], line: (item: T) => string, none: string) =>
  items.length === 0 ? `${none}\n` : `${items.map(line).join('\n')}\n`;

/** Runs one key-directory command; returns what to print (text or, with --json, the API's answer). */
export async function runKeyDirectoryCommand(
  command: string,
  positional: string[],
  values: KeyDirectoryValues,
  call: CliCall,
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const [action, ...args] = positional;
  const operator = values.operator ?? env.SMGW_OPERATOR;
  const operatorHeader: Record<string, string> = operator ? { 'x-smgw-operator': operator } : {};
  const show = (body: unknown, text: () => string) => (values.json ? `${JSON.stringify(body, null, 2)}\n` : text());

  switch (`${command} ${action ?? ''}`) {
    case 'trust add': {
      const pem = await readInput(args[0], 'trust add <pem-file>');
      const answer = await call('POST', '/trust-anchors', {
        raw: { bytes: pem, type: 'application/x-pem-file' },
        headers: operatorHeader,
      });
      expect([200, 201], answer);
      const anchor = answer.body as TrustAnchor;
      return show(
        answer.body,
        () => `${answer.status === 201 ? 'trusted' : 'already trusted'}: ${anchorLine(anchor)}\n`,
      );
    }
    case 'trust list': {
      const answer = await call('GET', '/trust-anchors');
      expect([200], answer);
      const { anchors } = answer.body as { anchors: TrustAnchor[] };
      return show(answer.body, () => lines(anchors, anchorLine, 'no trust anchors'));
    }
    case 'cert add': {
      const pem = await readInput(args[0], 'cert add <pem-file>');
      const answer = await call('POST', '/certificates', {
        raw: { bytes: pem, type: 'application/x-pem-file' },
        headers: operatorHeader,
      });
      expect([200, 201], answer);
      const certificate = answer.body as StoredCertificate & { replaced?: string[] };
      return show(answer.body, () => {
        const replaced = certificate.replaced?.length ? `\nreplaces: ${certificate.replaced.join(', ')}` : '';
        return `${answer.status === 201 ? 'added' : 'already known'}: ${certificateLine(certificate)}${replaced}\n`;
      });
    }
    case 'cert list': {
      const query = new URLSearchParams();
      if (values.address) query.set('address', values.address);
      if (values.all) query.set('includeReplaced', 'true');
      const answer = await call('GET', `/certificates?${query}`);
      expect([200], answer);
      const { certificates } = answer.body as { certificates: StoredCertificate[] };
      return show(answer.body, () => lines(certificates, certificateLine, 'no certificates'));
    }
    case 'cert show': {
      const fingerprint = args[0];
      if (!fingerprint) throw new KeyDirectoryCliError('usage: cert show <fingerprint>');
      const answer = await call('GET', `/certificates/${enc(fingerprint)}`);
      expect([200], answer);
      const certificate = answer.body as StoredCertificate & { audit: CertificateAuditEntry[] };
      return show(answer.body, () =>
        [certificateLine(certificate), ...certificate.audit.map(auditLine)].map((line) => `${line}\n`).join(''),
      );
    }
    case 'cert withdraw':
    case 'cert reinstate': {
      const fingerprint = args[0];
      if (!fingerprint || !values.reason) {
        throw new KeyDirectoryCliError(`usage: cert ${action} <fingerprint> --reason "..." [--operator <name>]`);
      }
      const answer = await call('POST', `/certificates/${enc(fingerprint)}/${action}`, {
        body: { reason: values.reason },
        headers: operatorHeader,
      });
      expect([200], answer);
      const certificate = answer.body as StoredCertificate & { hadReplaced?: string[]; replaced?: string[] };
      return show(answer.body, () => {
        if (action === 'reinstate') {
          const replaced = certificate.replaced?.length ? `\nreplaces: ${certificate.replaced.join(', ')}` : '';
          return `reinstated: ${certificateLine(certificate)}${replaced}\n`;
        }
        // What it had replaced stays replaced: the operator decides whether one of them is to be used again.
        const hadReplaced = certificate.hadReplaced?.length
          ? `\nit had replaced (still replaced; cert reinstate <fingerprint> to use one again): ${certificate.hadReplaced.join(', ')}`
          : '';
        return `withdrawn: ${certificateLine(certificate)}${hadReplaced}\n`;
      });
    }
    case 'pgp import': {
      const armored = await readInput(args[0], 'pgp import <file>');
      const answer = await call('POST', '/pgp-keys', {
        raw: { bytes: armored, type: 'application/pgp-keys' },
        headers: operatorHeader,
      });
      expect([200, 201], answer);
      const key = answer.body as StoredPgpKey;
      return show(answer.body, () => `${answer.status === 201 ? 'imported' : 'already known'}: ${pgpLine(key)}\n`);
    }
    case 'pgp approve': {
      const fingerprint = args[0];
      if (!fingerprint) {
        throw new KeyDirectoryCliError('usage: pgp approve <fingerprint> [--address a ...] [--operator <name>]');
      }
      const answer = await call('POST', `/pgp-keys/${enc(fingerprint)}/approve`, {
        ...(values.addresses?.length ? { body: { addresses: values.addresses } } : {}),
        headers: operatorHeader,
      });
      expect([200], answer);
      const key = answer.body as StoredPgpKey & { replaced: Array<{ address: string; fingerprint: string }> };
      return show(answer.body, () => {
        const replaced = key.replaced.map((r) => `\n${r.address}: replaces ${r.fingerprint}`).join('');
        return `${pgpLine(key)}${replaced}\n`;
      });
    }
    case 'pgp reject': {
      const fingerprint = args[0];
      if (!fingerprint) throw new KeyDirectoryCliError('usage: pgp reject <fingerprint> [--operator <name>]');
      const answer = await call('POST', `/pgp-keys/${enc(fingerprint)}/reject`, { headers: operatorHeader });
      expect([200], answer);
      return show(answer.body, () => `${pgpLine(answer.body as StoredPgpKey)}\n`);
    }
    case 'pgp list': {
      const query = new URLSearchParams();
      if (values.state) query.set('state', values.state);
      if (values.address) query.set('address', values.address);
      const answer = await call('GET', `/pgp-keys?${query}`);
      expect([200], answer);
      const { keys } = answer.body as { keys: StoredPgpKey[] };
      return show(answer.body, () => lines(keys, pgpLine, 'no OpenPGP keys'));
    }
    case 'agency add': {
      const name = args[0];
      if (!name || !values.domain?.length) {
        throw new KeyDirectoryCliError('usage: agency add <name> --domain d [--domain d2 ...]');
      }
      const answer = await call('POST', '/agencies', { body: { name, domains: values.domain } });
      expect([201], answer);
      return show(answer.body, () => `${(answer.body as { id: string }).id}\n`);
    }
    case 'agency list': {
      const answer = await call('GET', '/agencies');
      expect([200], answer);
      const { agencies } = answer.body as { agencies: Agency[] };
      return show(answer.body, () =>
        lines(
          agencies,
          (a) =>
            `${a.id}  ${a.name}  domains: ${a.domains.join(', ')}  addresses: ${
              a.addresses.map((x) => `${x.address}${x.verifySignatures ? ' (verify)' : ''}`).join(', ') || '-'
            }  signing: ${a.signOutbound ? 'on' : 'off'}`,
          'no agencies',
        ),
      );
    }
    case 'agency signing': {
      const [agencyId, setting] = args;
      const usage = 'usage: agency signing <agency-id> on|off [--operator <name>]';
      if (!agencyId || (setting !== 'on' && setting !== 'off')) throw new KeyDirectoryCliError(usage);
      const answer = await call('POST', `/agencies/${enc(agencyId)}/signing`, {
        body: { signOutbound: setting === 'on' },
        headers: operatorHeader,
      });
      expect([200], answer);
      const agency = answer.body as Agency;
      return show(
        answer.body,
        () => `${agency.id}  ${agency.name}: outbound signing ${agency.signOutbound ? 'on' : 'off'}\n`,
      );
    }
    case 'agency address': {
      const [agencyId, address] = args;
      if (!agencyId || !address) {
        throw new KeyDirectoryCliError('usage: agency address <agency-id> <address> [--verify-signatures]');
      }
      const answer = await call('POST', `/agencies/${enc(agencyId)}/addresses`, {
        body: { address, verifySignatures: values.verifySignatures },
      });
      expect([200, 201], answer);
      const result = answer.body as { address: string; verifySignatures: boolean };
      return show(
        answer.body,
        () => `${result.address}: signature verification ${result.verifySignatures ? 'on' : 'off'}\n`,
      );
    }
    case 'agency key': {
      const [agencyId, address, file] = args;
      const usage = 'agency key <agency-id> <address> <file> [--password p]';
      if (!agencyId || !address) throw new KeyDirectoryCliError(`usage: ${usage}`);
      const bytes = await readInput(file, usage);
      const pgp = ['.asc', '.gpg', '.pgp'].includes(extname(file ?? '').toLowerCase()) || looksArmoredOpenPgp(bytes);
      const password = values.password ?? env.SMGW_KEY_PASSWORD;
      const answer = await call('POST', `/agencies/${enc(agencyId)}/addresses/${enc(address)}/keys`, {
        raw: { bytes, type: pgp ? 'application/pgp-keys' : 'application/x-pkcs12' },
        headers: password === undefined ? {} : { 'x-smgw-key-password': password },
      });
      expect([201], answer);
      const { keys } = answer.body as { keys: Array<AgencyKey & { subject?: string; notAfter?: string }> };
      return show(answer.body, () =>
        lines(
          keys,
          (k) =>
            `stored (sealed): ${k.kind} ${k.fingerprint}  ${k.address}  ${k.subject ?? ''}  until ${k.notAfter ?? '-'}`,
          'no keys stored',
        ),
      );
    }
    default:
      throw new KeyDirectoryCliError(`unknown command "${command} ${action ?? ''}"\n${KEY_DIRECTORY_USAGE}`);
  }
}
