// OpenPGP public keys (pgp_keys, migrations 008 and 019) with their trust state: imported by an operator, harvested from
// inbound mail or brought on the portal as pending; a key is used for encryption only for the addresses an operator
// approved it for (approved_addresses). Through approvePgpKey an address has one approved key at a time: approving
// another for it must name the address and withdraws the first. A key an operator imports is theirs (source
// `imported`) even when mail or the portal brought it first. Addresses are stored lower-case.
import { type Pool, type PoolClient, preparedStatement, withTransaction } from '@smgw/db';

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

/** Who brought it: an operator, inbound mail, or the key's holder on the portal (migration 013). */
export type PgpKeySource = 'imported' | 'harvested' | 'portal';

export const PGP_KEY_STATES = ['pending', 'approved', 'rejected'] as const;
export type PgpKeyState = (typeof PGP_KEY_STATES)[number];

export interface StoredPgpKey {
  fingerprint: string;
  addresses: string[];
  /** The addresses it is used for: those an operator approved it for (a subset of `addresses`). */
  approvedAddresses: string[];
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
  approved_addresses: string[];
  algorithm: string;
  expires_at: Date | null;
  state: PgpKeyState;
  source: PgpKeySource;
  state_changed_by: string | null;
  state_changed_at: Date | null;
  created_at: Date;
}

const PGP_COLUMNS =
  'fingerprint, addresses, approved_addresses, algorithm, expires_at, state, source, state_changed_by, state_changed_at, created_at';

const toPgpKey = (r: PgpKeyRow): StoredPgpKey => ({
  fingerprint: r.fingerprint,
  addresses: r.addresses,
  approvedAddresses: r.approved_addresses,
  algorithm: r.algorithm,
  expiresAt: iso(r.expires_at),
  state: r.state,
  source: r.source,
  stateChangedBy: r.state_changed_by,
  stateChangedAt: iso(r.state_changed_at),
  createdAt: r.created_at.toISOString(),
});

export interface AddedPgpKey {
  key: StoredPgpKey;
  created: boolean;
  /**
   * Set when an operator imported a key already stored from mail or the portal: the source it had. The key is the
   * operator's from now on (source `imported`), so it no longer goes with a portal mailbox (deletePortalPgpKeys).
   */
  takenOverFrom?: PgpKeySource;
}

/**
 * Stores a key as pending; a key already there (same fingerprint) keeps its row, addresses and state
 * (`created: false`). Imported by an operator, it becomes theirs: an operator who imports a key a portal user uploaded
 * decided to use it, and it must not be deleted with that user's mailbox. Its addresses stay those stored (a portal
 * key: the user's address alone), so taking it over approves nothing and adds no address.
 */
export async function addPgpKey(pool: Pool, key: NewPgpKey): Promise<AddedPgpKey> {
  const byOperator = key.source === 'imported';
  return withTransaction(pool, async (db) => {
    // A second round only when the key went between the insert and the read (its portal mailbox was deleted).
    for (let round = 1; ; round++) {
      const inserted = await db.query<PgpKeyRow>(
        `insert into pgp_keys (fingerprint, armored, addresses, algorithm, expires_at, state, source)
         values ($1, $2, $3, $4, $5, 'pending', $6) on conflict (fingerprint) do nothing returning ${PGP_COLUMNS}`,
        [key.fingerprint, key.armored, key.addresses, key.algorithm, key.expiresAt, key.source],
      );
      if (inserted.rows[0]) return { key: toPgpKey(inserted.rows[0]), created: true };
      const { rows } = await db.query<PgpKeyRow>(
        `select ${PGP_COLUMNS} from pgp_keys where fingerprint = $1${byOperator ? ' for update' : ''}`,
        [key.fingerprint],
      );
      const existing = rows[0];
      if (!existing) {
        if (round < 3) continue;
        throw new Error(`the OpenPGP key ${key.fingerprint} was deleted each time it was stored`);
      }
      if (!byOperator || existing.source === 'imported') return { key: toPgpKey(existing), created: false };
      const taken = await db.query<PgpKeyRow>(
        `update pgp_keys set source = 'imported' where fingerprint = $1 returning ${PGP_COLUMNS}`,
        [key.fingerprint],
      );
      return { key: toPgpKey(taken.rows[0] as PgpKeyRow), created: false, takenOverFrom: existing.source };
    }
  });
}

export async function getPgpKey(pool: Pool, fingerprint: string): Promise<StoredPgpKey | undefined> {
  const { rows } = await pool.query<PgpKeyRow>(`select ${PGP_COLUMNS} from pgp_keys where fingerprint = $1`, [
    fingerprint,
  ]);
  return rows[0] ? toPgpKey(rows[0]) : undefined;
}

/**
 * Replaces a stored key's armored text and expiry by what `merge` makes of the stored text (a newer copy of the same
 * key merged in: mergePublicKeyUpdate of @smgw/crypto), with the row locked, so two updates at once both land. Its
 * addresses, state and approvals stay: the primary key they were decided for signed what was added. Undefined when
 * there is no such key (`merge` is then not called).
 */
