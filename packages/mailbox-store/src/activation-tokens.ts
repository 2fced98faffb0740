// Activation tokens: a one-time link (32 random bytes, kept as its SHA-256) and a PIN (kept as an argon2id hash,
// hashed as submission passwords are). Until the mailbox is activated, link and PIN are also sealed under the
// mailbox's data key, so that later arrivals and the delayed PIN mail send the same ones again: one live token per
// mailbox, reused until it expires, is used, or is revoked.
import { createHash, randomBytes, randomInt, randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from '@smgw/db';
import { openSecret, SecretError, sealSecret } from '@smgw/secrets';
import { hashPassword, verifyPassword } from '@smgw/submission-accounts';
import { recordMailboxAudit } from './audit.ts';
import { MailboxStoreError } from './errors.ts';
import type { MailboxKeyStore } from './mailbox-key-store.ts';
import { type Mailbox, openMailboxKey } from './mailboxes.ts';

type Queryable = Pool | PoolClient;

export const PIN_DIGITS = 8;

/** What the link and the PIN mails carry; never stored in clear. */
export interface ActivationSecrets {
  /** The token in the link (base64url of 32 random bytes). */
  link: string;
  pin: string;
}

export interface ActivationToken {
  id: string;
  mailboxId: string;
  createdAt: Date;
  expiresAt: Date;
  pinMailDueAt: Date;
  pinMailSentAt: Date | null;
  /** Why it was made: a message's arrival, self-registration, or re-activation (then no message and trace). */
  purpose: TokenPurpose;
  /** The message whose arrival made the token, and its trace: the PIN mail belongs to that trace. */
  messageId: string | null;
  traceId: string | null;
  /** Wrong PINs entered so far. */
  attempts: number;
  usedAt: Date | null;
  revokedAt: Date | null;
}

export const TOKEN_PURPOSES = ['arrival', 'registration', 'reactivation'] as const;
export type TokenPurpose = (typeof TOKEN_PURPOSES)[number];

/** The stored form of a link token: its SHA-256 (a 256-bit random token needs no slow hash). */
export function linkHash(link: string): Buffer {
  return createHash('sha256').update(link, 'utf8').digest();
}

const secretsAad = (mailboxId: string, tokenId: string) => `smgw-mailbox-token\0${mailboxId}\0${tokenId}`;

function newSecrets(): ActivationSecrets {
  const pin = String(randomInt(0, 10 ** PIN_DIGITS)).padStart(PIN_DIGITS, '0');
  return { link: randomBytes(32).toString('base64url'), pin };
}

/** A mailbox_tokens row as a token (for the package's other modules). */
export function toToken(row: Record<string, unknown>): ActivationToken {
  return {
    id: row.id as string,
    mailboxId: row.mailbox_id as string,
    createdAt: row.created_at as Date,
    expiresAt: row.expires_at as Date,
    pinMailDueAt: row.pin_mail_due_at as Date,
    pinMailSentAt: (row.pin_mail_sent_at as Date | null) ?? null,
    purpose: row.purpose as TokenPurpose,
    messageId: (row.message_id as string | null) ?? null,
    traceId: (row.trace_id as string | null) ?? null,
    attempts: Number(row.attempts),
    usedAt: (row.used_at as Date | null) ?? null,
    revokedAt: (row.revoked_at as Date | null) ?? null,
  };
}

export function openTokenSecrets(
  dataKey: Uint8Array,
  mailboxId: string,
  tokenId: string,
  sealed: Buffer,
): ActivationSecrets {
  return JSON.parse(openSecret(dataKey, sealed, { aad: secretsAad(mailboxId, tokenId) }).toString('utf8'));
}

export interface EnsureTokenInput {
  mailbox: Mailbox;
  /** The key store that opens the mailbox's data key (openMailboxKey). */
  keys: MailboxKeyStore;
  now: Date;
  /** How long a new link stays valid (SMGW_ACTIVATION_LINK_LIFETIME). */
  lifetimeMs: number;
  /** When the recipient's PIN mail of a new token is due (SMGW_PIN_DELAY). */
  pinDelayMs: number;
  /** The arrival that needs the token; absent for self-registration and re-activation. */
  messageId?: string;
  traceId?: string;
  /** Default 'arrival'. */
  purpose?: TokenPurpose;
}

/**
 * The mailbox's live token with its link and PIN: the existing one while it has not expired, else a new one (an
 * expired one is revoked first). `created` tells whether this call made it (then its PIN mail is still to come).
 */
export async function ensureActivationToken(
  db: Pool,
  input: EnsureTokenInput,
): Promise<{ token: ActivationToken; secrets: ActivationSecrets; created: boolean }> {
  const { mailbox } = input;
  const dataKey = await openMailboxKey(input.keys, mailbox);
  try {
    for (let round = 0; round < 3; round++) {
      const live = await db.query(
        'select * from mailbox_tokens where mailbox_id = $1 and used_at is null and revoked_at is null',
        [mailbox.id],
      );
      const row = live.rows[0];
      if (row && row.expires_at > input.now && row.secrets_sealed) {
        const secrets = openTokenSecrets(dataKey, mailbox.id, row.id, row.secrets_sealed);
        return { token: toToken(row), secrets, created: false };
      }
      if (row) await revokeToken(db, row.id, input.now);

      const made = await insertToken(db, dataKey, input);
      if (made) return { ...made, created: true };
      // A concurrent arrival made one first: take that one.
    }
    throw new Error(`no live activation token for mailbox ${mailbox.id} after three rounds`);
  } finally {
    dataKey.fill(0);
  }
}

async function insertToken(
  db: Queryable,
  dataKey: Uint8Array,
  input: EnsureTokenInput,
): Promise<{ token: ActivationToken; secrets: ActivationSecrets } | undefined> {
  const { mailbox } = input;
  const id = randomUUID();
  const secrets = newSecrets();
  const inserted = await db.query(
    `insert into mailbox_tokens (id, mailbox_id, link_hash, pin_hash, secrets_sealed, created_at, expires_at,
       pin_mail_due_at, message_id, trace_id, purpose)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     on conflict (mailbox_id) where used_at is null and revoked_at is null do nothing
     returning *`,
    [
      id,
      mailbox.id,
      linkHash(secrets.link),
      await hashPassword(secrets.pin),
      sealSecret(dataKey, Buffer.from(JSON.stringify(secrets)), { aad: secretsAad(mailbox.id, id) }),
      input.now,
      new Date(input.now.getTime() + input.lifetimeMs),
      new Date(input.now.getTime() + input.pinDelayMs),
      input.messageId ?? null,
      input.traceId ?? null,
      input.purpose ?? 'arrival',
    ],
  );
  return inserted.rows[0] ? { token: toToken(inserted.rows[0]), secrets } : undefined;
}

/**
 * How long a new link of the mailbox lives. A link to a mailbox that has a password replaces it (a reset: a forgotten
 * password, an operator's resend): whoever finds that mail later takes the mailbox over, so it lives `resetMs`
 * (SMGW_REACTIVATION_LINK_LIFETIME), far shorter than an activation link's `activationMs`.
 */
export function linkLifetimeOf(
  mailbox: Pick<Mailbox, 'hasPassword'>,
  lifetimes: { activationMs: number; resetMs: number },
): number {
  return mailbox.hasPassword ? lifetimes.resetMs : lifetimes.activationMs;
}

/**
 * Re-activation and self-registration: every earlier link and PIN of the mailbox stops working at once and a new
 * token is made (its PIN mail due after `pinDelayMs`). Runs in the caller's transaction so the revocation and the
 * new token commit together.
 */
export async function replaceActivationToken(
  db: PoolClient,
  input: EnsureTokenInput,
): Promise<{ token: ActivationToken; secrets: ActivationSecrets }> {
  await db.query(
    `update mailbox_tokens set revoked_at = $2, secrets_sealed = null
      where mailbox_id = $1 and used_at is null and revoked_at is null`,
    [input.mailbox.id, input.now],
  );
  const dataKey = await openMailboxKey(input.keys, input.mailbox);
  try {
    const made = await insertToken(db, dataKey, input);
    if (!made) throw new Error(`mailbox ${input.mailbox.id} still has a live token after revoking them all`);
    return made;
  } finally {
    dataKey.fill(0);
  }
}

export type LinkLookup =
  | { kind: 'live'; token: ActivationToken }
  /** Used, revoked (re-activation, too many wrong PINs) or expired: the page offers re-activation. */
  | { kind: 'dead'; token: ActivationToken }
  | { kind: 'unknown' };

/** The token a link carries. The lookup is by SHA-256 of a 256-bit random value, so timing reveals nothing useful. */
export async function findTokenByLink(db: Queryable, link: string, now: Date): Promise<LinkLookup> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(link)) return { kind: 'unknown' };
  const found = await db.query('select * from mailbox_tokens where link_hash = $1', [linkHash(link)]);
  const row = found.rows[0];
  if (!row) return { kind: 'unknown' };
  const token = toToken(row);
  const live = !token.usedAt && !token.revokedAt && token.expiresAt > now;
  return live ? { kind: 'live', token } : { kind: 'dead', token };
}

