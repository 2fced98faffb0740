// The DKIM key of the gateway's own mail (deliver signs everything of direction `generated` with it). The key file is
// read and checked when the settings load, so a missing, unreadable or weak key stops the start with one line naming
// SMGW_DKIM_KEY_FILE instead of surfacing as unsigned mail later.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from './load.ts';
import { normalizeDomain, type Parser } from './parsers.ts';

export interface DkimPrivateKey {
  file: string;
  /** The a= tag the key signs with. */
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
  /** PEM, as mailauth's signer takes it. */
  pem: string;
}

/** Whoever runs deliver signs with this: d=, s= and the key, all three given. */
export interface DkimSigning {
  domain: string;
  selector: string;
  key: DkimPrivateKey;
}

/** RFC 8301 §3.2: signers use RSA keys of at least 1024 bits; big providers want 2048. */
const MIN_RSA_BITS = 2048;

/** A PEM private key file: RSA of 2048 bits or more, or Ed25519 (RFC 8463). */
export const dkimPrivateKeyFile: Parser<DkimPrivateKey> = (file) => {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new Error(`${file} holds no PEM private key`);
  }
  if (key.asymmetricKeyType === 'ed25519') return { file, algorithm: 'ed25519-sha256', pem };
  if (key.asymmetricKeyType !== 'rsa')
    throw new Error(`${file} holds a ${key.asymmetricKeyType} key, not RSA or Ed25519`);
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) throw new Error(`${file} holds an RSA key of ${bits} bits, fewer than ${MIN_RSA_BITS}`);
  return { file, algorithm: 'rsa-sha256', pem };
};

/** One domain name (no wildcard), as an A-label. */
export const singleDomain: Parser<string> = (raw) => {
  const domain = normalizeDomain(raw);
  if (!domain || domain.startsWith('[') || !domain.includes('.')) throw new Error(`"${raw}" is not a domain`);
  return domain;
};

/** A DKIM selector: dot-separated labels of letters, digits and hyphens (RFC 6376 §3.1). */
export const dkimSelector: Parser<string> = (raw) => {
  const selector = raw.trim().toLowerCase();
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(selector))
    throw new Error(`"${raw}" is not a selector (labels of letters, digits and hyphens)`);
  return selector;
};

/**
 * The signing the settings ask for: undefined without SMGW_DKIM_DOMAIN (no signing, as on a local run); with it, the
 * key file must be there too (ConfigError naming SMGW_DKIM_KEY_FILE otherwise).
 */
export function dkimSigningOf(config: {
  dkimDomain?: string | undefined;
  dkimSelector: string;
  dkimKey?: DkimPrivateKey | undefined;
}): DkimSigning | undefined {
  if (!config.dkimDomain) return undefined;
  if (!config.dkimKey) throw new ConfigError('SMGW_DKIM_KEY_FILE', 'is required when SMGW_DKIM_DOMAIN is set');
  return { domain: config.dkimDomain, selector: config.dkimSelector, key: config.dkimKey };
}
