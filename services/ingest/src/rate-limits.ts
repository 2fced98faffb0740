// Abuse limits shared by every ingest replica, kept in Redis under SMGW_REDIS_PREFIX:
// - concurrent connections per client address and per network (IPv4 /24, IPv6 /48: see networkKey; INCR/DECR
//   counters, both in one script; a safety TTL clears what a crashed replica left behind),
// - SMTP commands per client address per minute (fixed one-minute windows; each replica takes numbers from the
//   window's counter a few at a time, see CommandLeases),
// - AUTH attempts per client address and per account (counters that expire AUTH_FAILURE_WINDOW_SECONDS after their
//   first attempt): an attempt takes its numbers before the password is checked and gives them back only when the
//   login succeeds (or our side failed), so parallel guesses count as they are made, not after their (slow) argon2
//   checks, and a success does not erase them. A client that logged in to an account before is not held by the
//   account's limit (see takeAuthAttempt: a stranger must not lock an agency out),
// - messages and recipients per clock hour of a submission sender (countSubmission): an account under its name, a
//   client of SMGW_SUBMISSION_NETWORKS without AUTH under its address; counted in leases as commands are,
// - message bytes per clock hour of the same senders (countSubmissionBytes): the real size, at the end of DATA, one
//   script call per message that counts it only when it fits,
// - new TLS sessions (STARTTLS accepted) per client address and per network per minute, each listener apart
//   (takeTlsSession): each handshake costs a signature of the server key (about 2.25 ms of CPU with RSA-3072), and
//   one client at 10 connections drove 52 a second. One round trip per STARTTLS, before the handshake.
// Clients and accounts are named in Redis by HMACs under a key derived from SMGW_MASTER_KEY (clientName, accountKey):
// Redis holds neither addresses nor usernames. Redis errors are thrown as RedisUnavailableError: the caller answers
// with a temporary refusal, never lets the client through unchecked.

import { createHmac } from 'node:crypto';
import { keyFromMasterKey } from '@smgw/secrets';
import { normalizeUsername } from '@smgw/submission-accounts';
import type { Redis } from 'ioredis';
import ipaddr from 'ipaddr.js';
import type { Listener } from './recipient-policy.ts';

