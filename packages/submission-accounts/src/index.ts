// Submission accounts: SMTP AUTH PLAIN/LOGIN on the submission listener (only after STARTTLS). Passwords are kept
// as argon2id hashes (node:crypto, Node 24.7+) in PHC string form with a random salt, and compared in constant
// time. Exported for the admin service, which creates the accounts.
//
// An account may send as the addresses it owns (senderAddresses) and, only when granted explicitly, as every address
// of some domains (senderDomains): ingest checks the envelope sender and every From/Sender address against them.
//
// An open SMTP session does not keep what it saw at AUTH: ingest reads the account again at every MAIL FROM
// (currentSubmissionAccount), so disabling it, changing its password or its addresses reaches sessions already open.
import { argon2, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { domainList, domainOrAddressList, inAddressesOrDomains, inDomains } from '@smgw/config';
import type { Pool, PoolClient } from '@smgw/db';

type Queryable = Pool | PoolClient;

const argon2Async = promisify(argon2);

/** OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane): about 25 ms per login on a current core. */
export const ARGON2_PARAMETERS = { memory: 19_456, passes: 2, parallelism: 1, tagLength: 32, saltLength: 16 };

// Upper bounds when reading a stored hash, so a tampered row cannot make one login eat a gigabyte.
const MAX_MEMORY_KIB = 1_048_576;
const MAX_PASSES = 10;
const MAX_PARALLELISM = 16;

export const MIN_PASSWORD_LENGTH = 12;

export class SubmissionAccountError extends Error {
  readonly code: 'SUBMISSION_ACCOUNT_INVALID' | 'SUBMISSION_ACCOUNT_EXISTS';
  constructor(code: SubmissionAccountError['code'], message: string) {
    super(message);
    this.name = 'SubmissionAccountError';
    this.code = code;
  }
}

const b64 = (buf: Buffer) => buf.toString('base64').replace(/=+$/, '');

/** An argon2id PHC string: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash> (base64 without padding). */
export async function hashPassword(password: string): Promise<string> {
  const p = ARGON2_PARAMETERS;
  const salt = randomBytes(p.saltLength);
  const hash = await argon2Async('argon2id', {
    message: Buffer.from(password, 'utf8'),
    nonce: salt,
    memory: p.memory,
    passes: p.passes,
    parallelism: p.parallelism,
    tagLength: p.tagLength,
  });
  return `$argon2id$v=19$m=${p.memory},t=${p.passes},p=${p.parallelism}$${b64(salt)}$${b64(hash)}`;
}

const PHC = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

/** True when `password` matches the PHC string. A malformed or out-of-bounds hash never matches. */
export async function verifyPassword(password: string, phc: string): Promise<boolean> {
  const match = PHC.exec(phc);
  if (!match) return false;
  const [memory, passes, parallelism] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (memory > MAX_MEMORY_KIB || passes > MAX_PASSES || parallelism > MAX_PARALLELISM) return false;
  if (memory < 8 * parallelism || passes < 1 || parallelism < 1) return false;
  const salt = Buffer.from(match[4] as string, 'base64');
  const expected = Buffer.from(match[5] as string, 'base64');
  if (salt.length < 8 || expected.length < 16) return false;
  const actual = await argon2Async('argon2id', {
    message: Buffer.from(password, 'utf8'),
    nonce: salt,
    memory,
    passes,
    parallelism,
    tagLength: expected.length,
  });
  return timingSafeEqual(actual, expected);
}

// Verified against when the user does not exist or is disabled, so the answer takes as long as a real check.
let decoyHash: Promise<string> | undefined;

export interface SubmissionAccount {
  username: string;
  /** The addresses the account owns (normalised: local part lower-cased, domain an A-label). */
  senderAddresses: string[];
  /** The domain grant: every address in these domains (`*.x` wildcards); empty for most accounts. */
  senderDomains: string[];
}

/** An account as a login proved it: its rights and which password was proved. */
export interface AuthenticatedAccount extends SubmissionAccount {
  /**
   * A digest of the stored password hash (never the hash itself): a session compares it at every MAIL FROM with the
   * account's current one, so a new password ends the sessions opened with the old one.
   */
  passwordStamp: string;
}

/** May `account` use `address` as envelope sender or in From/Sender: it owns the address, or has its domain? */
export function accountMayUse(account: SubmissionAccount, address: string): boolean {
  return inAddressesOrDomains(address, account.senderAddresses) || inDomains(address, account.senderDomains);
}

/** Usernames are compared case-insensitively (they are usually addresses): stored lower-case, trimmed. */
export function normalizeUsername(username: string): string {
  return username.trim().toLowerCase();
}

export async function createSubmissionAccount(
  db: Queryable,
  input: { username: string; password: string; senderAddresses?: string[]; senderDomains?: string[] },
): Promise<SubmissionAccount> {
  const username = normalizeUsername(input.username);
  if (!username || username.length > 254 || /[\s\p{Cc}]/u.test(username)) {
    throw new SubmissionAccountError('SUBMISSION_ACCOUNT_INVALID', 'username must be 1–254 visible characters');
  }
  checkPasswordLength(input.password);
  const { senderAddresses, senderDomains } = senderRights(input);
  const passwordHash = await hashPassword(input.password);
  const result = await db.query(
    `insert into submission_accounts (username, password_hash, sender_addresses, sender_domains) values ($1, $2, $3, $4)
     on conflict (username) do nothing`,
    [username, passwordHash, senderAddresses, senderDomains],
  );
  if (result.rowCount === 0) {
    throw new SubmissionAccountError('SUBMISSION_ACCOUNT_EXISTS', `account ${username} exists already`);
  }
  return { username, senderAddresses, senderDomains };
}

/** The sender rights given, normalised; at least one address or domain. */
function senderRights(input: { senderAddresses?: string[]; senderDomains?: string[] }) {
  const senderAddresses = senderAddressList(input.senderAddresses ?? []);
  const senderDomains = senderDomainList(input.senderDomains ?? []);
  if (senderAddresses.length === 0 && senderDomains.length === 0) {
    throw new SubmissionAccountError(
      'SUBMISSION_ACCOUNT_INVALID',
      'an account needs at least one sender address (or a sender domain, granting every address in it)',
    );
  }
  return { senderAddresses, senderDomains };
}

function checkPasswordLength(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new SubmissionAccountError(
      'SUBMISSION_ACCOUNT_INVALID',
      `password must be at least ${MIN_PASSWORD_LENGTH} characters`,
    );
  }
}

