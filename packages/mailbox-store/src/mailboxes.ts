// Mailboxes: one per address, created passive by the first arrival, with a data key of their own sealed under the
// master key (aad: the mailbox id). Deleting the row deletes the key, and with it every message (crypto-shredding).
import { randomBytes, randomUUID } from 'node:crypto';
import { normalizeDomain } from '@smgw/config';
import type { Pool, PoolClient } from '@smgw/db';
import { isSealedUnder, openSecretWithAny, resealSecret, sealSecret } from '@smgw/secrets';
import { MailboxStoreError } from './errors.ts';

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
  dataKeySealed: Buffer;
}

/** `local@domain` with the local part lower-cased and the domain an A-label: one mailbox per address. */
export function normalizeMailboxAddress(address: string): string {
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at).trim().toLowerCase();
  const domain = at > 0 ? normalizeDomain(address.slice(at + 1)) : '';
  if (!local || !domain) throw new MailboxStoreError('MAILBOX_BAD_ADDRESS', `"${address}" is not a mailbox address`);
  return `${local}@${domain}`;
}

const dataKeyAad = (mailboxId: string) => `smgw-mailbox-key\0${mailboxId}`;

/**
 * The mailbox's data key (32 bytes); the caller zeroes it when done. `masterKey` may be a key ring (the current key
 * and, during a rotation, the previous one).
 */
export function openMailboxKey(
  masterKey: Uint8Array | readonly Uint8Array[],
  mailbox: Pick<Mailbox, 'id' | 'dataKeySealed'>,
): Buffer {
  const ring = masterKey instanceof Uint8Array ? [masterKey] : masterKey;
  return openSecretWithAny(ring, mailbox.dataKeySealed, { aad: dataKeyAad(mailbox.id) });
}

/** Master key rotation: every mailbox data key sealed under `from` sealed again under `to`; safe to run again. */
export async function resealMailboxKeys(
  pool: Pool,
  keys: { from: Uint8Array; to: Uint8Array },
): Promise<{ resealed: number; alreadyCurrent: number }> {
  const { rows } = await pool.query<{ id: string; data_key_sealed: Buffer }>(
    'select id, data_key_sealed from mailboxes order by id',
  );
  let resealed = 0;
  let alreadyCurrent = 0;
  for (const row of rows) {
    if (isSealedUnder(keys.to, row.data_key_sealed)) {
      alreadyCurrent++;
      continue;
    }
    const again = resealSecret(keys.from, keys.to, row.data_key_sealed, { aad: dataKeyAad(row.id) });
    // Only if nobody changed it meanwhile (a row is sealed once, at creation; this guards a concurrent rotation).
    const updated = await pool.query(
      'update mailboxes set data_key_sealed = $2 where id = $1 and data_key_sealed = $3',
      [row.id, again, row.data_key_sealed],
    );
    if ((updated.rowCount ?? 0) > 0) resealed++;
  }
  return { resealed, alreadyCurrent };
}

function toMailbox(row: Record<string, unknown>): Mailbox {
  return {
    id: row.id as string,
    address: row.address as string,
    state: row.state as MailboxState,
    createdAt: row.created_at as Date,
    activatedAt: (row.activated_at as Date | null) ?? null,
    lastLoginAt: (row.last_login_at as Date | null) ?? null,
    usageBytes: Number(row.usage_bytes),
    hasPassword: row.password_hash != null,
    dataKeySealed: row.data_key_sealed as Buffer,
  };
}

export async function findMailbox(db: Queryable, address: string): Promise<Mailbox | undefined> {
  const found = await db.query('select * from mailboxes where address = $1', [normalizeMailboxAddress(address)]);
  return found.rows[0] ? toMailbox(found.rows[0]) : undefined;
}

