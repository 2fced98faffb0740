// Reads of the key directory (packages/db/migrations/008_key_directory.sql) that encrypt needs. Addresses are
// stored lower-case; callers pass them as the envelope has them.
import type { Pool } from '@smgw/db';

export interface StoredCertificate {
  fingerprint: string;
  der: Buffer;
  intermediates: Buffer[];
}

export interface StoredPgpKey {
  fingerprint: string;
  armored: string;
  state: 'pending' | 'approved' | 'rejected';
}

export interface StoredAgencyKey {
  address: string;
  kind: 'smime' | 'pgp';
  fingerprint: string;
  certificate: Buffer | null;
  sealedPrivateKey: Buffer;
}

/** The current (not replaced) certificates for the address, the longest-lived first. */
export async function currentCertificates(pool: Pool, address: string): Promise<StoredCertificate[]> {
  const { rows } = await pool.query<{ fingerprint: string; der: Buffer; intermediates: Buffer[] }>(
    `select fingerprint, der, intermediates from certificates
      where $1 = any(addresses) and replaced_by is null
      order by not_after desc, added_at desc`,
    [address.toLowerCase()],
  );
  return rows;
}

/** Every trusted CA certificate (DER). */
export async function trustAnchorCertificates(pool: Pool): Promise<Buffer[]> {
  const { rows } = await pool.query<{ der: Buffer }>('select der from trust_anchors order by fingerprint');
  return rows.map((r) => r.der);
}

/** The OpenPGP keys for the address in any state, approved first, newest first. */
export async function pgpKeysFor(pool: Pool, address: string): Promise<StoredPgpKey[]> {
  const { rows } = await pool.query<StoredPgpKey>(
    `select fingerprint, armored, state from pgp_keys
      where $1 = any(addresses)
      order by (state = 'approved') desc, created_at desc`,
    [address.toLowerCase()],
  );
  return rows;
}

/** The agencies' own private keys (sealed) for any of the addresses, of one kind. */
export async function agencyKeysFor(
  pool: Pool,
  addresses: readonly string[],
  kind: 'smime' | 'pgp',
): Promise<StoredAgencyKey[]> {
  const { rows } = await pool.query<StoredAgencyKey>(
    `select address, kind, fingerprint, certificate, private_key_sealed as "sealedPrivateKey" from agency_keys
      where address = any($1::text[]) and kind = $2
      order by address, created_at desc`,
    [addresses.map((a) => a.toLowerCase()), kind],
  );
  return rows;
}
