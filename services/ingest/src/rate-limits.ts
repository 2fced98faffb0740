// Abuse limits shared by every ingest replica, kept in Redis under SMGW_REDIS_PREFIX:
// - concurrent connections per client address (an INCR/DECR counter; a safety TTL clears what a crashed replica
//   left behind),
// - SMTP commands per client address per minute (fixed one-minute windows; each replica takes numbers from the
//   window's counter a few at a time, see CommandLeases),
// - AUTH attempts per client address (a counter that expires AUTH_FAILURE_WINDOW_SECONDS after the first): an attempt
//   takes its number before the password is checked and gives it back only when the login succeeds, so parallel
//   guesses count as they are made, not after their (slow) argon2 checks, and a success does not erase them.
// Redis errors are thrown as RedisUnavailableError: the caller answers with a temporary refusal, never lets the
// client through unchecked.

import type { Redis } from 'ioredis';
import ipaddr from 'ipaddr.js';

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
  maxConnectionsPerClient: number;
  commandsPerMinute: number;
  /** Failed (or running) logins per client address before AUTH is refused for the rest of the window. */
  maxAuthFailures?: number;
  authFailureWindowSeconds?: number;
  /** IPv6 clients are counted per network of this prefix length (default 64). */
  ipv6ClientPrefix?: number;
  /** How long a connection counter outlives its last change (connections are much shorter than this). */
  connectionCounterTtlSeconds?: number;
}

export const AUTH_FAILURE_LIMIT = 5;
export const AUTH_FAILURE_WINDOW_SECONDS = 900;
export const CONNECTION_COUNTER_TTL_SECONDS = 3600;

// One round trip each; the counter is only kept when the connection is allowed.
const OPEN_CONNECTION = `
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if n > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return 0
end
return 1`;

const CLOSE_CONNECTION = `
local n = redis.call('DECR', KEYS[1])
if n <= 0 then redis.call('DEL', KEYS[1]) end
return n`;

// An AUTH attempt's number in the window, or 0 (and nothing counted) when the window's numbers are used up.
const TAKE_AUTH_ATTEMPT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return 0
end
return n`;

// A successful login's number back, unless its window has ended meanwhile (never below 0, never a key without TTL).
const RETURN_AUTH_ATTEMPT = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return n`;

// Takes ARGV[1] numbers of the window's counter at once; returns the counter after them.
const LEASE_IN_WINDOW = `
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return n`;

/** The most command numbers a replica takes from Redis at once (fewer for small limits: see leaseSize). */
export const MAX_COMMAND_LEASE = 16;

interface LeasedWindow {
  unused: number;
  exhausted: boolean;
  asking?: Promise<void>;
}

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
   * Counts an AUTH attempt before its password is checked; false (nothing counted) when the client has failed or is
   * trying too often in the window: refuse without checking the password.
   */
  takeAuthAttempt(ip: string): Promise<boolean>;
  /** Gives back the attempt of a login that succeeded: failures, also those made in parallel, stay counted. */
  returnAuthAttempt(ip: string): Promise<void>;
}

/**
 * The key a client is counted under: an IPv4 address as it is, an IPv6 address as its network of `ipv6Prefix`
 * bits (a client holds a whole /64 and can take a new address per connection). IPv4-mapped IPv6 counts as IPv4.
 */
export function clientKey(ip: string, ipv6Prefix = 64): string {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.process(ip);
  } catch {
    return ip;
  }
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const bytes = parsed.toByteArray();
  for (let bit = ipv6Prefix; bit < 128; bit++) {
    const index = bit >> 3;
    bytes[index] = (bytes[index] as number) & ~(0x80 >> (bit & 7));
  }
  return `${ipaddr.fromByteArray(bytes).toString()}/${ipv6Prefix}`;
}

/**
 * A Lua script as a function of one key and its arguments. ioredis's defineCommand sends EVALSHA (and the script
 * only when Redis does not know it yet): EVAL sent the whole script with every SMTP command.
 */
export function redisScript(
  redis: Redis,
  name: string,
  lua: string,
): (key: string, ...args: (string | number)[]) => Promise<unknown> {
  redis.defineCommand(name, { numberOfKeys: 1, lua });
  const command = (redis as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>)[name];
  if (!command) throw new Error(`ioredis did not define ${name}`);
  return (key, ...args) => command.call(redis, key, ...args);
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
  const authWindow = options.authFailureWindowSeconds ?? AUTH_FAILURE_WINDOW_SECONDS;
  const counterTtl = options.connectionCounterTtlSeconds ?? CONNECTION_COUNTER_TTL_SECONDS;
  const ipv6Prefix = options.ipv6ClientPrefix ?? 64;
  const key = (kind: string, ip: string, ...more: string[]) =>
    `${options.prefix}ingest:${[kind, clientKey(ip, ipv6Prefix), ...more].join(':')}`;
  const openConnection = redisScript(redis, 'smgwIngestOpenConnection', OPEN_CONNECTION);
  const closeConnection = redisScript(redis, 'smgwIngestCloseConnection', CLOSE_CONNECTION);
  const takeAuthAttempt = redisScript(redis, 'smgwIngestTakeAuthAttempt', TAKE_AUTH_ATTEMPT);
  const returnAuthAttempt = redisScript(redis, 'smgwIngestReturnAuthAttempt', RETURN_AUTH_ATTEMPT);
  const leaseInWindow = redisScript(redis, 'smgwIngestLeaseInWindow', LEASE_IN_WINDOW);
  const commands = new CommandLeases(options.commandsPerMinute, (windowKey, size) =>
    leaseInWindow(windowKey, size, 120).then(Number),
  );

  return {
    openConnection: (ip) =>
      askRedis(async () => {
        const allowed = await openConnection(key('conn', ip), options.maxConnectionsPerClient, counterTtl);
        return allowed === 1;
      }),
    closeConnection: (ip) =>
      askRedis(async () => {
        await closeConnection(key('conn', ip));
      }),
    countCommand: (ip, now = Date.now()) => {
      const minute = Math.floor(now / 60_000);
      return commands.take(key('cmd', ip, String(minute)), minute);
    },
    takeAuthAttempt: (ip) =>
      askRedis(async () => Number(await takeAuthAttempt(key('authfail', ip), maxAuthFailures, authWindow)) > 0),
    returnAuthAttempt: (ip) =>
      askRedis(async () => {
        await returnAuthAttempt(key('authfail', ip));
      }),
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

  /** Counts one command in `minute`'s window; false when it is over the limit. Redis errors: RedisUnavailableError. */
  async take(windowKey: string, minute: number): Promise<boolean> {
    // A new window, or more client addresses in this one than we keep leases for: start again (unused numbers are
    // lost, which can only refuse early, never allow more).
    if (minute !== this.#minute || this.#windows.size >= MAX_LEASED_WINDOWS) {
      this.#windows.clear();
      this.#minute = minute;
    }
    let window = this.#windows.get(windowKey);
    if (!window) {
      window = { unused: 0, exhausted: false };
      this.#windows.set(windowKey, window);
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
    const size = this.#size;
    try {
      const after = await askRedis(() => this.#lease(windowKey, size));
      // Numbers after - size + 1 … after are ours; those up to the limit may be used.
      const usable = Math.max(0, Math.min(size, this.#limit - (after - size)));
      window.unused += usable;
      if (usable < size) window.exhausted = true;
    } finally {
      window.asking = undefined;
    }
  }
}
