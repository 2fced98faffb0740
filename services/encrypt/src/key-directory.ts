// Reads of the key directory (packages/db/migrations/008_key_directory.sql) that encrypt needs. Addresses are
// stored lower-case; callers pass them as the envelope has them.
import type { Pool } from '@smgw/db';

export interface StoredCertificate {
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

export interface HarvestedCertificateRow {
  fingerprint: string;
  subject: string;
  /** Lower-case. */
  addresses: string[];
  issuer: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  der: Buffer;
  intermediates: Buffer[];
  smimeCapabilities: unknown;
  lastValidation: unknown;
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
  const { rows } = await pool.query<StoredCertificate>(
    `select fingerprint, der, intermediates, smime_capabilities as "smimeCapabilities" from certificates
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

/**
 * Stores a harvested certificate with the admin store's replacement rule (services/admin key-directory-store.ts
 * addCertificate): it replaces every current certificate sharing an address that began earlier; one older than a
 * current certificate is stored as already replaced by it. A known certificate only gets its capabilities (when the
 * new message announced any) and last_validation refreshed.
 */
export async function storeHarvestedCertificate(
  pool: Pool,
  cert: HarvestedCertificateRow,
): Promise<{ created: boolean; replaced: string[] }> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    // The same advisory locks as the admin store: one writer per address at a time, so two renewals cannot both stay current.
    for (const address of [...cert.addresses].sort()) {
      await client.query('select pg_advisory_xact_lock(hashtext($1))', [`certificates:${address}`]);
    }
    const capabilities = cert.smimeCapabilities === null ? null : JSON.stringify(cert.smimeCapabilities);
    const existing = await client.query(
      `update certificates set last_validation = $2, smime_capabilities = coalesce($3::jsonb, smime_capabilities)
        where fingerprint = $1`,
      [cert.fingerprint, JSON.stringify(cert.lastValidation), capabilities],
    );
    if (existing.rowCount === 1) {
      await client.query('commit');
      return { created: false, replaced: [] };
    }
    const newer = await client.query<{ fingerprint: string }>(
      `select fingerprint from certificates
        where replaced_by is null and addresses && $1 and not_before > $2
        order by not_before desc limit 1`,
      [cert.addresses, cert.notBefore],
    );
    await client.query(
      `insert into certificates (fingerprint, subject, addresses, issuer, serial, not_before, not_after, der,
         intermediates, smime_capabilities, source, replaced_by, last_validation)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'harvested', $11, $12)`,
      [
        cert.fingerprint,
        cert.subject,
        cert.addresses,
        cert.issuer,
        cert.serial,
        cert.notBefore,
        cert.notAfter,
        cert.der,
        cert.intermediates,
        capabilities,
        newer.rows[0]?.fingerprint ?? null,
        JSON.stringify(cert.lastValidation),
      ],
    );
    let replaced: string[] = [];
    if (!newer.rows[0]) {
      const result = await client.query<{ fingerprint: string }>(
        `update certificates set replaced_by = $1
          where replaced_by is null and fingerprint <> $1 and addresses && $2 and not_before <= $3
          returning fingerprint`,
        [cert.fingerprint, cert.addresses, cert.notBefore],
      );
      replaced = result.rows.map((r) => r.fingerprint);
    }
    await client.query('commit');
    return { created: true, replaced };
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
