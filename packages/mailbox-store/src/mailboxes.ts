// Mailboxes: one per address, created passive by the first arrival, with a data key of their own. The data key is
// sealed under the mailbox's own key in the key store (mailbox-key-store.ts), outside the database; deleting the
// mailbox deletes the row and that key, so nothing of it can be read again, not even from a database dump taken
// before with the master key beside it (crypto-shredding). Rows made before the key store hold the data key sealed
// under the master key (legacy) until moveMailboxKeysToKeyStore moves them.
import { randomBytes, randomUUID } from 'node:crypto';
import { normalizeDomain } from '@smgw/config';
import type { Pool, PoolClient } from '@smgw/db';
import { type DeletedPortalKeys, deletePortalKeys } from '@smgw/key-directory';
import { isSealedUnder, openSecret, openSecretWithAny, resealSecret, sealSecret } from '@smgw/secrets';
import { MailboxStoreError } from './errors.ts';
import type { MailboxKeyStore } from './mailbox-key-store.ts';

type Queryable = Pool | PoolClient;

export const MAILBOX_STATES = ['passive', 'active', 'locked'] as const;
export type MailboxState = (typeof MAILBOX_STATES)[number];

export interface Mailbox {
  id: string;
  address: string;
  state: MailboxState;
  createdAt: Date;
  activatedAt: Date | null;
  lastLoginAt: Date | null;
  /** Raw message bytes over all folders, counted against SMGW_MAILBOX_QUOTA_BYTES. */
  usageBytes: number;
  /** Whether a password was set (activation); a passive mailbox has none. */
  hasPassword: boolean;
  /** When the password was last set (activation, re-activation); null while it has none. */
  passwordChangedAt: Date | null;
  /** When an operator last locked or unlocked it; null if never. */
  stateChangedAt: Date | null;
  dataKeySealed: Buffer;
}

/**
 * `local@domain` with the local part lower-cased and the domain an A-label: one mailbox per address. A control
 * character (CR, LF, NUL…) is in no address, not even a quoted one, and would split a header field: refused. The
 * portal's own forms accept only plain addresses (plainAddress); arrivals may bring any other valid local part.
 */
export function normalizeMailboxAddress(address: string): string {
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at).trim().toLowerCase();
  const domain = at > 0 ? normalizeDomain(address.slice(at + 1)) : '';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  if (!local || !domain || /[\x00-\x1f\x7f]/.test(local))
    throw new MailboxStoreError('MAILBOX_BAD_ADDRESS', `"${address}" is not a mailbox address`);
  return `${local}@${domain}`;
}

const dataKeyAad = (mailboxId: string) => `smgw-mailbox-key\0${mailboxId}`;

/** A row from before the key store: its data key is sealed under one of the master keys directly. */
function isLegacy(keys: MailboxKeyStore, sealed: Uint8Array): boolean {
  return keys.masterKeys.some((k) => isSealedUnder(k, sealed));
}

/**
 * The mailbox's data key (32 bytes); the caller zeroes it when done. Throws MailboxStoreError MAILBOX_KEY_GONE when
 * the mailbox's key is not in the key store (deleted).
 */
export async function openMailboxKey(
  keys: MailboxKeyStore,
  mailbox: Pick<Mailbox, 'id' | 'dataKeySealed'>,
): Promise<Buffer> {
  if (isLegacy(keys, mailbox.dataKeySealed)) {
    return openSecretWithAny(keys.masterKeys, mailbox.dataKeySealed, { aad: dataKeyAad(mailbox.id) });
  }
  const mailboxKey = await keys.get(mailbox.id);
  if (!mailboxKey) throw new MailboxStoreError('MAILBOX_KEY_GONE', `mailbox ${mailbox.id} has no key any more`);
  try {
    return openSecret(mailboxKey, mailbox.dataKeySealed, { aad: dataKeyAad(mailbox.id) });
  } finally {
    mailboxKey.fill(0);
  }
}

