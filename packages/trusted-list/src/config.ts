// The trusted-list settings a verifying service will read (README "Settings"). Only parsing here, no service:
// one national list with its signer certificate, and/or the EU list of lists with its signer certificate and
// the folder of national lists it names. Paths must be absolute; files are read when the lists are loaded.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ConfigError, loadConfig, type Parser, setting } from '@smgw/config';
import { TrustedListError } from './errors.ts';

const absolutePath: Parser<string> = (raw) => {
  const path = raw.trim();
  if (!path.startsWith('/')) throw new Error('must be an absolute path');
  if (path.includes('\0')) throw new Error('must not contain a NUL byte');
  return path;
};

export const trustedListSettings = {
  trustedListFile: setting(
    'SMGW_TRUSTED_LIST_FILE',
    absolutePath,
    undefined,
    'a national trusted list (ETSI TS 119 612 XML) the operator provides',
  ),
  trustedListSignerCert: setting(
    'SMGW_TRUSTED_LIST_SIGNER_CERT',
    absolutePath,
    undefined,
    'PEM file with the certificate(s) allowed to sign SMGW_TRUSTED_LIST_FILE',
  ),
  lotlFile: setting('SMGW_LOTL_FILE', absolutePath, undefined, 'the EU list of trusted lists (XML)'),
  lotlSignerCert: setting(
    'SMGW_LOTL_SIGNER_CERT',
    absolutePath,
    undefined,
    'PEM file with the certificate(s) allowed to sign SMGW_LOTL_FILE (as published in the Official Journal)',
  ),
  trustedListDir: setting(
    'SMGW_TRUSTED_LIST_DIR',
    absolutePath,
    undefined,
    'folder of national trusted lists (*.xml) named by SMGW_LOTL_FILE',
  ),
};

export interface TrustedListConfig {
  /** One list checked against a configured certificate; undefined when not configured. */
  single: { file: string; signerCertFile: string } | undefined;
  /** The EU list of lists and the folder of national lists; undefined when not configured. */
  listOfLists: { file: string; signerCertFile: string; directory: string } | undefined;
}

/** Parses the settings; throws ConfigError (exit 78 in a service) when they are malformed or incomplete. */
export function parseTrustedListConfig(env: NodeJS.ProcessEnv = process.env): TrustedListConfig {
  const c = loadConfig(trustedListSettings, env);
  if ((c.trustedListFile === undefined) !== (c.trustedListSignerCert === undefined)) {
    const missing = c.trustedListFile === undefined ? 'SMGW_TRUSTED_LIST_FILE' : 'SMGW_TRUSTED_LIST_SIGNER_CERT';
    throw new ConfigError(missing, 'is required with the other (a list is never used without its signer certificate)');
  }
  const lotlParts = [c.lotlFile, c.lotlSignerCert, c.trustedListDir];
  if (lotlParts.some((v) => v !== undefined) && lotlParts.some((v) => v === undefined)) {
    const missing =
      c.lotlFile === undefined
        ? 'SMGW_LOTL_FILE'
        : c.lotlSignerCert === undefined
          ? 'SMGW_LOTL_SIGNER_CERT'
          : 'SMGW_TRUSTED_LIST_DIR';
    throw new ConfigError(missing, 'is required with SMGW_LOTL_FILE, SMGW_LOTL_SIGNER_CERT and SMGW_TRUSTED_LIST_DIR');
  }
  return {
    single:
      c.trustedListFile && c.trustedListSignerCert
        ? { file: c.trustedListFile, signerCertFile: c.trustedListSignerCert }
        : undefined,
    listOfLists:
      c.lotlFile && c.lotlSignerCert && c.trustedListDir
        ? { file: c.lotlFile, signerCertFile: c.lotlSignerCert, directory: c.trustedListDir }
        : undefined,
  };
}

/** Reads every certificate in a PEM file (a signer may have several keys in rollover). */
export async function readSignerCertificates(path: string): Promise<X509Certificate[]> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    throw new TrustedListError(
      'TL_UNREADABLE',
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new TrustedListError('TL_NO_SIGNER_CERT', `${path} holds no PEM certificate`);
  return blocks.map((b) => new X509Certificate(b));
}