export async function updatePgpKeyMaterial(
  pool: Pool,
  fingerprint: string,
  merge: (armored: string) => Promise<{ armored: string; expiresAt: Date | null }>,
): Promise<StoredPgpKey | undefined> {
  return withTransaction(pool, async (db) => {
    const { rows } = await db.query<{ armored: string }>(
      'select armored from pgp_keys where fingerprint = $1 for update',
      [fingerprint],
    );
    if (!rows[0]) return undefined;
    const merged = await merge(rows[0].armored);
    const updated = await db.query<PgpKeyRow>(
      `update pgp_keys set armored = $2, expires_at = $3 where fingerprint = $1 returning ${PGP_COLUMNS}`,
      [fingerprint, merged.armored, merged.expiresAt],
    );
    return toPgpKey(updated.rows[0] as PgpKeyRow);
  });
}

/** The armored key as stored (public only). */
export async function getPgpKeyArmored(pool: Pool, fingerprint: string): Promise<string | undefined> {
  const { rows } = await pool.query<{ armored: string }>('select armored from pgp_keys where fingerprint = $1', [
    fingerprint,
  ]);
  return rows[0]?.armored;
}

/** One address an approval took from another key: from now on `address` is encrypted to the approved key instead. */
export interface WithdrawnApproval {
  address: string;
  fingerprint: string;
}

export type PgpKeyApproval =
  | { ok: true; key: StoredPgpKey; replaced: WithdrawnApproval[] }
  | { ok: false; code: 'PGP_KEY_NOT_FOUND'; message: string }
  | { ok: false; code: 'PGP_KEY_ADDRESS_NOT_IN_KEY'; message: string }
  /** A key no operator imported that holds several addresses: the approval must name those it is for. */
  | { ok: false; code: 'PGP_KEY_ADDRESSES_REQUIRED'; message: string }
  /** Addresses not named in the approval already have another approved key: nothing was changed. */
  | { ok: false; code: 'PGP_KEY_ADDRESS_HAS_APPROVED_KEY'; message: string; approved: WithdrawnApproval[] };

/**
 * Approves a key for `addresses` (default: every address it holds), recording who and when. An address that already
 * has another approved key keeps it unless the approval names that address: a key approved for its holder must not
 * be displaced by a newer one without an operator saying so for that address. Named, the other key's approval for
 * the address is withdrawn (`replaced`; the key stays approved for its other addresses). A key that mail or the
 * portal brought and that holds several addresses is approved only for addresses named: harvesting stored every
 * address of a key's user IDs before it stored the sender's alone, so a stranger's key may name a citizen too
 * (migration 023 took such approvals back).
 */
