// The key directory in PostgreSQL (packages/db/migrations/008_key_directory.sql): trust anchors, recipient
// certificates, OpenPGP keys with their trust state, agencies with domains and addresses, and the agencies' own keys
// (private part sealed). The admin routes write through this file; the encrypt stage's reads are in encrypt-reads.ts.
// Private keys are never selected here.
import type { Pool } from '@smgw/db';
import { newMessageId } from '@smgw/envelope';

const UNIQUE_VIOLATION = '23505';
const FOREIGN_KEY_VIOLATION = '23503';
const pgCode = (err: unknown): string | undefined => (err as { code?: string }).code;
const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

// --- trust anchors ---------------------------------------------------------------------------------------------------

export interface TrustAnchor {
  fingerprint: string;
  subject: string;
  notBefore: string;
  notAfter: string;
  addedBy: string;
  addedAt: string;
}

export interface NewTrustAnchor {
  fingerprint: string;
  subject: string;
  der: Buffer;
  notBefore: Date;
  notAfter: Date;
  addedBy: string;
}

interface TrustAnchorRow {
  fingerprint: string;
  subject: string;
  not_before: Date;
  not_after: Date;
  added_by: string;
  added_at: Date;
}

const toTrustAnchor = (r: TrustAnchorRow): TrustAnchor => ({
  fingerprint: r.fingerprint,
  subject: r.subject,
  notBefore: r.not_before.toISOString(),
  notAfter: r.not_after.toISOString(),
  addedBy: r.added_by,
  addedAt: r.added_at.toISOString(),
});

const ANCHOR_COLUMNS = 'fingerprint, subject, not_before, not_after, added_by, added_at';

/** Adds a trust anchor; one already there (same fingerprint) is returned unchanged with `created: false`. */
export async function addTrustAnchor(
  pool: Pool,
  anchor: NewTrustAnchor,
): Promise<{ anchor: TrustAnchor; created: boolean }> {
  const inserted = await pool.query<TrustAnchorRow>(
    `insert into trust_anchors (fingerprint, subject, der, not_before, not_after, added_by)
     values ($1, $2, $3, $4, $5, $6) on conflict (fingerprint) do nothing returning ${ANCHOR_COLUMNS}`,
    [anchor.fingerprint, anchor.subject, anchor.der, anchor.notBefore, anchor.notAfter, anchor.addedBy],
  );
  if (inserted.rows[0]) return { anchor: toTrustAnchor(inserted.rows[0]), created: true };
  const existing = await pool.query<TrustAnchorRow>(
    `select ${ANCHOR_COLUMNS} from trust_anchors where fingerprint = $1`,
    [anchor.fingerprint],
  );
  return { anchor: toTrustAnchor(existing.rows[0] as TrustAnchorRow), created: false };
}

export async function listTrustAnchors(pool: Pool): Promise<TrustAnchor[]> {
  const { rows } = await pool.query<TrustAnchorRow>(`select ${ANCHOR_COLUMNS} from trust_anchors order by added_at`);
  return rows.map(toTrustAnchor);
}

/** DER of every trust anchor, for path validation. */
export async function trustAnchorCertificates(pool: Pool): Promise<Buffer[]> {
  const { rows } = await pool.query<{ der: Buffer }>('select der from trust_anchors order by added_at');
  return rows.map((r) => r.der);
}

// --- recipient certificates ------------------------------------------------------------------------------------------