/** Each address normalised (domainOrAddressList's rules: no quoting, `%` or `!`), without repeats. */
function senderAddressList(addresses: string[]): string[] {
  const normalised = addresses.map((address) => {
    const normal = normalAddress(address);
    if (!normal) {
      throw new SubmissionAccountError('SUBMISSION_ACCOUNT_INVALID', `senderAddresses: "${address}" is not an address`);
    }
    return normal;
  });
  return [...new Set(normalised)];
}

function normalAddress(address: string): string | undefined {
  if (address.includes(',')) return undefined;
  try {
    const [one, ...more] = domainOrAddressList(address);
    return one?.includes('@') && more.length === 0 ? one : undefined;
  } catch {
    return undefined;
  }
}

function senderDomainList(domains: string[]): string[] {
  if (domains.length === 0) return [];
  try {
    return [...new Set(domainList(domains.join(',')))];
  } catch (err) {
    throw new SubmissionAccountError('SUBMISSION_ACCOUNT_INVALID', `senderDomains: ${(err as Error).message}`);
  }
}

/** An account as the admin API lists it (never its password hash). */
export interface ListedSubmissionAccount extends SubmissionAccount {
  disabled: boolean;
  createdAt: string;
}

const LISTED_COLUMNS = 'username, sender_addresses, sender_domains, disabled, created_at';
type ListedRow = AccountRow & { disabled: boolean; created_at: Date };

function listedOf(row: ListedRow): ListedSubmissionAccount {
  return { ...accountOf(row), disabled: row.disabled, createdAt: row.created_at.toISOString() };
}

/** Every account, by username. */
export async function listSubmissionAccounts(db: Queryable): Promise<ListedSubmissionAccount[]> {
  const { rows } = await db.query<ListedRow>(`select ${LISTED_COLUMNS} from submission_accounts order by username`);
  return rows.map(listedOf);
}

/**
 * Disables or enables an account; the account as listed afterwards, or undefined when there is none. A disabled
 * account cannot AUTH, and its open sessions are refused at their next MAIL FROM (ingest asks
 * currentSubmissionAccount). Enabling it again lets those sessions go on only while the password is the same one
 * they proved: an operator who suspects a stolen password disables the account and sets a new one.
 */
export async function setSubmissionAccountDisabled(
  db: Queryable,
  username: string,
  disabled: boolean,
): Promise<ListedSubmissionAccount | undefined> {
  const { rows } = await db.query<ListedRow>(
    `update submission_accounts set disabled = $2 where username = $1 returning ${LISTED_COLUMNS}`,
    [normalizeUsername(username), disabled],
  );
  return rows[0] ? listedOf(rows[0]) : undefined;
}