/** The address's mailbox, created passive with a new data key if there is none (also after an earlier deletion). */
export async function ensureMailbox(
  db: Queryable,
  address: string,
  masterKey: Uint8Array,
): Promise<{ mailbox: Mailbox; created: boolean }> {
  const normal = normalizeMailboxAddress(address);
  const id = randomUUID();
  const dataKey = randomBytes(32);
  try {
    const inserted = await db.query(
      `insert into mailboxes (id, address, data_key_sealed) values ($1, $2, $3)
       on conflict (address) do nothing returning *`,
      [id, normal, sealSecret(masterKey, dataKey, { aad: dataKeyAad(id) })],
    );
    if (inserted.rows[0]) return { mailbox: toMailbox(inserted.rows[0]), created: true };
  } finally {
    dataKey.fill(0);
  }
  const existing = await findMailbox(db, normal);
  if (!existing) throw new Error(`mailbox of ${normal} vanished while it was being created`);
  return { mailbox: existing, created: false };
}

/** The mailbox row locked for the rest of the transaction (quota decisions are made under it). */
export async function lockMailbox(db: PoolClient, mailboxId: string): Promise<Mailbox | undefined> {
  const found = await db.query('select * from mailboxes where id = $1 for update', [mailboxId]);
  return found.rows[0] ? toMailbox(found.rows[0]) : undefined;
}

export async function findMailboxById(db: Queryable, mailboxId: string): Promise<Mailbox | undefined> {
  const found = await db.query('select * from mailboxes where id = $1', [mailboxId]);
  return found.rows[0] ? toMailbox(found.rows[0]) : undefined;
}

/** The argon2id hash of the mailbox's password; undefined while it has none (passive) or there is no such mailbox. */
export async function mailboxPasswordHash(db: Queryable, mailboxId: string): Promise<string | undefined> {
  const found = await db.query('select password_hash from mailboxes where id = $1', [mailboxId]);
  return found.rows[0]?.password_hash ?? undefined;
}

/**
 * Activation and re-activation: the password (already hashed with argon2id) replaces any earlier one and the
 * mailbox becomes active. A locked mailbox stays locked (an operator's lock is not lifted by a link).
 */
export async function setMailboxPassword(db: Queryable, mailboxId: string, passwordHash: string, at: Date) {
  await db.query(
    `update mailboxes set password_hash = $2, password_changed_at = $3,
            state = case when state = 'locked' then state else 'active' end,
            activated_at = coalesce(activated_at, $3)
      where id = $1`,
    [mailboxId, passwordHash, at],
  );
}

/** A successful login: starts a new inactivity period (issue 11), so pending warnings no longer lead to deletion. */
export async function recordMailboxLogin(db: Queryable, mailboxId: string, at: Date): Promise<void> {
  await db.query('update mailboxes set last_login_at = $2 where id = $1', [mailboxId, at]);
}

/**
 * An operator locks or unlocks a mailbox. Unlocking returns it to active when it has a password, else passive.
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
    `update mailboxes
        set state = case when $2 then 'locked' when password_hash is null then 'passive' else 'active' end,
            state_changed_at = $3, state_changed_by = $4
      where id = $1 returning state`,
    [mailboxId, locked, at, by],
  );
  return updated.rows[0]?.state;
}

/**
 * Deletes the mailbox for good: the row with its sealed data key, and by cascade its messages, tokens and
 * warnings. Without the data key nothing of it can be read again, also not from a backup taken before
 * (crypto-shredding). Returns what went, or undefined when there was no such mailbox.
 */
export async function deleteMailbox(
  db: Queryable,
  mailboxId: string,
): Promise<{ address: string; messages: number; bytes: number } | undefined> {
  const counted = await db.query<{ messages: string; bytes: string }>(
    'select count(*) as messages, coalesce(sum(size), 0) as bytes from mailbox_messages where mailbox_id = $1',
    [mailboxId],
  );
  const deleted = await db.query<{ address: string }>('delete from mailboxes where id = $1 returning address', [
    mailboxId,
  ]);
  const row = deleted.rows[0];
  if (!row) return undefined;
  return {
    address: row.address,
    messages: Number(counted.rows[0]?.messages ?? 0),
    bytes: Number(counted.rows[0]?.bytes ?? 0),
  };
}