export type PinCheck = 'right' | 'wrong' | 'dead';

/**
 * Checks a PIN against a live token. Every attempt is counted first (in one statement, so parallel guesses cannot
 * slip past the limit); the attempt that reaches `maxAttempts` wrong PINs revokes the token: the link is dead and a
 * new one must be requested. 'dead' when the token was not live.
 */
export async function checkTokenPin(
  db: Pool,
  tokenId: string,
  pin: string,
  maxAttempts: number,
  now: Date,
): Promise<PinCheck> {
  const counted = await db.query(
    `update mailbox_tokens set attempts = attempts + 1
      where id = $1 and used_at is null and revoked_at is null and expires_at > $2 and attempts < $3
      returning pin_hash, attempts`,
    [tokenId, now, maxAttempts],
  );
  const row = counted.rows[0];
  if (!row) return 'dead';
  if (pin.length === PIN_DIGITS && /^[0-9]+$/.test(pin) && (await verifyPassword(pin, row.pin_hash))) return 'right';
  if (Number(row.attempts) >= maxAttempts) await revokeToken(db, tokenId, now);
  return 'wrong';
}

/** Uses the token up (single use); false when it was not live any more (used, revoked or expired meanwhile). */
export async function useToken(db: Queryable, tokenId: string, now: Date): Promise<boolean> {
  const used = await db.query(
    `update mailbox_tokens set used_at = $2, secrets_sealed = null
      where id = $1 and used_at is null and revoked_at is null and expires_at > $2`,
    [tokenId, now],
  );
  return (used.rowCount ?? 0) > 0;
}