export class RedisUnavailableError extends Error {
  readonly code = 'REDIS_UNAVAILABLE';
  constructor(cause: unknown) {
    super(`Redis unavailable: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'RedisUnavailableError';
  }
}

export interface RateLimitOptions {
  /** SMGW_REDIS_PREFIX */
  prefix: string;
  /** Keys the names accounts are counted under (redisNameSecretFrom(SMGW_MASTER_KEY)). */
  redisNameSecret: Buffer;
  maxConnectionsPerClient: number;
  /** Concurrent connections per network (networkKey; default NETWORK_CONNECTION_LIMIT). */
  maxConnectionsPerNetwork?: number;
  commandsPerMinute: number;
  /** Failed (or running) logins per client address before AUTH is refused for the rest of the window. */
  maxAuthFailures?: number;
  /** Failed (or running) logins per account, from clients it does not know, before those are refused. */
  maxAuthFailuresPerAccount?: number;
  authFailureWindowSeconds?: number;
  /** How long a client that logged in to an account stays known to it (from its last login). */
  authKnownClientSeconds?: number;
  /** IPv6 clients are counted per network of this prefix length (default 64). */
  ipv6ClientPrefix?: number;
  /** How long a connection counter outlives its last change (connections are much shorter than this). */
  connectionCounterTtlSeconds?: number;
  /** Per clock hour (SMGW_SUBMISSION_*_PER_HOUR); countSubmission needs them. */
  submission?: SubmissionLimits;
  /** New TLS sessions per minute of each listener (takeTlsSession); a listener not named here has none. */
  tlsSessionsPerMinute?: Partial<Record<Listener, TlsSessionLimits>>;
}

/**
 * New TLS sessions (STARTTLS accepted) per clock minute on one listener, per client (SMGW_SMTP_TLS_SESSIONS_PER_MINUTE,
 * SMGW_SUBMISSION_TLS_SESSIONS_PER_MINUTE) and per network (…_PER_NETWORK, see networkKey); 0: no limit, as Postfix's
 * smtpd_client_new_tls_session_rate_limit.
 */
export interface TlsSessionLimits {
  client: number;
  network: number;
}

/** What takeTlsSession says: taken (the handshake may start), or which limit refused it and that limit. */
export type TlsSessionGrant = { allowed: true } | { allowed: false; limit: 'client' | 'network'; max: number };

export interface SubmissionLimits {
  /** Per account (SMGW_SUBMISSION_MESSAGES_PER_HOUR, _RECIPIENTS_PER_HOUR, _BYTES_PER_HOUR). */
  account: { messages: number; recipients: number; bytes: number };
  /** Per client address of SMGW_SUBMISSION_NETWORKS without AUTH (SMGW_SUBMISSION_NETWORK_*_PER_HOUR). */
  network: { messages: number; recipients: number; bytes: number };
}

/** What countSubmission counts: a message at MAIL FROM, a recipient at RCPT. */
export type SubmissionCount = 'messages' | 'recipients';

/** Who is counted: the authenticated account, else the client address (a trusted network's client). */
export type SubmissionSender = { account: string } | { ip: string };

const HOUR_MS = 3_600_000;

const hmac = (secret: Buffer, text: string) => createHmac('sha256', secret).update(text, 'utf8').digest('hex');

export const AUTH_FAILURE_LIMIT = 5;
/**
 * Higher than the client limit: it is there against guessers spread over many addresses, not against one client, and
 * the higher it is the more addresses a stranger needs to hold an account's new clients off (four at 5 per client).
 */
export const AUTH_ACCOUNT_FAILURE_LIMIT = 20;
export const AUTH_FAILURE_WINDOW_SECONDS = 900;
export const AUTH_KNOWN_CLIENT_SECONDS = 30 * 24 * 3600;
export const CONNECTION_COUNTER_TTL_SECONDS = 3600;
/** SMGW_SMTP_MAX_CONNECTIONS_PER_NETWORK's default. */
export const NETWORK_CONNECTION_LIMIT = 100;

// One round trip each, the client's (KEYS[1]) and its network's (KEYS[2]) counts together; they are only kept when
// the connection is allowed by both.
const OPEN_CONNECTION = `
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local m = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
if n > tonumber(ARGV[1]) or m > tonumber(ARGV[2]) then
  redis.call('DECR', KEYS[1])
  redis.call('DECR', KEYS[2])
  return 0
end
return 1`;

const CLOSE_CONNECTION = `
for _, key in ipairs(KEYS) do
  if redis.call('DECR', key) <= 0 then redis.call('DEL', key) end
end
return 1`;

// An AUTH attempt: counted for the client (KEYS[1]) and, unless the client is known to the account (KEYS[3] exists),
// for the account (KEYS[2]); or nothing counted when either is used up, the client's limit asked first (a client over
// its own limit adds nothing to the account's count). Returns 1 (both counted), 2 (client only: a known client),
// 0 (refused: client limit) or -1 (refused: account limit).
const TAKE_AUTH_ATTEMPT = `
local function full(key, max)
  return tonumber(redis.call('GET', key) or '0') >= tonumber(max)
end
local function count(key)
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[3]) end
end
if full(KEYS[1], ARGV[1]) then return 0 end
local known = redis.call('EXISTS', KEYS[3]) == 1
if not known and full(KEYS[2], ARGV[2]) then return -1 end
count(KEYS[1])
if known then return 2 end
count(KEYS[2])
return 1`;

// An attempt's numbers back (KEYS[2] only when ARGV[1] is 1: it took one there), unless a window ended meanwhile
// (never below 0, never a key without TTL); after a login that succeeded (ARGV[2] is a TTL, not 0) the client is
// known to the account (KEYS[3]) from now on.
const RETURN_AUTH_ATTEMPT = `
local function giveBack(key)
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
giveBack(KEYS[1])
if ARGV[1] == '1' then giveBack(KEYS[2]) end
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[3], '1', 'EX', ARGV[2]) end
return 1`;

// Takes ARGV[1] numbers of the window's counter at once; returns the counter after them.
const LEASE_IN_WINDOW = `
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return n`;

// A new TLS session in the minute's windows of the client (KEYS[1]) and of its network (KEYS[2]), each with its limit
// (ARGV[1], ARGV[2]; 0: none); counted in both only when both allow it, the client's limit asked first (a client over
// its own limit takes nothing of its network's). Returns 1 (counted), 0 (refused: client), -1 (refused: network).
const TAKE_TLS_SESSION = `
local function full(key, max)
  return tonumber(max) > 0 and tonumber(redis.call('GET', key) or '0') >= tonumber(max)
end
if full(KEYS[1], ARGV[1]) then return 0 end
if full(KEYS[2], ARGV[2]) then return -1 end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[3]) end
end
return 1`;

/** The most command numbers a replica takes from Redis at once (fewer for small limits: see leaseSize). */
export const MAX_COMMAND_LEASE = 16;

interface LeasedWindow {
  unused: number;
  exhausted: boolean;
  /** The limit the window's numbers are judged by. */
  limit: number;
  asking?: Promise<void>;
}

// A message's bytes (ARGV[1]) added to the window's counter (KEYS[1]) only when the total stays within ARGV[2]: a
// message refused for its size was not kept, so it uses nothing of the hour (the client sends it again later, and
// a smaller one may still fit now). Returns the counter after it, or -1 (refused, nothing counted).
const COUNT_BYTES_IN_WINDOW = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return -1 end
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return n`;