/**
 * Master key rotation of the legacy rows (data key sealed under the master key): each sealed under `from` sealed
 * again under `to`; safe to run again. Rows whose data key is under a key-store key are not touched (`inKeyStore`):
 * their files are re-sealed by rotateMailboxKeyFiles.
 */
export async function resealMailboxKeys(
  pool: Pool,
  keys: { from: Uint8Array; to: Uint8Array },
): Promise<{ resealed: number; alreadyCurrent: number; inKeyStore: number }> {
  const { rows } = await pool.query<{ id: string; data_key_sealed: Buffer }>(
    'select id, data_key_sealed from mailboxes order by id',
  );
  let resealed = 0;
  let alreadyCurrent = 0;
  let inKeyStore = 0;
  for (const row of rows) {
    if (isSealedUnder(keys.to, row.data_key_sealed)) {
      alreadyCurrent++;
      continue;
    }
    if (!isSealedUnder(keys.from, row.data_key_sealed)) {
      inKeyStore++;
      continue;
    }
    const again = resealSecret(keys.from, keys.to, row.data_key_sealed, { aad: dataKeyAad(row.id) });
    // Only if nobody changed it meanwhile (a concurrent rotation, or the reaper moving it to the key store).
    const updated = await pool.query(
      'update mailboxes set data_key_sealed = $2 where id = $1 and data_key_sealed = $3',
      [row.id, again, row.data_key_sealed],
    );
    if ((updated.rowCount ?? 0) > 0) resealed++;
  }
  return { resealed, alreadyCurrent, inKeyStore };
}

/**
 * Gives up to `limit` legacy mailboxes a key in the key store: the file is written first, then the row's data key
 * is sealed under it (only if the row is unchanged). A crash between the two leaves a file without use, which
 * collectOrphanMailboxKeys removes. Returns how many were moved.
 */
export async function moveMailboxKeysToKeyStore(pool: Pool, keys: MailboxKeyStore, limit: number): Promise<number> {
  const { rows } = await pool.query<{ id: string; data_key_sealed: Buffer }>(
    'select id, data_key_sealed from mailboxes order by created_at, id',
  );
  let moved = 0;
  for (const row of rows) {
    if (moved >= limit) break;
    if (!isLegacy(keys, row.data_key_sealed)) continue;
    const dataKey = openSecretWithAny(keys.masterKeys, row.data_key_sealed, { aad: dataKeyAad(row.id) });
    let mailboxKey: Buffer | undefined;
    try {
      mailboxKey = (await keys.get(row.id)) ?? (await keys.create(row.id));
      const sealed = sealSecret(mailboxKey, dataKey, { aad: dataKeyAad(row.id) });
      const updated = await pool.query(
        'update mailboxes set data_key_sealed = $2 where id = $1 and data_key_sealed = $3',
        [row.id, sealed, row.data_key_sealed],
      );
      if ((updated.rowCount ?? 0) > 0) moved++;
    } finally {
      dataKey.fill(0);
      mailboxKey?.fill(0);
    }
  }
  return moved;
}

/**
 * Deletes key-store keys whose mailbox row does not exist, written more than `graceMs` ago (a key is written a
 * moment before its row; a deletion removes the row, then the key, and a crash between leaves the key). Returns how
 * many were deleted.
 */
export async function collectOrphanMailboxKeys(
  pool: Pool,
  keys: MailboxKeyStore,
  now: Date,
  graceMs: number,
): Promise<number> {
  const old = (await keys.list()).filter((k) => k.writtenAt.getTime() < now.getTime() - graceMs);
  if (old.length === 0) return 0;
  const { rows } = await pool.query<{ id: string }>('select id from mailboxes where id = any($1::text[])', [
    old.map((k) => k.mailboxId),
  ]);
  const alive = new Set(rows.map((r) => r.id));
  let destroyed = 0;
  for (const { mailboxId } of old) {
    if (alive.has(mailboxId)) continue;
    await keys.destroy(mailboxId);
    destroyed++;
  }
  return destroyed;
}

