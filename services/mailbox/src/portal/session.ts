// Portal sessions in Redis. The cookie carries a random 32-byte id; Redis holds only its SHA-256, so a copy of Redis
// (or its keys in a log) does not let anyone in. A session ends after SMGW_PORTAL_SESSION_IDLE without a request and
// SMGW_PORTAL_SESSION_MAX after login, whichever comes first; both are checked against the injected clock (the
// Redis TTL only cleans up). A per-mailbox set of session hashes makes "log out everywhere" one call. A request's
// refresh writes the session back only if it still exists (one script), so a request in flight while the session is
// destroyed (log out everywhere, a new password) cannot bring it back.
// Each session also keeps its mailbox's standing at login (mailboxStanding: when the password was last set and when
// an operator last locked or unlocked it, as the database holds them): a request whose mailbox no longer has that
// standing ends the session. So a lock ends a session even when the session sends nothing until after the unlock,
// and a login that checked a password just being replaced does not outlive it.
import { createHash, randomBytes } from 'node:crypto';
import type { Mailbox } from '@smgw/mailbox-store';
import type { Redis } from 'ioredis';

export interface SessionRecord {
  /** SHA-256 (hex) of the cookie's id: how the session is named in Redis, logs and the per-mailbox set. */
  key: string;
  mailboxId: string;
  /** mailboxStanding of the mailbox at login. */
  standing: string;
  createdAt: Date;
  lastSeenAt: Date;
}

/**
 * What a session depends on besides itself: when the mailbox's password was set and when an operator last locked or
 * unlocked it (database values, so no clocks of different hosts are compared). Either changing ends the session.
 */
export function mailboxStanding(mailbox: Pick<Mailbox, 'passwordChangedAt' | 'stateChangedAt'>): string {
  return `password:${mailbox.passwordChangedAt?.getTime() ?? '-'};state:${mailbox.stateChangedAt?.getTime() ?? '-'}`;
}

export interface SessionStore {
  /** A new session for the mailbox (as just read); returns the id for the cookie (never stored). */
  create(mailbox: SessionMailbox): Promise<{ cookieId: string; session: SessionRecord }>;
  /**
   * The live session of a cookie id, its lastSeen moved to now; undefined (and removed) when unknown, idle too long
   * or older than the maximum.
   */
  resolve(cookieId: string): Promise<SessionRecord | undefined>;
  /** Logout: the session is gone. */
  destroy(cookieId: string): Promise<void>;
  /** Logout everywhere (or the mailbox was locked or deleted): every session of the mailbox is gone; returns how many. */
  destroyAllOf(mailboxId: string, exceptKey?: string): Promise<number>;
  /** Login: the old session (if any) is gone and a new one made, so an id planted before login is worthless. */
  rotate(
    oldCookieId: string | undefined,
    mailbox: SessionMailbox,
  ): Promise<{ cookieId: string; session: SessionRecord }>;
}

/** What a session is made from: the mailbox as read when its password was checked or set. */
export type SessionMailbox = Pick<Mailbox, 'id' | 'passwordChangedAt' | 'stateChangedAt'>;

export interface SessionOptions {
  redis: Redis;
  /** SMGW_REDIS_PREFIX (tests: a prefix of their own). */
  prefix: string;
  idleMs: number;
  maxMs: number;
  now: () => Date;
}

/** The cookie's id as Redis knows it. Ids are 32 random bytes, so a fast hash is enough. */
export function sessionKey(cookieId: string): string {
  return createHash('sha256').update(cookieId, 'utf8').digest('hex');
}

const COOKIE_ID = /^[A-Za-z0-9_-]{43}$/;

// SET XX and the SADD only while the session key exists: one script, so no destroy can fall between check and write.
const REFRESH = `
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'XX') then
  redis.call('SADD', KEYS[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  return 1
end
return 0`;