/** Client addresses a replica keeps leases for in one window. */
const MAX_LEASED_WINDOWS = 100_000;

/**
 * How many numbers of a client's window counter one replica takes at a time: about 1 % of the limit, at most
 * MAX_COMMAND_LEASE, and 1 (every command asks Redis) for limits under 200.
 */
export function leaseSize(commandsPerMinute: number): number {
  return Math.max(1, Math.min(MAX_COMMAND_LEASE, Math.floor(commandsPerMinute / 100)));
}

export interface RateLimits {
  /** Counts a new connection; false (and not counted) when the client already has the maximum open. */
  openConnection(ip: string): Promise<boolean>;
  /** Uncounts a connection that openConnection counted. */
  closeConnection(ip: string): Promise<void>;
  /** Counts one command; false when the client went over its commands per minute. */
  countCommand(ip: string, now?: number): Promise<boolean>;
  /**
   * Counts an AUTH attempt for `username` from `ip` before its password is checked. Refused (nothing counted) when the
   * client, or the account for a client it does not know, has failed or is trying too often in the window: refuse
   * without checking the password. Unknown usernames are counted as known ones are (the caller cannot tell them apart
   * before the check, and a guesser must not either).
   *
   * The account's limit bounds a guesser spread over many addresses (a botnet, many /64s) to
   * AUTH_ACCOUNT_FAILURE_LIMIT guesses per window, but anyone holding four addresses can use it up and keep it used
   * up. So it holds only clients the account does not know: a client (address, or IPv6 /64) that logged in to the
   * account within AUTH_KNOWN_CLIENT_SECONDS is held by its own client limit alone, and the agency's usual servers and
   * clients keep working while a stranger fills the account's count. A new client of the account (a laptop on the
   * road) is refused while that lasts, with a temporary 454 (its client tries again later), never a permanent one.
   * Clients inside SMGW_SUBMISSION_NETWORKS do not AUTH at all.
   */
  takeAuthAttempt(ip: string, username: string): Promise<AuthAttempt>;
  /**
   * Gives back what a taken attempt counted: after a login that succeeded (`succeeded`: the client is known to the
   * account from now on), or one we could not check (database down). Failures, also those made in parallel, stay
   * counted.
   */
  returnAuthAttempt(attempt: TakenAuthAttempt, outcome: { succeeded: boolean }): Promise<void>;
  /**
   * Counts one message (at MAIL FROM) or one recipient (at RCPT) of a submission sender in the current clock hour;
   * `allowed` is false (nothing sent) once that passes `max`, the sender's limit. An account is counted under its
   * name whatever address or replica it comes from; a trusted client without AUTH under its address. A transaction
   * the client abandons after MAIL FROM or RCPT still counts: the numbers are taken before the message exists, so
   * parallel sessions cannot pass the limit together. Redis errors: RedisUnavailableError.
   */
  countSubmission(
    kind: SubmissionCount,
    sender: SubmissionSender,
    now?: number,
  ): Promise<{ allowed: boolean; max: number }>;
  /**
   * Counts a message's `bytes` (its real size, known at the end of DATA) for a submission sender in the current
   * clock hour, in one round trip; `allowed` is false and nothing is counted when they do not fit in what is left of
   * `max`, the sender's byte limit. Bytes are not leased as messages are: one message can be most of a budget, so
   * only the counter in Redis can tell whether it fits, and parallel messages of one sender are judged one after the
   * other there. Redis errors: RedisUnavailableError.
   */
  countSubmissionBytes(
    sender: SubmissionSender,
    bytes: number,
    now?: number,
  ): Promise<{ allowed: boolean; max: number }>;
  /**
   * Whether a message of `bytes` (a client's SIZE=, a claim) still fits in the sender's hour, counting nothing: lets
   * MAIL FROM refuse a message that cannot pass before it is sent; countSubmissionBytes decides at its end. Redis
   * errors: RedisUnavailableError.
   */
  submissionBytesFit(sender: SubmissionSender, bytes: number, now?: number): Promise<{ allowed: boolean; max: number }>;
  /**
   * Counts a new TLS session of a client on `listener` in the current clock minute, before its handshake: refused
   * (nothing counted) when the client, or its network, has had its limit of them in this minute on that listener, on
   * all replicas together. Every STARTTLS that is to be answered 220 counts, whether the handshake then succeeds or
   * not (the server key signs early in it). Without limits for the listener: allowed without asking Redis. Redis
   * errors: RedisUnavailableError.
   */
  takeTlsSession(ip: string, listener: Listener, now?: number): Promise<TlsSessionGrant>;
}