/** The token stops working at once; its sealed link and PIN are dropped. */
export async function revokeToken(db: Queryable, tokenId: string, at: Date): Promise<void> {
  await db.query(
    'update mailbox_tokens set revoked_at = $2, secrets_sealed = null where id = $1 and revoked_at is null',
    [tokenId, at],
  );
}

export interface DuePinMail {
  token: ActivationToken;
  address: string;
  secrets: ActivationSecrets;
}

/** Tokens (t) with their mailbox's address and sealed data key (m), for openDueTokens; a query adds its where. */
export const DUE_TOKENS_FROM =
  'select t.*, m.address, m.data_key_sealed from mailbox_tokens t join mailboxes m on m.id = t.mailbox_id';

/** A row of DUE_TOKENS_FROM. */
export interface DueTokenRow extends Record<string, unknown> {
  id: string;
  mailbox_id: string;
  address: string;
  data_key_sealed: Mailbox['dataKeySealed'];
  secrets_sealed: Buffer;
}

/** Rows of DUE_TOKENS_FROM as tokens with their link and PIN opened (each data key wiped after use). */
export async function openDueTokens(keys: MailboxKeyStore, rows: DueTokenRow[]): Promise<DuePinMail[]> {
  const due: DuePinMail[] = [];
  for (const row of rows) {
    const dataKey = await openMailboxKey(keys, { id: row.mailbox_id, dataKeySealed: row.data_key_sealed });
    try {
      due.push({
        token: toToken(row),
        address: row.address,
        secrets: openTokenSecrets(dataKey, row.mailbox_id, row.id, row.secrets_sealed),
      });
    } finally {
      dataKey.fill(0);
    }
  }
  return due;
}