export function createSessionStore(options: SessionOptions): SessionStore {
  const { redis, idleMs, maxMs } = options;
  const sessionRedisKey = (key: string) => `${options.prefix}portal:session:${key}`;
  const mailboxSetKey = (mailboxId: string) => `${options.prefix}portal:mailbox-sessions:${mailboxId}`;

  /** The stored value and its TTL: kept until it would end anyway (plus a minute, so the clock check decides). */
  function stored(session: SessionRecord): { value: string; ttl: number } {
    const now = options.now().getTime();
    const ttl = Math.max(1000, Math.min(idleMs, session.createdAt.getTime() + maxMs - now) + 60_000);
    const value = JSON.stringify({
      mailboxId: session.mailboxId,
      standing: session.standing,
      created: session.createdAt.getTime(),
      lastSeen: session.lastSeenAt.getTime(),
    });
    return { value, ttl };
  }

  async function save(session: SessionRecord): Promise<void> {
    const { value, ttl } = stored(session);
    await redis
      .multi()
      .set(sessionRedisKey(session.key), value, 'PX', ttl)
      .sadd(mailboxSetKey(session.mailboxId), session.key)
      .pexpire(mailboxSetKey(session.mailboxId), maxMs + 60_000)
      .exec();
  }

  /** Moves lastSeen of a session that still exists; false when it was destroyed since it was read. */
  async function refresh(session: SessionRecord): Promise<boolean> {
    const { value, ttl } = stored(session);
    const refreshed = await redis.eval(
      REFRESH,
      2,
      sessionRedisKey(session.key),
      mailboxSetKey(session.mailboxId),
      value,
      ttl,
      session.key,
      maxMs + 60_000,
    );
    return refreshed === 1;
  }

  async function remove(key: string, mailboxId?: string): Promise<void> {
    const multi = redis.multi().del(sessionRedisKey(key));
    if (mailboxId) multi.srem(mailboxSetKey(mailboxId), key);
    await multi.exec();
  }

  const store: SessionStore = {
    async create(mailbox) {
      const cookieId = randomBytes(32).toString('base64url');
      const now = options.now();
      const session = {
        key: sessionKey(cookieId),
        mailboxId: mailbox.id,
        standing: mailboxStanding(mailbox),
        createdAt: now,
        lastSeenAt: now,
      };
      await save(session);
      return { cookieId, session };
    },

    async resolve(cookieId) {
      if (!COOKIE_ID.test(cookieId)) return undefined;
      const key = sessionKey(cookieId);
      const raw = await redis.get(sessionRedisKey(key));
      if (!raw) return undefined;
      const stored = JSON.parse(raw) as { mailboxId: string; standing?: string; created: number; lastSeen: number };
      const now = options.now().getTime();
      if (now - stored.lastSeen >= idleMs || now - stored.created >= maxMs) {
        await remove(key, stored.mailboxId);
        return undefined;
      }
      const session = {
        key,
        mailboxId: stored.mailboxId,
        // A session stored before standings were kept has none: it matches no mailbox and ends.
        standing: stored.standing ?? '',
        createdAt: new Date(stored.created),
        lastSeenAt: new Date(now),
      };
      return (await refresh(session)) ? session : undefined;
    },

    async destroy(cookieId) {
      if (!COOKIE_ID.test(cookieId)) return;
      const key = sessionKey(cookieId);
      const raw = await redis.get(sessionRedisKey(key));
      const mailboxId = raw ? (JSON.parse(raw) as { mailboxId: string }).mailboxId : undefined;
      await remove(key, mailboxId);
    },

    async destroyAllOf(mailboxId, exceptKey) {
      const keys = (await redis.smembers(mailboxSetKey(mailboxId))).filter((k) => k !== exceptKey);
      if (keys.length === 0) return 0;
      await redis
        .multi()
        .del(...keys.map(sessionRedisKey))
        .srem(mailboxSetKey(mailboxId), ...keys)
        .exec();
      return keys.length;
    },

    async rotate(oldCookieId, mailbox) {
      if (oldCookieId) await store.destroy(oldCookieId);
      return store.create(mailbox);
    },
  };
  return store;
}