/** Which limit refused an AUTH attempt (logged with AUTH_RATE_LIMITED). */
export type AuthLimit = 'client' | 'account';

/** What takeAuthAttempt counted, so that exactly that is given back. */
export interface TakenAuthAttempt {
  taken: true;
  ip: string;
  username: string;
  /** False for a client known to the account: only the client's count was taken. */
  accountCounted: boolean;
}

export type AuthAttempt = TakenAuthAttempt | { taken: false; limit: AuthLimit };

/**
 * The name an account is counted under: its username as verifySubmissionLogin looks it up (so its spellings share
 * one count), as an HMAC under `secret`. Redis holds no usernames, and none can be tested against it without the
 * secret: a plain hash of an address-like username was as good as the name to anyone reading Redis (guess, hash,
 * compare). A new SMGW_MASTER_KEY starts the counts and the clients known to an account afresh.
 */
export function accountKey(username: string, secret: Buffer): string {
  return hmac(secret, normalizeUsername(username));
}

/**
 * The key of the names ingest gives Redis for what a reader must not be able to test guesses against (accounts,
 * recipient addresses: accountKey, the recipient cache), derived from SMGW_MASTER_KEY for this use alone.
 */
export function redisNameSecretFrom(masterKey: Buffer): Buffer {
  // The purpose's words predate client addresses and recipients; changing them would forget every known client.
  return keyFromMasterKey(masterKey, 'smgw ingest: account keys in redis');
}

/**
 * The name a client is counted under in Redis: its clientKey as an HMAC under `secret` (redisNameSecretFrom). Client
 * addresses are personal data, and the IPv4 space is small enough to hash whole, so neither the address nor a plain
 * hash of it is kept.
 */
export function clientName(ip: string, secret: Buffer, ipv6Prefix = 64): string {
  return hmac(secret, clientKey(ip, ipv6Prefix));
}

/**
 * The key a client is counted under: an IPv4 address as it is, an IPv6 address as its network of `ipv6Prefix`
 * bits (a client holds a whole /64 and can take a new address per connection). IPv4-mapped IPv6 counts as IPv4.
 */
export function clientKey(ip: string, ipv6Prefix = 64, ipv4Prefix = 32): string {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.process(ip);
  } catch {
    return ip;
  }
  const ipv4 = parsed.kind() === 'ipv4';
  const prefix = ipv4 ? ipv4Prefix : ipv6Prefix;
  if (ipv4 && prefix >= 32) return parsed.toString();
  const bytes = parsed.toByteArray();
  for (let bit = prefix; bit < bytes.length * 8; bit++) {
    const index = bit >> 3;
    bytes[index] = (bytes[index] as number) & ~(0x80 >> (bit & 7));
  }
  return `${ipaddr.fromByteArray(bytes).toString()}/${prefix}`;
}