/** A mailboxes row as a Mailbox (for the other modules of this package). */
export function mailboxFromRow(row: Record<string, unknown>): Mailbox {
  return {
    id: row.id as string,
    address: row.address as string,
    state: row.state as MailboxState,
    createdAt: row.created_at as Date,
    activatedAt: (row.activated_at as Date | null) ?? null,
    lastLoginAt: (row.last_login_at as Date | null) ?? null,
    usageBytes: Number(row.usage_bytes),
    hasPassword: row.password_hash != null,
    passwordChangedAt: (row.password_changed_at as Date | null) ?? null,
    stateChangedAt: (row.state_changed_at as Date | null) ?? null,
    dataKeySealed: row.data_key_sealed as Buffer,
  };
}

export async function findMailbox(db: Queryable, address: string): Promise<Mailbox | undefined> {
  const found = await db.query('select * from mailboxes where address = $1', [normalizeMailboxAddress(address)]);
  return found.rows[0] ? mailboxFromRow(found.rows[0]) : undefined;
}

/**
 * The address's mailbox, created passive if there is none (also after an earlier deletion): a new data key, sealed
 * under a new key of the key store (written before the row; removed again if another arrival made the mailbox
 * first).
 */
export async function ensureMailbox(
  db: Queryable,
  address: string,
  keys: MailboxKeyStore,
): Promise<{ mailbox: Mailbox; created: boolean }> {
  const normal = normalizeMailboxAddress(address);
  const found = await findMailbox(db, normal);
  if (found) return { mailbox: found, created: false };
  const id = randomUUID();
  const dataKey = randomBytes(32);
  const mailboxKey = await keys.create(id);
  let inserted: Mailbox | undefined;
  try {
    const rows = await db.query(
      `insert into mailboxes (id, address, data_key_sealed) values ($1, $2, $3)
       on conflict (address) do nothing returning *`,
      [id, normal, sealSecret(mailboxKey, dataKey, { aad: dataKeyAad(id) })],
    );
    inserted = rows.rows[0] ? mailboxFromRow(rows.rows[0]) : undefined;
  } finally {
    dataKey.fill(0);
    mailboxKey.fill(0);
    if (!inserted) await keys.destroy(id);
  }
  if (inserted) return { mailbox: inserted, created: true };
  const existing = await findMailbox(db, normal);
  if (!existing) throw new Error(`mailbox of ${normal} vanished while it was being created`);
  return { mailbox: existing, created: false };
}

/** The mailbox row locked for the rest of the transaction (quota decisions are made under it). */
export async function lockMailbox(db: PoolClient, mailboxId: string): Promise<Mailbox | undefined> {
  const found = await db.query('select * from mailboxes where id = $1 for update', [mailboxId]);
  return found.rows[0] ? mailboxFromRow(found.rows[0]) : undefined;
}

export async function findMailboxById(db: Queryable, mailboxId: string): Promise<Mailbox | undefined> {
  const found = await db.query('select * from mailboxes where id = $1', [mailboxId]);
  return found.rows[0] ? mailboxFromRow(found.rows[0]) : undefined;
}

/** The argon2id hash of the mailbox's password; undefined while it has none (passive) or there is no such mailbox. */
export async function mailboxPasswordHash(db: Queryable, mailboxId: string): Promise<string | undefined> {
  const found = await db.query('select password_hash from mailboxes where id = $1', [mailboxId]);
  return found.rows[0]?.password_hash ?? undefined;
}

/**
 * Activation and re-activation: the password (already hashed with argon2id) replaces any earlier one and the
 * mailbox becomes active. A locked mailbox stays locked (an operator's lock is not lifted by a link). Returns the
 * mailbox as it is now, or undefined when there is no such mailbox.
 */
