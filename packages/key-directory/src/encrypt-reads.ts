// What the encrypt stage needs of the key directory (packages/db/migrations/008_key_directory.sql). Addresses are
// stored lower-case; callers pass them as the envelope has them.
import type { Pool } from '@smgw/db';
import { addCertificate, type NewCertificate } from './store.ts';

export interface CertificateForEncryption {
  fingerprint: string;
  der: Buffer;
  intermediates: Buffer[];
  /** What the holder announced in signed mail (harvest-smime-certificates.ts); null when never harvested. */
  smimeCapabilities: StoredCapabilities | null;
}

/** The smime_capabilities column as harvesting writes it (SmimeCapabilities of @smgw/crypto). */
export interface StoredCapabilities {
  contentCiphers?: string[];
  keyTransport?: string;
  oids?: string[];
}

/** A certificate taken from validly signed inbound mail: stored like an operator's, with source `harvested`. */
export type HarvestedCertificateRow = Omit<NewCertificate, 'source'>;

export interface PgpKeyForEncryption {
  fingerprint: string;
  armored: string;
  state: 'pending' | 'approved' | 'rejected';
}

export interface SealedAgencyKey {
  address: string;
  kind: 'smime' | 'pgp';
  fingerprint: string;
  certificate: Buffer | null;
  sealedPrivateKey: Buffer;
}

/** The current (not replaced) certificates for the address, the longest-lived first. */
export async function currentCertificates(pool: Pool, address: string): Promise<CertificateForEncryption[]> {
  const { rows } = await pool.query<CertificateForEncryption>(
    `select fingerprint, der, intermediates, smime_capabilities as "smimeCapabilities" from certificates
      where $1 = any(addresses) and replaced_by is null
      order by not_after desc, added_at desc`,
    [address.toLowerCase()],
  );
  return rows;
}

/** The OpenPGP keys for the address in any state, approved first, newest first. */
export async function pgpKeysFor(pool: Pool, address: string): Promise<PgpKeyForEncryption[]> {
  const { rows } = await pool.query<PgpKeyForEncryption>(
    `select fingerprint, armored, state from pgp_keys
      where $1 = any(addresses)
      order by (state = 'approved') desc, created_at desc`,
    [address.toLowerCase()],
  );
  return rows;
}

/** The agencies' own private keys (sealed) for any of the addresses, of one kind. */
export async function sealedAgencyKeys(
  pool: Pool,
  addresses: readonly string[],
  kind: 'smime' | 'pgp',
): Promise<SealedAgencyKey[]> {
  const { rows } = await pool.query<SealedAgencyKey>(
    `select address, kind, fingerprint, certificate, private_key_sealed as "sealedPrivateKey" from agency_keys
      where address = any($1::text[]) and kind = $2
      order by address, created_at desc`,
    [addresses.map((a) => a.toLowerCase()), kind],
  );
  return rows;
}

/**
 * Whether the sender's agency signs outbound mail: the agency owning the domain of `address` (the envelope sender).
 * Undefined when the domain belongs to no agency.
 */
export async function agencySigningFor(
  pool: Pool,
  address: string,
): Promise<{ agencyId: string; signOutbound: boolean } | undefined> {
  const domain = address.slice(address.lastIndexOf('@') + 1).toLowerCase();
  const { rows } = await pool.query<{ agencyId: string; signOutbound: boolean }>(
    `select a.id as "agencyId", a.sign_outbound as "signOutbound" from agency_domains d
       join agencies a on a.id = d.agency_id where d.domain = $1`,
    [domain],
  );
  return rows[0];
}

/** Stores a harvested certificate with the same replacement rule as an operator's (addCertificate). */
export async function storeHarvestedCertificate(
  pool: Pool,
  cert: HarvestedCertificateRow,
): Promise<{ created: boolean; replaced: string[] }> {
  const { created, replaced } = await addCertificate(pool, { ...cert, source: 'harvested' });
  return { created, replaced };
}