/** The networks counted beside each client: what one holder gets cheaply (an IPv4 /24, an IPv6 /48). */
export const NETWORK_IPV4_PREFIX = 24;
export const NETWORK_IPV6_PREFIX = 48;

/**
 * The key a client's network is counted under (an IPv4 /24, an IPv6 /48, or the client's own IPv6 network when
 * SMGW_SMTP_IPV6_CLIENT_PREFIX is shorter). Distinct from every clientKey: it always carries its prefix.
 */
export function networkKey(ip: string, ipv6ClientPrefix = 64): string {
  return clientKey(ip, Math.min(NETWORK_IPV6_PREFIX, ipv6ClientPrefix), NETWORK_IPV4_PREFIX);
}

/** networkKey as an HMAC under `secret`, as clientName names a client. */
export function networkName(ip: string, secret: Buffer, ipv6ClientPrefix = 64): string {
  return hmac(secret, `network ${networkKey(ip, ipv6ClientPrefix)}`);
}

/**
 * A Lua script as a function of its key (or its `numberOfKeys` keys) and its arguments. ioredis's defineCommand sends
 * EVALSHA (and the script only when Redis does not know it yet): EVAL sent the whole script with every SMTP command.
 */
export function redisScript(
  redis: Redis,
  name: string,
  lua: string,
  numberOfKeys = 1,
): (keys: string | readonly string[], ...args: (string | number)[]) => Promise<unknown> {
  redis.defineCommand(name, { numberOfKeys, lua });
  const command = (redis as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>)[name];
  if (!command) throw new Error(`ioredis did not define ${name}`);
  return (keys, ...args) => command.call(redis, ...(typeof keys === 'string' ? [keys] : keys), ...args);
}

/** Runs Redis calls; any error comes out as RedisUnavailableError. */
export async function askRedis<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw new RedisUnavailableError(err);
  }
}