/**
 * Audit event (detail: tokenId, mail, code): the token's mails can never be sent, because its mailbox key is gone or
 * its key, data key or sealed link and PIN do not open. The sweeps skip such a token from then on instead of trying
 * it again at every tick; the token itself is left as it is (an operator's resend makes a new one).
 */
export const TOKEN_MAILS_ABANDONED_EVENT = 'mailbox.token-mails-abandoned';

/** A where clause (on DUE_TOKENS_FROM's t) that leaves out tokens marked with TOKEN_MAILS_ABANDONED_EVENT. */
export const NOT_ABANDONED_TOKEN = `not exists (select 1 from mailbox_audit a
  where a.mailbox_id = t.mailbox_id and a.event = '${TOKEN_MAILS_ABANDONED_EVENT}' and a.detail->>'tokenId' = t.id)`;

const DUE_PIN_MAILS_WHERE = `where t.pin_mail_sent_at is null and t.pin_mail_due_at <= $1 and t.used_at is null
    and t.revoked_at is null and t.expires_at > $1 and t.secrets_sealed is not null and ${NOT_ABANDONED_TOKEN}`;

/** Why a due token could not be opened. */
export type DueTokenFailureCode =
  /** The mailbox's key is not in the key store (permanent). */
  | 'MAILBOX_KEY_GONE'
  /**
   * The key file, or the data key sealed under it, does not open: damaged, or not this master key. Not permanent: a
   * wrong SMGW_MASTER_KEY (an operator's mistake, mended by a restart) would otherwise abandon every due token.
   */
  | 'MAILBOX_KEY_DAMAGED'
  /** The token's sealed link and PIN do not open under the data key (permanent). */
  | 'MAILBOX_TOKEN_SECRETS_DAMAGED'
  /** The key store could not be read (temporary: the folder, the disk). */
  | 'MAILBOX_KEY_STORE_FAILED';

/** A due token opened, or why not: `permanent` when trying again can never help. */
export type OpenedDueToken =
  | { ok: true; due: DuePinMail }
  | {
      ok: false;
      token: ActivationToken;
      address: string;
      code: DueTokenFailureCode;
      permanent: boolean;
      error: unknown;
    };

function keyFailure(err: unknown): { code: DueTokenFailureCode; permanent: boolean } {
  if (err instanceof MailboxStoreError && err.code === 'MAILBOX_KEY_GONE') return { code: err.code, permanent: true };
  const damaged = err instanceof SecretError || (err instanceof MailboxStoreError && err.cause instanceof SecretError);
  return damaged
    ? { code: 'MAILBOX_KEY_DAMAGED', permanent: false }
    : { code: 'MAILBOX_KEY_STORE_FAILED', permanent: false };
}

/** A row of DUE_TOKENS_FROM as a token with its link and PIN opened (the data key wiped after use), or why not. */
export async function openDueToken(keys: MailboxKeyStore, row: DueTokenRow): Promise<OpenedDueToken> {
  const token = toToken(row);
  let dataKey: Buffer;
  try {
    dataKey = await openMailboxKey(keys, { id: row.mailbox_id, dataKeySealed: row.data_key_sealed });
  } catch (error) {
    return { ok: false, token, address: row.address, ...keyFailure(error), error };
  }
  try {
    const secrets = openTokenSecrets(dataKey, row.mailbox_id, row.id, row.secrets_sealed);
    return { ok: true, due: { token, address: row.address, secrets } };
  } catch (error) {
    return { ok: false, token, address: row.address, code: 'MAILBOX_TOKEN_SECRETS_DAMAGED', permanent: true, error };
  } finally {
    dataKey.fill(0);
  }
}

/**
 * Live tokens whose recipient PIN mail is due and not sent, locked for the caller's transaction (other replicas
 * skip them); the caller sends each and marks it with markPinMailSent before committing. Throws when any of them
 * does not open: the sweep uses lockNextDuePinMail, one token per transaction.
 */