export async function approvePgpKey(
  pool: Pool,
  approval: { fingerprint: string; addresses?: string[] | undefined; operator: string; at: Date },
): Promise<PgpKeyApproval> {
  const key = await getPgpKey(pool, approval.fingerprint);
  if (!key) return { ok: false, code: 'PGP_KEY_NOT_FOUND', message: `no OpenPGP key ${approval.fingerprint}` };
  const named = approval.addresses !== undefined;
  if (!named && key.source !== 'imported' && key.addresses.length > 1) {
    return {
      ok: false,
      code: 'PGP_KEY_ADDRESSES_REQUIRED',
      message:
        `the key ${key.fingerprint} came from ${key.source === 'portal' ? 'the portal' : 'inbound mail'} and is stored ` +
        `for ${key.addresses.join(', ')}: name the addresses it is for (not every address a key names is its holder's)`,
    };
  }
  const wanted = [...new Set((approval.addresses ?? key.addresses).map((a) => a.toLowerCase()))].sort();
  const foreign = wanted.filter((a) => !key.addresses.includes(a));
  if (foreign.length > 0 || wanted.length === 0) {
    return {
      ok: false,
      code: 'PGP_KEY_ADDRESS_NOT_IN_KEY',
      message: `the key ${key.fingerprint} is stored for ${key.addresses.join(', ')}, not for ${foreign.join(', ') || 'no address'}`,
    };
  }
  const client = await pool.connect();
  try {
    await client.query('begin');
    // One approval per address at a time, so two keys cannot both become the approved one (a key's addresses never
    // change once stored, so they are known before the lock).
    for (const address of wanted) {
      await client.query('select pg_advisory_xact_lock(hashtext($1))', [`pgp-approvals:${address}`]);
    }
    const others = await client.query<{ fingerprint: string; approved_addresses: string[] }>(
      `select fingerprint, approved_addresses from pgp_keys
        where fingerprint <> $1 and approved_addresses && $2 order by fingerprint for update`,
      [key.fingerprint, wanted],
    );
    const taken = others.rows.flatMap((row) =>
      row.approved_addresses
        .filter((a) => wanted.includes(a))
        .map((address) => ({ address, fingerprint: row.fingerprint })),
    );
    if (taken.length > 0 && !named) {
      await client.query('rollback');
      return {
        ok: false,
        code: 'PGP_KEY_ADDRESS_HAS_APPROVED_KEY',
        message:
          `${taken.map((t) => `${t.address} has the approved key ${t.fingerprint}`).join('; ')}: ` +
          'name the addresses to approve this key for (the other key is then no longer used for them)',
        approved: taken,
      };
    }
    if (taken.length > 0) {
      await client.query(
        `update pgp_keys set approved_addresses = array(select a from unnest(approved_addresses) a where a <> all($2))
          where fingerprint = any($1)`,
        [[...new Set(taken.map((t) => t.fingerprint))], wanted],
      );
    }
    const { rows } = await client.query<PgpKeyRow>(
      `update pgp_keys set state = 'approved', state_changed_by = $3, state_changed_at = $4,
         approved_addresses = array(select a from unnest(addresses) a where a = any(approved_addresses || $2::text[]))
        where fingerprint = $1 returning ${PGP_COLUMNS}`,
      [key.fingerprint, wanted, approval.operator, approval.at],
    );
    if (!rows[0]) {
      // Deleted since it was read (its portal mailbox went, deletePortalPgpKeys): nothing is approved or withdrawn.
      await client.query('rollback');
      return { ok: false, code: 'PGP_KEY_NOT_FOUND', message: `no OpenPGP key ${approval.fingerprint}` };
    }
    await client.query('commit');
    return { ok: true, key: toPgpKey(rows[0]), replaced: taken };
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** Rejects a key: it is used for no address any more. Undefined when there is no such key. */
export async function rejectPgpKey(
  pool: Pool,
  change: { fingerprint: string; operator: string; at: Date },
): Promise<StoredPgpKey | undefined> {
  const { rows } = await pool.query<PgpKeyRow>(
    `update pgp_keys set state = 'rejected', approved_addresses = '{}', state_changed_by = $2, state_changed_at = $3
      where fingerprint = $1 returning ${PGP_COLUMNS}`,
    [change.fingerprint, change.operator, change.at],
  );
  return rows[0] ? toPgpKey(rows[0]) : undefined;
}

/**
 * Deletes the OpenPGP keys uploaded on the portal for `address` (source `portal`, in any state), in the caller's
 * transaction: they go with the address's mailbox (deletePortalKeys). Returns their fingerprints. Keys of other
 * sources stay; a key whose approval for the address an approval of the deleted key withdrew stays withdrawn.
 */
export async function deletePortalPgpKeys(db: PoolClient, address: string): Promise<string[]> {
  const lower = address.toLowerCase();
  // The lock of approvePgpKey: an approval in progress finishes first, or finds the key gone.
  await db.query('select pg_advisory_xact_lock(hashtext($1))', [`pgp-approvals:${lower}`]);
  const { rows } = await db.query<{ fingerprint: string }>(
    `delete from pgp_keys where source = 'portal' and addresses @> array[$1::text] returning fingerprint`,
    [lower],
  );
  return rows.map((r) => r.fingerprint).sort();
}

/** What a key is for one of its addresses: approved only when approved for that address. */
export function pgpKeyStateFor(key: { state: PgpKeyState; approvedAddresses: string[] }, address: string): PgpKeyState {
  if (key.approvedAddresses.includes(address.toLowerCase())) return 'approved';
  return key.state === 'rejected' ? 'rejected' : 'pending';
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
  /** For the address looked up (pgpKeyStateFor): `approved` only when approved for it. */
  state: PgpKeyState;
}

/**
 * The OpenPGP keys of address $1, for every outbound message: `@>`, so the addresses index serves it. The key approved
 * for the address first (approvePgpKey keeps it to one; of keys approved before migration 019, the newest).
 */
export const PGP_KEYS_FOR = preparedStatement(
  'key-directory-pgp-keys-for',
  `select fingerprint, armored, state, approved_addresses as "approvedAddresses" from pgp_keys
    where addresses @> array[$1::text]
    order by approved_addresses @> array[$1::text] desc, created_at desc`,
);

/** The OpenPGP keys for the address in any state, the one approved for it first, then newest first. */
export async function pgpKeysFor(pool: Pool, address: string): Promise<PgpKeyForEncryption[]> {
  const lower = address.toLowerCase();
  const { rows } = await pool.query<PgpKeyForEncryption & { approvedAddresses: string[] }>(PGP_KEYS_FOR([lower]));
  return rows.map((row) => ({ fingerprint: row.fingerprint, armored: row.armored, state: pgpKeyStateFor(row, lower) }));
}

/**
 * Stores a key a sender offered in inbound mail as pending, source `harvested` (addPgpKey): an operator approves it
 * before it is used. A key already in the directory keeps its row and state (`created: false`).
 */
export async function storeHarvestedPgpKey(pool: Pool, key: Omit<NewPgpKey, 'source'>): Promise<{ created: boolean }> {
  const { created } = await addPgpKey(pool, { ...key, source: 'harvested' });
  return { created };
}