export function createRateLimits(redis: Redis, options: RateLimitOptions): RateLimits {
  const maxAuthFailures = options.maxAuthFailures ?? AUTH_FAILURE_LIMIT;
  const maxAccountFailures = options.maxAuthFailuresPerAccount ?? AUTH_ACCOUNT_FAILURE_LIMIT;
  const authWindow = options.authFailureWindowSeconds ?? AUTH_FAILURE_WINDOW_SECONDS;
  const knownClientTtl = options.authKnownClientSeconds ?? AUTH_KNOWN_CLIENT_SECONDS;
  const counterTtl = options.connectionCounterTtlSeconds ?? CONNECTION_COUNTER_TTL_SECONDS;
  const ipv6Prefix = options.ipv6ClientPrefix ?? 64;
  // Every SMTP command is counted under its client's name: the name (an address parse and an HMAC) is kept per
  // address rather than made again for each command.
  const names = new Map<string, string>();
  const nameOf = (ip: string) => {
    let name = names.get(ip);
    if (name === undefined) {
      if (names.size >= MAX_LEASED_WINDOWS) names.clear();
      name = clientName(ip, options.redisNameSecret, ipv6Prefix);
      names.set(ip, name);
    }
    return name;
  };
  const key = (kind: string, ip: string, ...more: string[]) =>
    `${options.prefix}ingest:${[kind, nameOf(ip), ...more].join(':')}`;
  // A connection is counted for its client and for its network.
  const maxPerNetwork = options.maxConnectionsPerNetwork ?? NETWORK_CONNECTION_LIMIT;
  const connectionKeys = (ip: string) => [
    key('conn', ip),
    `${options.prefix}ingest:conn-net:${networkName(ip, options.redisNameSecret, ipv6Prefix)}`,
  ];
  const openConnection = redisScript(redis, 'smgwIngestOpenConnection2', OPEN_CONNECTION, 2);
  const closeConnection = redisScript(redis, 'smgwIngestCloseConnection2', CLOSE_CONNECTION, 2);
  // The client's count, the account's count, and whether the client is known to the account (client and account
  // named together: neither in clear).
  const authKeys = (ip: string, username: string) => {
    const account = accountKey(username, options.redisNameSecret);
    return [
      key('authfail', ip),
      `${options.prefix}ingest:authfail-account:${account}`,
      `${options.prefix}ingest:auth-known:${hmac(options.redisNameSecret, `${account}\n${clientKey(ip, ipv6Prefix)}`)}`,
    ] as const;
  };
  const takeAuthAttempt = redisScript(redis, 'smgwIngestTakeAuthAttempt', TAKE_AUTH_ATTEMPT, 3);
  const returnAuthAttempt = redisScript(redis, 'smgwIngestReturnAuthAttempt', RETURN_AUTH_ATTEMPT, 3);
  const leaseInWindow = redisScript(redis, 'smgwIngestLeaseInWindow', LEASE_IN_WINDOW);
  const commands = new CommandLeases(options.commandsPerMinute, (windowKey, size) =>
    leaseInWindow(windowKey, size, 120).then(Number),
  );
  // One lease keeper per kind: each keeps the windows of one hour. A window's key lives two hours (the hour it counts
  // and a replica's clock a little behind).
  const submissionLeases = (limit: number) =>
    new CommandLeases(limit, (windowKey, size) => leaseInWindow(windowKey, size, 7200).then(Number));
  const submissionCounts = options.submission && {
    messages: submissionLeases(options.submission.account.messages),
    recipients: submissionLeases(options.submission.account.recipients),
  };
  const countBytesInWindow = redisScript(redis, 'smgwIngestCountBytesInWindow', COUNT_BYTES_IN_WINDOW);
  const takeTlsSession = redisScript(redis, 'smgwIngestTakeTlsSession', TAKE_TLS_SESSION, 2);
  /** A sender's counter of `kind` in the clock hour of `now`, and the sender's limit of that kind. */
  const submissionWindow = (kind: SubmissionCount | 'bytes', sender: SubmissionSender, now: number) => {
    if (!options.submission) throw new Error('createRateLimits: no submission limits given');
    const hour = Math.floor(now / HOUR_MS);
    const byAccount = 'account' in sender;
    const max = options.submission[byAccount ? 'account' : 'network'][kind];
    // Accounts and clients apart (`a`, `c`): neither name can be mistaken for the other.
    const name = byAccount ? `a-${accountKey(sender.account, options.redisNameSecret)}` : `c-${nameOf(sender.ip)}`;
    return { key: `${options.prefix}ingest:sub-${kind}:${name}:${hour}`, hour, max };
  };

  return {
    openConnection: (ip) =>
      askRedis(async () => {
        const allowed = await openConnection(
          connectionKeys(ip),
          options.maxConnectionsPerClient,
          maxPerNetwork,
          counterTtl,
        );
        return allowed === 1;
      }),
    closeConnection: (ip) =>
      askRedis(async () => {
        await closeConnection(connectionKeys(ip));
      }),
    countCommand: (ip, now = Date.now()) => {
      const minute = Math.floor(now / 60_000);
      return commands.take(key('cmd', ip, String(minute)), minute);
    },
    takeAuthAttempt: (ip, username) =>
      askRedis(async (): Promise<AuthAttempt> => {
        const keys = authKeys(ip, username);
        const taken = Number(await takeAuthAttempt(keys, maxAuthFailures, maxAccountFailures, authWindow));
        if (taken === 0) return { taken: false, limit: 'client' };
        if (taken < 0) return { taken: false, limit: 'account' };
        return { taken: true, ip, username, accountCounted: taken === 1 };
      }),
    returnAuthAttempt: (attempt, outcome) =>
      askRedis(async () => {
        const keys = authKeys(attempt.ip, attempt.username);
        await returnAuthAttempt(keys, attempt.accountCounted ? 1 : 0, outcome.succeeded ? knownClientTtl : 0);
      }),
    countSubmission: async (kind, sender, now = Date.now()) => {
      const { key: windowKey, hour, max } = submissionWindow(kind, sender, now);
      if (!submissionCounts) throw new Error('createRateLimits: no submission limits given');
      return { allowed: await submissionCounts[kind].take(windowKey, hour, max), max };
    },
    countSubmissionBytes: (sender, bytes, now = Date.now()) => {
      const { key: windowKey, max } = submissionWindow('bytes', sender, now);
      // The key lives two hours, as the message counts' do.
      return askRedis(async () => ({
        allowed: Number(await countBytesInWindow(windowKey, bytes, max, 7200)) >= 0,
        max,
      }));
    },
    submissionBytesFit: (sender, bytes, now = Date.now()) => {
      const { key: windowKey, max } = submissionWindow('bytes', sender, now);
      return askRedis(async () => ({ allowed: Number((await redis.get(windowKey)) ?? 0) + bytes <= max, max }));
    },
    takeTlsSession: async (ip, listener, now = Date.now()) => {
      const limits = options.tlsSessionsPerMinute?.[listener];
      if (!limits || (limits.client <= 0 && limits.network <= 0)) return { allowed: true };
      const minute = String(Math.floor(now / 60_000));
      // Each listener apart: the ports have limits of their own. A window's keys live two minutes (the minute they
      // count and a replica's clock a little behind).
      const keys = [
        key('tls', ip, listener, minute),
        `${options.prefix}ingest:tls-net:${networkName(ip, options.redisNameSecret, ipv6Prefix)}:${listener}:${minute}`,
      ];
      const taken = Number(await askRedis(() => takeTlsSession(keys, limits.client, limits.network, 120)));
      if (taken === 1) return { allowed: true };
      return taken === 0
        ? { allowed: false, limit: 'client', max: limits.client }
        : { allowed: false, limit: 'network', max: limits.network };
    },
  };
}