export async function lockDuePinMails(
  db: PoolClient,
  keys: MailboxKeyStore,
  now: Date,
  limit: number,
): Promise<DuePinMail[]> {
  const found = await db.query(
    `${DUE_TOKENS_FROM} ${DUE_PIN_MAILS_WHERE}
      order by t.pin_mail_due_at limit $2
        for update of t skip locked`,
    [now, limit],
  );
  return openDueTokens(keys, found.rows);
}

/**
 * The oldest token whose recipient PIN mail is due (not sent, not abandoned), locked for the caller's transaction
 * (other replicas skip it and take the next), opened; undefined when none is due. One token per transaction, so a
 * token that fails holds no other: the caller marks it sent (markPinMailSent), abandons it (abandonTokenMails) or
 * defers it (deferPinMail) before committing.
 */
export async function lockNextDuePinMail(
  db: PoolClient,
  keys: MailboxKeyStore,
  now: Date,
): Promise<OpenedDueToken | undefined> {
  const found = await db.query(
    `${DUE_TOKENS_FROM} ${DUE_PIN_MAILS_WHERE}
      order by t.pin_mail_due_at limit 1
        for update of t skip locked`,
    [now],
  );
  return found.rows[0] ? openDueToken(keys, found.rows[0]) : undefined;
}

/** The PIN mail could not go out for now (broker, blob store): due again at `until`, behind the others. */
export async function deferPinMail(db: Queryable, tokenId: string, until: Date): Promise<void> {
  await db.query('update mailbox_tokens set pin_mail_due_at = $2 where id = $1 and pin_mail_sent_at is null', [
    tokenId,
    until,
  ]);
}

/** The token's mails can never be sent (see TOKEN_MAILS_ABANDONED_EVENT): recorded with why, so no sweep tries again. */
export async function abandonTokenMails(
  db: Queryable,
  failed: { token: Pick<ActivationToken, 'id' | 'mailboxId'>; address: string; code: string },
  mail: 'pin-mail' | 'activation-resent',
  at: Date,
): Promise<void> {
  await recordMailboxAudit(db, {
    mailboxId: failed.token.mailboxId,
    address: failed.address,
    event: TOKEN_MAILS_ABANDONED_EVENT,
    actor: 'mailbox-stage',
    at,
    detail: { tokenId: failed.token.id, mail, code: failed.code },
  });
}

export async function markPinMailSent(db: Queryable, tokenId: string, at: Date): Promise<void> {
  await db.query('update mailbox_tokens set pin_mail_sent_at = $2 where id = $1', [tokenId, at]);
}

/** The tokens a mailbox ever had, newest first (tests; the admin API later). */
export async function listActivationTokens(db: Queryable, mailboxId: string): Promise<ActivationToken[]> {
  const found = await db.query('select * from mailbox_tokens where mailbox_id = $1 order by created_at desc', [
    mailboxId,
  ]);
  return found.rows.map(toToken);
}

/** Tokens deleted per statement. */
const TOKEN_PURGE_BATCH = 500;

/**
 * Deletes activation tokens that stopped working more than `graceMs` before `now`: expired, used or revoked. A live
 * token (unused, unrevoked, not expired) is never touched, however old. Safe from several replicas (skip locked);
 * returns how many were deleted.
 */
export async function purgeDeadActivationTokens(db: Pool, now: Date, graceMs: number): Promise<number> {
  if (!Number.isFinite(graceMs) || graceMs < 0) throw new RangeError(`graceMs must be non-negative, got ${graceMs}`);
  const before = new Date(now.getTime() - graceMs);
  let deleted = 0;
  for (;;) {
    const { rowCount } = await db.query(
      `delete from mailbox_tokens where id in (
         select id from mailbox_tokens
          where expires_at < $1 or used_at < $1 or revoked_at < $1
          limit $2
          for update skip locked)`,
      [before, TOKEN_PURGE_BATCH],
    );
    deleted += rowCount ?? 0;
    if ((rowCount ?? 0) < TOKEN_PURGE_BATCH) return deleted;
  }
}