export interface StoredCertificate {
  fingerprint: string;
  subject: string;
  addresses: string[];
  issuer: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  source: 'admin' | 'harvested';
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
  source: 'admin' | 'harvested';
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
  source: 'admin' | 'harvested';
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
 * Stores a validated certificate. A renewed certificate replaces every current certificate that shares an address
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

// --- OpenPGP keys ----------------------------------------------------------------------------------------------------

export const PGP_KEY_STATES = ['pending', 'approved', 'rejected'] as const;
export type PgpKeyState = (typeof PGP_KEY_STATES)[number];

export interface StoredPgpKey {
  fingerprint: string;
  addresses: string[];
  algorithm: string;
  expiresAt: string | null;
  state: PgpKeyState;
  source: 'imported' | 'harvested';
  stateChangedBy: string | null;
  stateChangedAt: string | null;
  createdAt: string;
}

export interface NewPgpKey {
  fingerprint: string;
  armored: string;
  addresses: string[];
  algorithm: string;
  expiresAt: Date | null;
  source: 'imported' | 'harvested';
}

interface PgpKeyRow {
  fingerprint: string;
  addresses: string[];
  algorithm: string;
  expires_at: Date | null;
  state: PgpKeyState;
  source: 'imported' | 'harvested';
  state_changed_by: string | null;
  state_changed_at: Date | null;
  created_at: Date;
}

const PGP_COLUMNS =
  'fingerprint, addresses, algorithm, expires_at, state, source, state_changed_by, state_changed_at, created_at';

const toPgpKey = (r: PgpKeyRow): StoredPgpKey => ({
  fingerprint: r.fingerprint,
  addresses: r.addresses,
  algorithm: r.algorithm,
  expiresAt: iso(r.expires_at),
  state: r.state,
  source: r.source,
  stateChangedBy: r.state_changed_by,
  stateChangedAt: iso(r.state_changed_at),
  createdAt: r.created_at.toISOString(),
});

/** Stores a key as pending; a key already there (same fingerprint) keeps its row and state (`created: false`). */
export async function addPgpKey(pool: Pool, key: NewPgpKey): Promise<{ key: StoredPgpKey; created: boolean }> {
  const inserted = await pool.query<PgpKeyRow>(
    `insert into pgp_keys (fingerprint, armored, addresses, algorithm, expires_at, state, source)
     values ($1, $2, $3, $4, $5, 'pending', $6) on conflict (fingerprint) do nothing returning ${PGP_COLUMNS}`,
    [key.fingerprint, key.armored, key.addresses, key.algorithm, key.expiresAt, key.source],
  );
  if (inserted.rows[0]) return { key: toPgpKey(inserted.rows[0]), created: true };
  return { key: (await getPgpKey(pool, key.fingerprint)) as StoredPgpKey, created: false };
}

export async function getPgpKey(pool: Pool, fingerprint: string): Promise<StoredPgpKey | undefined> {
  const { rows } = await pool.query<PgpKeyRow>(`select ${PGP_COLUMNS} from pgp_keys where fingerprint = $1`, [
    fingerprint,
  ]);
  return rows[0] ? toPgpKey(rows[0]) : undefined;
}

/** The armored key as stored (public only). */
export async function getPgpKeyArmored(pool: Pool, fingerprint: string): Promise<string | undefined> {
  const { rows } = await pool.query<{ armored: string }>('select armored from pgp_keys where fingerprint = $1', [
    fingerprint,
  ]);
  return rows[0]?.armored;
}

/** Approves or rejects a key, recording who and when. Undefined when there is no such key. */
export async function setPgpKeyState(
  pool: Pool,
  change: { fingerprint: string; state: 'approved' | 'rejected'; operator: string; at: Date },
): Promise<StoredPgpKey | undefined> {
  const { rows } = await pool.query<PgpKeyRow>(
    `update pgp_keys set state = $2, state_changed_by = $3, state_changed_at = $4
      where fingerprint = $1 returning ${PGP_COLUMNS}`,
    [change.fingerprint, change.state, change.operator, change.at],
  );
  return rows[0] ? toPgpKey(rows[0]) : undefined;
}

export async function listPgpKeys(
  pool: Pool,
  filter: { state?: PgpKeyState | undefined; address?: string | undefined; limit: number },
): Promise<StoredPgpKey[]> {
  const { rows } = await pool.query<PgpKeyRow>(
    `select ${PGP_COLUMNS} from pgp_keys
      where ($1::text is null or state = $1) and ($2::text is null or addresses @> array[$2::text])
      order by created_at desc, fingerprint limit $3`,
    [filter.state ?? null, filter.address?.toLowerCase() ?? null, filter.limit],
  );
  return rows.map(toPgpKey);
}

// --- agencies ----------------------------------------------------------------------------------------------------------

export interface Agency {
  id: string;
  name: string;
  domains: string[];
  addresses: Array<{ address: string; verifySignatures: boolean }>;
  /** Outbound mail from the agency is signed with the sender address's key before encryption (migration 009). */
  signOutbound: boolean;
  signOutboundChangedBy: string | null;
  signOutboundChangedAt: string | null;
  createdAt: string;
}

export type CreateAgencyResult =
  | { kind: 'created'; id: string }
  | { kind: 'name-taken' }
  | { kind: 'domain-taken'; detail: string };

/** Creates an agency with its domains (lower-case), all or nothing. */
export async function createAgency(
  pool: Pool,
  agency: { name: string; domains: string[]; signOutbound?: boolean; operator?: string; now: Date },
): Promise<CreateAgencyResult> {
  const signOutbound = agency.signOutbound ?? false;
  const id = newMessageId(agency.now.getTime());
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query(
      `insert into agencies (id, name, created_at, sign_outbound, sign_outbound_changed_by, sign_outbound_changed_at)
       values ($1, $2, $3, $4, $5, $6)`,
      [
        id,
        agency.name,
        agency.now,
        signOutbound,
        signOutbound ? (agency.operator ?? null) : null,
        signOutbound ? agency.now : null,
      ],
    );
    await client.query('insert into agency_domains (domain, agency_id) select unnest($1::text[]), $2', [
      agency.domains,
      id,
    ]);
    await client.query('commit');
    return { kind: 'created', id };
  } catch (err) {
    await client.query('rollback').catch(() => {});
    if (pgCode(err) === UNIQUE_VIOLATION) {
      const constraint = (err as { constraint?: string }).constraint ?? '';
      if (constraint.startsWith('agencies_name')) return { kind: 'name-taken' };
      return { kind: 'domain-taken', detail: (err as { detail?: string }).detail ?? '' };
    }
    throw err;
  } finally {
    client.release();
  }
}