/**
 * Command counting without a Redis round trip per command. The window's counter in Redis numbers every command of a
 * client address across all replicas; a replica takes a lease of several numbers at once (INCRBY) and hands them out
 * locally. A command is allowed when its number is within the limit, so all replicas together never allow more than
 * the limit; numbers one replica leased and did not use are lost to the others, so a client may be refused up to
 * (replicas - 1) × (lease - 1) commands early. Leases of earlier windows are dropped when the window turns.
 */
export class CommandLeases {
  readonly #limit: number;
  readonly #size: number;
  readonly #lease: (windowKey: string, size: number) => Promise<number>;
  /** Per window key: numbers leased and not handed out yet, the lease being asked for, whether the limit is reached. */
  readonly #windows = new Map<string, LeasedWindow>();
  #minute = Number.NaN;

  constructor(limit: number, lease: (windowKey: string, size: number) => Promise<number>) {
    this.#limit = limit;
    this.#size = leaseSize(limit);
    this.#lease = lease;
  }

  /**
   * Counts one command in `minute`'s window (any number naming the window: submission counts use the hour); false
   * when it is over `limit` (the constructor's, unless a caller's senders have limits of their own). Redis errors:
   * RedisUnavailableError.
   */
  async take(windowKey: string, minute: number, limit = this.#limit): Promise<boolean> {
    // A new window, or more client addresses in this one than we keep leases for: start again (unused numbers are
    // lost, which can only refuse early, never allow more).
    if (minute !== this.#minute || this.#windows.size >= MAX_LEASED_WINDOWS) {
      this.#windows.clear();
      this.#minute = minute;
    }
    let window = this.#windows.get(windowKey);
    if (!window) {
      window = { unused: 0, exhausted: false, limit };
      this.#windows.set(windowKey, window);
    } else if (window.limit !== limit) {
      // The limit changed within the window: Redis's counter says what the new one still allows.
      window.limit = limit;
      window.exhausted = false;
    }
    // One lease at a time per window: commands that arrive meanwhile wait for it and share it.
    for (;;) {
      if (window.unused > 0) {
        window.unused -= 1;
        return true;
      }
      if (window.exhausted) return false;
      window.asking ??= this.#renew(windowKey, window);
      await window.asking;
    }
  }

  async #renew(windowKey: string, window: LeasedWindow): Promise<void> {
    const limit = window.limit;
    const size = limit === this.#limit ? this.#size : leaseSize(limit);
    try {
      const after = await askRedis(() => this.#lease(windowKey, size));
      // Numbers after - size + 1 … after are ours; those up to the limit may be used.
      const usable = Math.max(0, Math.min(size, limit - (after - size)));
      window.unused += usable;
      if (usable < size) window.exhausted = true;
    } finally {
      window.asking = undefined;
    }
  }
}