/**
 * Gives an account a new password (at least MIN_PASSWORD_LENGTH characters); the account as listed, or undefined
 * when there is none. Sessions that logged in with the old password are refused at their next MAIL FROM.
 */
export async function setSubmissionPassword(
  db: Queryable,
  username: string,
  password: string,
): Promise<ListedSubmissionAccount | undefined> {
  checkPasswordLength(password);
  const passwordHash = await hashPassword(password);
  const { rows } = await db.query<ListedRow>(
    `update submission_accounts set password_hash = $2 where username = $1 returning ${LISTED_COLUMNS}`,
    [normalizeUsername(username), passwordHash],
  );
  return rows[0] ? listedOf(rows[0]) : undefined;
}

/**
 * Replaces the addresses an account may use and its domain grant (at least one of them, validated and normalised as
 * at creation); the account as listed afterwards, or undefined when there is none. Open sessions of the account send
 * by the new rights from their next MAIL FROM on (ingest asks currentSubmissionAccount).
 */
export async function setSubmissionSenderRights(
  db: Queryable,
  username: string,
  rights: { senderAddresses: string[]; senderDomains: string[] },
): Promise<ListedSubmissionAccount | undefined> {
  const { senderAddresses, senderDomains } = senderRights(rights);
  const { rows } = await db.query<ListedRow>(
    `update submission_accounts set sender_addresses = $2, sender_domains = $3 where username = $1
     returning ${LISTED_COLUMNS}`,
    [normalizeUsername(username), senderAddresses, senderDomains],
  );
  return rows[0] ? listedOf(rows[0]) : undefined;
}

/**
 * Deletes an account; the account as it was listed, or undefined when there was none. It cannot AUTH any more, and
 * its open sessions are refused at their next MAIL FROM, as for a disabled one. A new account of the same name does
 * not bring them back: its password hash (a new salt) is another.
 */
export async function deleteSubmissionAccount(
  db: Queryable,
  username: string,
): Promise<ListedSubmissionAccount | undefined> {
  const { rows } = await db.query<ListedRow>(
    `delete from submission_accounts where username = $1 returning ${LISTED_COLUMNS}`,
    [normalizeUsername(username)],
  );
  return rows[0] ? listedOf(rows[0]) : undefined;
}

/**
 * The account's rights now, when it exists and is enabled; undefined otherwise. One primary-key lookup, asked by
 * ingest at every MAIL FROM of an authenticated session. Database errors are thrown.
 */
export async function currentSubmissionAccount(
  db: Queryable,
  username: string,
): Promise<AuthenticatedAccount | undefined> {
  const { rows } = await db.query<AccountRow & { password_hash: string }>(
    `select username, password_hash, sender_addresses, sender_domains from submission_accounts
     where username = $1 and not disabled`,
    [normalizeUsername(username)],
  );
  return rows[0] ? authenticatedOf(rows[0]) : undefined;
}

/**
 * The account when `username` exists, is enabled and `password` is right; undefined otherwise (which of these
 * failed is not told, not even by timing). Database errors are thrown: they are not a wrong password.
 */
export async function verifySubmissionLogin(
  db: Queryable,
  credentials: { username: string; password: string },
): Promise<AuthenticatedAccount | undefined> {
  const username = normalizeUsername(credentials.username);
  const result = await db.query<AccountRow & { password_hash: string }>(
    `select username, password_hash, sender_addresses, sender_domains from submission_accounts
     where username = $1 and not disabled`,
    [username],
  );
  const row = result.rows[0];
  if (!row) {
    decoyHash ??= hashPassword(randomBytes(16).toString('hex'));
    await verifyPassword(credentials.password, await decoyHash);
    return undefined;
  }
  if (!(await verifyPassword(credentials.password, row.password_hash))) return undefined;
  return authenticatedOf(row);
}

interface AccountRow {
  username: string;
  sender_addresses: string[];
  sender_domains: string[];
}

function accountOf(row: AccountRow): SubmissionAccount {
  return { username: row.username, senderAddresses: row.sender_addresses, senderDomains: row.sender_domains };
}

function authenticatedOf(row: AccountRow & { password_hash: string }): AuthenticatedAccount {
  const passwordStamp = createHash('sha256').update(row.password_hash).digest('base64url').slice(0, 22);
  return { ...accountOf(row), passwordStamp };
}
