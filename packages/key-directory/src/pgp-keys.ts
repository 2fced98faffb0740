// OpenPGP public keys (pgp_keys, migration 008) with their trust state: imported by an operator or harvested from
// inbound mail as pending; only an approved key is used for encryption. Addresses are stored lower-case.
import { type Pool, preparedStatement } from '@smgw/db';

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** Who brought it: an operator, inbound mail, or the key's holder on the portal (migration 013). */
export type PgpKeySource = 'imported' | 'harvested' | 'portal';

export const PGP_KEY_STATES = ['pending', 'approved', 'rejected'] as const;
export type PgpKeyState = (typeof PGP_KEY_STATES)[number];

export interface StoredPgpKey {
  fingerprint: string;
  addresses: string[];
  algorithm: string;
  expiresAt: string | null;
  state: PgpKeyState;
  source: PgpKeySource;
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
  source: PgpKeySource;
}

interface PgpKeyRow {
  fingerprint: string;
  addresses: string[];
  algorithm: string;
  expires_at: Date | null;
  state: PgpKeyState;
  source: PgpKeySource;
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

export interface PgpKeyForEncryption {
  fingerprint: string;
  armored: string;
  state: PgpKeyState;
}

/** The OpenPGP keys of address $1, for every outbound message: `@>`, so the addresses index serves it. */
export const PGP_KEYS_FOR = preparedStatement(
  'key-directory-pgp-keys-for',
  `select fingerprint, armored, state from pgp_keys
    where addresses @> array[$1::text]
    order by (state = 'approved') desc, created_at desc`,
);

/** The OpenPGP keys for the address in any state, approved first, newest first. */
export async function pgpKeysFor(pool: Pool, address: string): Promise<PgpKeyForEncryption[]> {
  const { rows } = await pool.query<PgpKeyForEncryption>(PGP_KEYS_FOR([address.toLowerCase()]));
  return rows;
}

/**
 * Stores a key a sender offered in inbound mail as pending, source `harvested` (addPgpKey): an operator approves it
 * before it is used. A key already in the directory keeps its row and state (`created: false`).
 */
export async function storeHarvestedPgpKey(pool: Pool, key: Omit<NewPgpKey, 'source'>): Promise<{ created: boolean }> {
  const { created } = await addPgpKey(pool, { ...key, source: 'harvested' });
  return { created };
}
