// Recipient certificates (certificates, migration 008): added by an operator or harvested from validly signed inbound
// mail, replaced by renewals; the encrypt stage reads the current ones per address. Addresses are stored lower-case.
import { type Pool, type PoolClient, preparedStatement } from '@smgw/db';

/** Who brought it: an operator (admin API), inbound signed mail, or the recipient on the portal (migration 013). */
export type CertificateSource = 'admin' | 'harvested' | 'portal';

export interface StoredCertificate {
  fingerprint: string;
  subject: string;
  addresses: string[];
  issuer: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  source: CertificateSource;
  addedAt: string;
  replacedBy: string | null;
}

export interface NewCertificate {
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
  source: CertificateSource;
  lastValidation: unknown;
}

interface CertificateRow {
  fingerprint: string;
  subject: string;
  addresses: string[];
  issuer: string;
  serial: string;
  not_before: Date;
  not_after: Date;
  source: CertificateSource;
  added_at: Date;
  replaced_by: string | null;
}

const CERTIFICATE_COLUMNS =
  'fingerprint, subject, addresses, issuer, serial, not_before, not_after, source, added_at, replaced_by';

const toCertificate = (r: CertificateRow): StoredCertificate => ({
  fingerprint: r.fingerprint,
  subject: r.subject,
  addresses: r.addresses,
  issuer: r.issuer,
  serial: r.serial,
  notBefore: r.not_before.toISOString(),
  notAfter: r.not_after.toISOString(),
  source: r.source,
  addedAt: r.added_at.toISOString(),
  replacedBy: r.replaced_by,
});

/**
 * Stores a validated certificate: validated for encryption too (acceptRecipientCertificate and the harvest refuse one
 * whose keyUsage does not allow it), since only a certificate we can encrypt to may replace another. A renewed
 * certificate replaces every current certificate that shares an address
 * with it and began earlier (their replaced_by points at it); a certificate older than a current one for one of its
 * addresses is stored as already replaced by that one. The same certificate again only refreshes last_validation.
 */
export async function addCertificate(
  pool: Pool,
  cert: NewCertificate,
): Promise<{ certificate: StoredCertificate; created: boolean; replaced: string[] }> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    // One writer per address set at a time, so two renewals cannot both stay current.
    for (const address of [...cert.addresses].sort()) {
      await client.query('select pg_advisory_xact_lock(hashtext($1))', [`certificates:${address}`]);
    }
    const existing = await client.query<CertificateRow>(
      `update certificates set last_validation = $2, smime_capabilities = coalesce($3::jsonb, smime_capabilities)
        where fingerprint = $1 returning ${CERTIFICATE_COLUMNS}`,
      [
        cert.fingerprint,
        JSON.stringify(cert.lastValidation),
        cert.smimeCapabilities === undefined || cert.smimeCapabilities === null
          ? null
          : JSON.stringify(cert.smimeCapabilities),
      ],
    );
    if (existing.rows[0]) {
      await client.query('commit');
      return { certificate: toCertificate(existing.rows[0]), created: false, replaced: [] };
    }
    const newer = await client.query<{ fingerprint: string }>(
      `select fingerprint from certificates
        where replaced_by is null and addresses && $1 and not_before > $2
        order by not_before desc limit 1`,
      [cert.addresses, cert.notBefore],
    );
    const inserted = await client.query<CertificateRow>(
      `insert into certificates (fingerprint, subject, addresses, issuer, serial, not_before, not_after, der,
         intermediates, smime_capabilities, source, replaced_by, last_validation)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) returning ${CERTIFICATE_COLUMNS}`,
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
        cert.smimeCapabilities === undefined ? null : JSON.stringify(cert.smimeCapabilities),
        cert.source,
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
    return { certificate: toCertificate(inserted.rows[0] as CertificateRow), created: true, replaced };
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Deletes the certificates uploaded on the portal for `address` (source `portal`, current or replaced), in the
 * caller's transaction: they go with the address's mailbox (deletePortalKeys). Returns their fingerprints. A row
 * stored from the portal for more addresses (before the portal stored for the user's address alone) goes whole: the
 * other addresses were never the uploader's to claim. Certificates of other sources stay, and one the deleted
 * certificate had replaced stays replaced (migration 020): its holder renewed it, and it must not encrypt their mail
 * again without anyone saying so.
 */
export async function deletePortalCertificates(db: PoolClient, address: string): Promise<string[]> {
  const lower = address.toLowerCase();
  // The lock of addCertificate: a renewal stored meanwhile does not decide against a certificate going away.
  await db.query('select pg_advisory_xact_lock(hashtext($1))', [`certificates:${lower}`]);
  const { rows } = await db.query<{ fingerprint: string }>(
    `delete from certificates where source = 'portal' and addresses @> array[$1::text] returning fingerprint`,
    [lower],
  );
  return rows.map((r) => r.fingerprint).sort();
}

/** Certificates, newest first; with `address`, only those for it; replaced ones only with `includeReplaced`. */
export async function listCertificates(
  pool: Pool,
  filter: { address?: string | undefined; includeReplaced: boolean; limit: number },
): Promise<StoredCertificate[]> {
  const { rows } = await pool.query<CertificateRow>(
    `select ${CERTIFICATE_COLUMNS} from certificates
      where ($1::text is null or addresses @> array[$1::text]) and ($2 or replaced_by is null)
      order by not_before desc, fingerprint limit $3`,
    [filter.address?.toLowerCase() ?? null, filter.includeReplaced, filter.limit],
  );
  return rows.map(toCertificate);
}

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
export type HarvestedCertificate = Omit<NewCertificate, 'source'>;

/**
 * The current certificates of address $1, for every outbound message. `addresses @> array[$1]`, not `$1 =
 * any(addresses)`: only the first can use the addresses index; the second read every certificate (6 ms a message at
 * 50,000 certificates).
 */
export const CURRENT_CERTIFICATES = preparedStatement(
  'key-directory-current-certificates',
  `select fingerprint, der, intermediates, smime_capabilities as "smimeCapabilities" from certificates
    where addresses @> array[$1::text] and replaced_by is null
    order by not_after desc, added_at desc`,
);

/** The current (not replaced) certificates for the address, the longest-lived first. */
export async function currentCertificates(pool: Pool, address: string): Promise<CertificateForEncryption[]> {
  const { rows } = await pool.query<CertificateForEncryption>(CURRENT_CERTIFICATES([address.toLowerCase()]));
  return rows;
}

/** Stores a harvested certificate with the same replacement rule as an operator's (addCertificate). */
export async function storeHarvestedCertificate(
  pool: Pool,
  cert: HarvestedCertificate,
): Promise<{ created: boolean; replaced: string[] }> {
  const { created, replaced } = await addCertificate(pool, { ...cert, source: 'harvested' });
  return { created, replaced };
}