export async function getAgency(pool: Pool, id: string): Promise<Agency | undefined> {
  return (await listAgencies(pool, id))[0];
}

export async function listAgencies(pool: Pool, id?: string): Promise<Agency[]> {
  const { rows } = await pool.query<{
    id: string;
    name: string;
    created_at: Date;
    domains: string[];
    addresses: Array<{ address: string; verifySignatures: boolean }>;
    sign_outbound: boolean;
    sign_outbound_changed_by: string | null;
    sign_outbound_changed_at: Date | null;
  }>(
    `select a.id, a.name, a.created_at, a.sign_outbound, a.sign_outbound_changed_by, a.sign_outbound_changed_at,
        coalesce((select array_agg(domain order by domain) from agency_domains d where d.agency_id = a.id), '{}') as domains,
        coalesce((select json_agg(json_build_object('address', address, 'verifySignatures', verify_signatures)
                    order by address) from agency_addresses x where x.agency_id = a.id), '[]') as addresses
       from agencies a where ($1::text is null or a.id = $1) order by a.name`,
    [id ?? null],
  );
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    domains: r.domains,
    addresses: r.addresses,
    signOutbound: r.sign_outbound,
    signOutboundChangedBy: r.sign_outbound_changed_by,
    signOutboundChangedAt: r.sign_outbound_changed_at?.toISOString() ?? null,
    createdAt: r.created_at.toISOString(),
  }));
}

/** Switches signing of the agency's outbound mail; records who and when. The agency as it is now, if it exists. */
export async function setAgencySigning(
  pool: Pool,
  input: { agencyId: string; signOutbound: boolean; operator: string; at: Date },
): Promise<Agency | undefined> {
  const { rowCount } = await pool.query(
    `update agencies set sign_outbound = $2, sign_outbound_changed_by = $3, sign_outbound_changed_at = $4
      where id = $1`,
    [input.agencyId, input.signOutbound, input.operator, input.at],
  );
  if (rowCount === 0) return undefined;
  return getAgency(pool, input.agencyId);
}