export async function setMailboxPassword(
  db: Queryable,
  mailboxId: string,
  passwordHash: string,
  at: Date,
): Promise<Mailbox | undefined> {
  const updated = await db.query(
    `update mailboxes set password_hash = $2, password_changed_at = $3,
            state = case when state = 'locked' then state else 'active' end,
            activated_at = coalesce(activated_at, $3)
      where id = $1 returning *`,
    [mailboxId, passwordHash, at],
  );
  return updated.rows[0] ? mailboxFromRow(updated.rows[0]) : undefined;
}

/** A successful login: starts a new inactivity period (issue 11), so pending warnings no longer lead to deletion. */
export async function recordMailboxLogin(db: Queryable, mailboxId: string, at: Date): Promise<void> {
  await db.query('update mailboxes set last_login_at = $2 where id = $1', [mailboxId, at]);
}

/**
 * An operator locks or unlocks a mailbox. Unlocking returns it to active when it has a password, else passive.
 * Both revoke every live activation link and PIN (and with them the PIN mails still due): an operator locks on a
 * suspected takeover, and a link made before the lock must not open the mailbox after the unlock; the owner asks for
 * a new one then (re-activation, or the operator's resend). The unlock revokes too: an arrival that read the mailbox
 * before the lock may have made its link after the lock's revocation (nothing makes links for a locked mailbox).
 * Returns the new state, or undefined when there is no such mailbox.
 */
export async function setMailboxLocked(
  db: Queryable,
  mailboxId: string,
  locked: boolean,
  by: string,
  at: Date,
): Promise<MailboxState | undefined> {
  const updated = await db.query(
    `with changed as (
       update mailboxes
          set state = case when $2 then 'locked' when password_hash is null then 'passive' else 'active' end,
              state_changed_at = $3, state_changed_by = $4
        where id = $1 returning state),
     revoked as (
       update mailbox_tokens set revoked_at = $3, secrets_sealed = null
        where mailbox_id = $1 and used_at is null and revoked_at is null
          and exists (select 1 from changed))
     select state from changed`,
    [mailboxId, locked, at, by],
  );
  return updated.rows[0]?.state;
}

/** What a deletion removed: counts, and fingerprints of the keys its owner uploaded (never the keys themselves). */
export interface DeletedMailbox extends DeletedPortalKeys {
  address: string;
  messages: number;
  bytes: number;
}

/**
 * Deletes the mailbox's rows: the row with its sealed data key, and by cascade its messages, tokens and warnings;
 * and the certificates and OpenPGP keys its owner uploaded on the portal for its address (deletePortalKeys of
 * @smgw/key-directory), which are theirs and would otherwise still encrypt their mail. In the caller's transaction,
 * so neither goes without the other. The caller then destroys its key in the key store (`keys.destroy(mailboxId)`)
 * once this has committed: only then is it unreadable also from a dump taken before (a forgotten or crashed destroy is
 * done by the reaper's collectOrphanMailboxKeys). Returns what went, or undefined when there was no such mailbox.
 */
export async function deleteMailbox(db: PoolClient, mailboxId: string): Promise<DeletedMailbox | undefined> {
  const counted = await db.query<{ messages: string; bytes: string }>(
    'select count(*) as messages, coalesce(sum(size), 0) as bytes from mailbox_messages where mailbox_id = $1',
    [mailboxId],
  );
  // The row first: its lock makes an upload that checks for the mailbox afterwards wait for this transaction.
  const deleted = await db.query<{ address: string }>('delete from mailboxes where id = $1 returning address', [
    mailboxId,
  ]);
  const row = deleted.rows[0];
  if (!row) return undefined;
  const portalKeys = await deletePortalKeys(db, row.address);
  return {
    address: row.address,
    messages: Number(counted.rows[0]?.messages ?? 0),
    bytes: Number(counted.rows[0]?.bytes ?? 0),
    ...portalKeys,
  };
}