export type PutAddressResult =
  | { kind: 'created' | 'updated'; address: string; verifySignatures: boolean }
  | { kind: 'agency-not-found' }
  | { kind: 'not-in-domains'; domains: string[] }
  | { kind: 'taken' };

/**
 * Adds an address to an agency, or changes its signature-verification flag. The address must lie in one of the
 * agency's own domains; an address of another agency is refused.
 */
export async function putAgencyAddress(
  pool: Pool,
  input: { agencyId: string; address: string; verifySignatures: boolean },
): Promise<PutAddressResult> {
  const address = input.address.toLowerCase();
  const agency = await getAgency(pool, input.agencyId);
  if (!agency) return { kind: 'agency-not-found' };
  const domain = address.slice(address.lastIndexOf('@') + 1);
  if (!agency.domains.includes(domain)) return { kind: 'not-in-domains', domains: agency.domains };
  try {
    const { rows } = await pool.query<{ inserted: boolean; agency_id: string }>(
      `insert into agency_addresses (address, agency_id, verify_signatures) values ($1, $2, $3)
       on conflict (address) do update set verify_signatures = excluded.verify_signatures
         where agency_addresses.agency_id = excluded.agency_id
       returning (xmax = 0) as inserted, agency_id`,
      [address, input.agencyId, input.verifySignatures],
    );
    if (!rows[0]) return { kind: 'taken' };
    return { kind: rows[0].inserted ? 'created' : 'updated', address, verifySignatures: input.verifySignatures };
  } catch (err) {
    if (pgCode(err) === FOREIGN_KEY_VIOLATION) return { kind: 'agency-not-found' };
    throw err;
  }
}

/** The agency an address belongs to, if any. */
export async function agencyOfAddress(pool: Pool, address: string): Promise<string | undefined> {
  const { rows } = await pool.query<{ agency_id: string }>(
    'select agency_id from agency_addresses where address = $1',
    [address.toLowerCase()],
  );
  return rows[0]?.agency_id;
}

// --- agency keys -------------------------------------------------------------------------------------------------------

export interface AgencyKey {
  id: string;
  address: string;
  kind: 'smime' | 'pgp';
  fingerprint: string;
  createdAt: string;
}

export interface NewAgencyKey {
  address: string;
  kind: 'smime' | 'pgp';
  fingerprint: string;
  certificate: Buffer | null;
  publicArmored: string | null;
  /** sealSecret(masterKey, privateKey, {aad: agencyKeyAad(address, fingerprint)}). */
  privateKeySealed: Buffer;
  now: Date;
}

/** What the sealed private key is bound to: the address and the key's fingerprint. */
export function agencyKeyAad(address: string, fingerprint: string): string {
  return `${address.toLowerCase()}|${fingerprint}`;
}

/** Stores an agency key; the same key for the same address again is left as it is (`created: false`). */
export async function addAgencyKey(pool: Pool, key: NewAgencyKey): Promise<{ key: AgencyKey; created: boolean }> {
  const { rows } = await pool.query<{ id: string; created_at: Date }>(
    `insert into agency_keys (id, address, kind, fingerprint, certificate, public_armored, private_key_sealed, created_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (address, fingerprint) do nothing returning id, created_at`,
    [
      newMessageId(key.now.getTime()),
      key.address.toLowerCase(),
      key.kind,
      key.fingerprint,
      key.certificate,
      key.publicArmored,
      key.privateKeySealed,
      key.now,
    ],
  );
  const created = rows[0] !== undefined;
  const row =
    rows[0] ??
    (
      await pool.query<{ id: string; created_at: Date }>(
        'select id, created_at from agency_keys where address = $1 and fingerprint = $2',
        [key.address.toLowerCase(), key.fingerprint],
      )
    ).rows[0];
  if (!row) throw new Error('agency key vanished while it was stored');
  return {
    key: {
      id: row.id,
      address: key.address.toLowerCase(),
      kind: key.kind,
      fingerprint: key.fingerprint,
      createdAt: row.created_at.toISOString(),
    },
    created,
  };
}
