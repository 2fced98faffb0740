// The per-client command limit against the real Redis: every replica takes numbers of the window's counter in
// leases, and all of them together never allow more than the limit. The AUTH limits per client and per account: an
// attempt counts before its password is checked, a success gives back only its own numbers.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { testRedisPrefix } from '@smgw/testing';
import { Redis } from 'ioredis';
import {
  type AuthAttempt,
  accountKey,
  CommandLeases,
  clientKey,
  clientName,
  createRateLimits,
  leaseSize,
  MAX_COMMAND_LEASE,
  type RateLimitOptions,
  type RateLimits,
  RedisUnavailableError,
  redisNameSecretFrom,
  type TakenAuthAttempt,
} from '../src/rate-limits.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const MINUTE = 60_000;

// One Redis prefix for the file: command windows and AUTH counts have keys of their own.
const prefix = testRedisPrefix();
const SECRET = redisNameSecretFrom(Buffer.alloc(32, 7));
let redis: Redis;
before(() => {
  redis = new Redis(REDIS_URL);
});
after(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

describe('concurrent connections per client and per network', () => {
  it('refuses a connection over the limit of its IPv6 /48, from a /64 with none open, until one closes', async () => {
    const limits = createRateLimits(redis, {
      prefix,
      redisNameSecret: SECRET,
      maxConnectionsPerClient: 10,
      maxConnectionsPerNetwork: 2,
      commandsPerMinute: 100,
    });
    // Three /64s of one /48 (one client each), and a /64 of another /48.
    assert.equal(await limits.openConnection('2001:db8:5:1::1'), true);
    assert.equal(await limits.openConnection('2001:db8:5:2::1'), true);
    assert.equal(await limits.openConnection('2001:db8:5:3::1'), false);
    assert.equal(await limits.openConnection('2001:db8:6:3::1'), true);
    // Nothing was kept of the refused one: one closed, one more fits.
    await limits.closeConnection('2001:db8:5:1::1');
    assert.equal(await limits.openConnection('2001:db8:5:3::1'), true);
    assert.equal(await limits.openConnection('2001:db8:5:4::1'), false);
    // IPv4: per /24.
    assert.equal(await limits.openConnection('198.51.100.1'), true);
    assert.equal(await limits.openConnection('198.51.100.2'), true);
    assert.equal(await limits.openConnection('198.51.100.3'), false);
    assert.equal(await limits.openConnection('198.51.101.3'), true);
  });

  it('keeps the per-client limit beside it', async () => {
    const limits = createRateLimits(redis, {
      prefix,
      redisNameSecret: SECRET,
      maxConnectionsPerClient: 1,
      maxConnectionsPerNetwork: 5,
      commandsPerMinute: 100,
    });
    assert.equal(await limits.openConnection('203.0.113.9'), true);
    assert.equal(await limits.openConnection('203.0.113.9'), false);
    assert.equal(await limits.openConnection('203.0.113.10'), true);
  });
});

describe('SMTP commands per client and minute', () => {
  const limits = (commandsPerMinute: number) =>
    createRateLimits(redis, { prefix, redisNameSecret: SECRET, maxConnectionsPerClient: 10, commandsPerMinute });

  it('takes about 1 % of the limit per lease, at most 16, and single numbers for small limits', () => {
    assert.equal(leaseSize(5), 1);
    assert.equal(leaseSize(199), 1);
    assert.equal(leaseSize(600), 6);
    assert.equal(leaseSize(6000), MAX_COMMAND_LEASE);
  });

  it('allows exactly the limit across three replicas sharing one counter, then refuses all of them', async () => {
    const replicas = [limits(1000), limits(1000), limits(1000)];
    const now = 7 * MINUTE;
    let allowed = 0;
    let refusedAt: number | undefined;
    // Round robin as a load balancer would spread one client's connections.
    for (let i = 0; i < 1200; i++) {
      const ok = await (replicas[i % 3] as (typeof replicas)[number]).countCommand('192.0.2.1', now);
      if (ok) allowed++;
      else refusedAt ??= i;
    }
    assert.ok(allowed <= 1000, `never more than the limit (${allowed})`);
    // Leased numbers the other replicas still hold are lost to each other: at most (3 - 1) × (10 - 1) early.
    assert.ok(allowed >= 1000 - 2 * 9, `refused at most a lease per other replica early (${allowed})`);
    assert.ok(refusedAt !== undefined && refusedAt >= 1000 - 2 * 9);
    for (const replica of replicas) assert.equal(await replica.countCommand('192.0.2.1', now), false);
  });

  it('allows exactly the limit to many commands at once from one client', async () => {
    const replica = limits(700);
    const answers = await Promise.all(Array.from({ length: 900 }, () => replica.countCommand('192.0.2.2', 9 * MINUTE)));
    assert.equal(answers.filter(Boolean).length, 700);
  });

  it('counts each client address apart and starts afresh in the next minute', async () => {
    const replica = limits(5);
    for (let i = 0; i < 5; i++) assert.equal(await replica.countCommand('192.0.2.3', 11 * MINUTE), true);
    assert.equal(await replica.countCommand('192.0.2.3', 11 * MINUTE), false);
    assert.equal(await replica.countCommand('192.0.2.4', 11 * MINUTE), true, 'another client');
    assert.equal(await replica.countCommand('192.0.2.3', 12 * MINUTE), true, 'the next window');
  });

  it('asks Redis once per lease, not once per command', async () => {
    const asked: number[] = [];
    let counter = 0;
    const leases = new CommandLeases(6000, async (_key, size) => {
      asked.push(size);
      counter += size;
      return counter;
    });
    for (let i = 0; i < 160; i++) assert.equal(await leases.take('k', 1), true);
    assert.deepEqual(asked, Array(10).fill(MAX_COMMAND_LEASE));
  });

  it('refuses with RedisUnavailableError when Redis fails, and lets nothing through unchecked', async () => {
    const leases = new CommandLeases(6000, () => Promise.reject(new Error('connection refused')));
    await assert.rejects(leases.take('k', 1), RedisUnavailableError);
  });
});

describe('AUTH attempts per client and per account', () => {
  // Each test counts its own account, so the tests share one prefix without sharing counts.
  const limits = (options: Partial<RateLimitOptions> = {}) =>
    createRateLimits(redis, {
      prefix,
      redisNameSecret: SECRET,
      maxConnectionsPerClient: 10,
      commandsPerMinute: 100,
      maxAuthFailures: 3,
      maxAuthFailuresPerAccount: 5,
      ...options,
    });
  const accountCount = async (username: string) =>
    Number((await redis.get(`${prefix}ingest:authfail-account:${accountKey(username, SECRET)}`)) ?? 0);
  const clientCount = async (client: string) =>
    Number((await redis.get(`${prefix}ingest:authfail:${clientName(client, SECRET)}`)) ?? 0);
  const taken = (attempt: AuthAttempt): TakenAuthAttempt => {
    assert.ok(attempt.taken, `refused by the ${attempt.taken ? '' : attempt.limit} limit`);
    return attempt;
  };
  const refusedBy = (attempt: AuthAttempt) => (attempt.taken ? 'taken' : attempt.limit);

  it('counts the spellings of one username as one account, as the login looks it up', async () => {
    const replica = limits();
    const spellings = ['Kanzlei@Behoerde.example', ' kanzlei@behoerde.example ', 'KANZLEI@BEHOERDE.EXAMPLE'];
    const answers = [];
    for (const [i, username] of [...spellings, ...spellings].entries()) {
      answers.push(refusedBy(await replica.takeAuthAttempt(`192.0.2.${10 + i}`, username)));
    }
    assert.deepEqual(answers, ['taken', 'taken', 'taken', 'taken', 'taken', 'account']);
    assert.equal(accountKey('\tKanzlei@behoerde.EXAMPLE\n', SECRET), accountKey('kanzlei@behoerde.example', SECRET));
  });

  it('counts an account under a name nobody can test a guessed username against without the master key', async () => {
    const username = 'geheim@behoerde.example';
    taken(await limits().takeAuthAttempt('192.0.2.120', username));
    const names = (await redis.keys(`${prefix}ingest:authfail-account:*`)).map((k) => k.split(':').at(-1));
    assert.ok(names.includes(accountKey(username, SECRET)));
    // Not the username, not its plain hash (what Redis held before), not the name under another master key.
    const plainHash = createHash('sha256').update(username).digest('hex');
    const otherKey = accountKey(username, redisNameSecretFrom(Buffer.alloc(32, 8)));
    for (const guess of [username, plainHash, otherKey]) assert.ok(!names.includes(guess), guess);
    assert.notDeepEqual(redisNameSecretFrom(Buffer.alloc(32, 7)), Buffer.alloc(32, 7), 'derived, not the master key');
    assert.notEqual(accountKey('kanzlei@behoerde.example', SECRET), accountKey('kanzlei2@behoerde.example', SECRET));
  });

  it('allows exactly the account limit to guesses sent at once from many addresses', async () => {
    const replicas = [limits(), limits()];
    const attempts = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        (replicas[i % 2] as (typeof replicas)[number]).takeAuthAttempt(`198.51.100.${i}`, 'parallel@behoerde.example'),
      ),
    );
    assert.equal(attempts.filter((a) => a.taken).length, 5);
    assert.ok(attempts.every((a) => a.taken || a.limit === 'account'));
    assert.equal(await accountCount('parallel@behoerde.example'), 5, 'refused attempts are not counted');
  });

  it("asks the client's limit first: a client over it adds nothing to the account's count", async () => {
    const replica = limits();
    for (let i = 0; i < 3; i++) taken(await replica.takeAuthAttempt('192.0.2.50', `sprayed${i}@behoerde.example`));
    assert.equal(refusedBy(await replica.takeAuthAttempt('192.0.2.50', 'victim@behoerde.example')), 'client');
    assert.equal(await accountCount('victim@behoerde.example'), 0);
  });

  it('gives back only the numbers of the login that succeeded, not those of guesses made beside it', async () => {
    const replica = limits();
    const username = 'mixed@behoerde.example';
    const [right, ...wrong] = await Promise.all(
      ['192.0.2.60', '192.0.2.61', '192.0.2.62', '192.0.2.61'].map((ip) => replica.takeAuthAttempt(ip, username)),
    );
    assert.equal(wrong.length, 3);
    await replica.returnAuthAttempt(taken(right as AuthAttempt), { succeeded: true });
    assert.equal(await accountCount(username), 3);
    assert.deepEqual(
      [await clientCount('192.0.2.60'), await clientCount('192.0.2.61'), await clientCount('192.0.2.62')],
      [0, 2, 1],
    );
  });

  it('gives back an attempt that could not be checked without making its client known to the account', async () => {
    const replica = limits();
    const username = 'unchecked@behoerde.example';
    for (let i = 0; i < 4; i++) taken(await replica.takeAuthAttempt(`192.0.2.${70 + i}`, username));
    const unchecked = taken(await replica.takeAuthAttempt('192.0.2.75', username));
    await replica.returnAuthAttempt(unchecked, { succeeded: false });
    assert.equal(await clientCount('192.0.2.75'), 0);
    assert.equal(await accountCount(username), 4);
    taken(await replica.takeAuthAttempt('192.0.2.76', username));
    assert.equal(refusedBy(await replica.takeAuthAttempt('192.0.2.75', username)), 'account', 'not known');
  });

  it("lets a client that logged in before past the account's limit, held by its own limit alone", async () => {
    const replica = limits();
    const username = 'agency@behoerde.example';
    await replica.returnAuthAttempt(taken(await replica.takeAuthAttempt('192.0.2.80', username)), { succeeded: true });
    for (let i = 0; i < 5; i++) taken(await replica.takeAuthAttempt(`203.0.113.${i}`, username));
    assert.equal(refusedBy(await replica.takeAuthAttempt('203.0.113.99', username)), 'account', 'a stranger');
    const known = taken(await replica.takeAuthAttempt('192.0.2.80', ` ${username.toUpperCase()}`));
    assert.equal(known.accountCounted, false, 'a known client does not fill the count either');
    assert.equal(await accountCount(username), 5);
    // Known to this account only; and its own client limit still holds (3 here).
    assert.equal(refusedBy(await replica.takeAuthAttempt('192.0.2.80', 'other@behoerde.example')), 'taken');
    assert.equal(refusedBy(await replica.takeAuthAttempt('192.0.2.80', username)), 'taken');
    assert.equal(refusedBy(await replica.takeAuthAttempt('192.0.2.80', username)), 'client');
  });

  it('counts the addresses of one IPv6 /64 as one client, also for AUTH', async () => {
    const replica = limits({ maxAuthFailuresPerAccount: 100 });
    for (let i = 1; i <= 3; i++) taken(await replica.takeAuthAttempt(`2001:db8:5:6::${i}`, 'v6@behoerde.example'));
    assert.equal(refusedBy(await replica.takeAuthAttempt('2001:db8:5:6:ffff::9', 'v6@behoerde.example')), 'client');
    assert.equal(refusedBy(await replica.takeAuthAttempt('2001:db8:5:7::1', 'v6@behoerde.example')), 'taken');
  });

  it('takes attempts for the account again once its window has ended', async () => {
    const replica = limits({ authFailureWindowSeconds: 1 });
    const username = 'window@behoerde.example';
    for (let i = 0; i < 5; i++) taken(await replica.takeAuthAttempt(`192.0.2.${90 + i}`, username));
    assert.equal(refusedBy(await replica.takeAuthAttempt('192.0.2.99', username)), 'account');
    // Waits for Redis to end the window (the key's TTL), not for a guessed time.
    const accountCounter = `${prefix}ingest:authfail-account:${accountKey(username, SECRET)}`;
    for (let tries = 0; (await redis.exists(accountCounter)) === 1; tries++) {
      assert.ok(tries < 100, 'the window did not end');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(refusedBy(await replica.takeAuthAttempt('192.0.2.99', username)), 'taken');
  });

  it('keeps no username in clear in Redis', async () => {
    const replica = limits();
    const attempt = taken(await replica.takeAuthAttempt('192.0.2.100', 'Secret.Name@behoerde.example'));
    await replica.returnAuthAttempt(attempt, { succeeded: true });
    const keys = await redis.keys(`${prefix}ingest:auth*`);
    assert.ok(keys.length > 0);
    for (const key of keys) {
      assert.doesNotMatch(key, /behoerde|secret/i);
      assert.doesNotMatch(String(await redis.get(key)), /behoerde|secret/i);
    }
  });

  it('keeps no client address in Redis, nor a name of one that can be tested without the master key', async () => {
    const clients = ['198.51.100.77', '2001:db8:77:1::5'];
    const own = testRedisPrefix();
    const replica = createRateLimits(redis, {
      prefix: own,
      redisNameSecret: SECRET,
      maxConnectionsPerClient: 10,
      commandsPerMinute: 100,
    });
    for (const ip of clients) {
      assert.equal(await replica.openConnection(ip), true);
      assert.equal(await replica.countCommand(ip), true);
      await replica.returnAuthAttempt(taken(await replica.takeAuthAttempt(ip, 'kanzlei@behoerde.example')), {
        succeeded: true,
      });
    }
    const keys = await redis.keys(`${own}*`);
    try {
      assert.ok(keys.length >= 8, keys.join(' '));
      const names = keys.join(' ');
      for (const ip of clients) {
        const client = clientKey(ip);
        // Not the address or its network, not their plain SHA-256 (the IPv4 space is small enough to hash whole),
        // not the name another master key gives.
        const plainHash = createHash('sha256').update(client).digest('hex');
        const otherKey = clientName(ip, redisNameSecretFrom(Buffer.alloc(32, 8)));
        for (const guess of [ip, client, '198.51.100', '2001:db8:77', plainHash, otherKey]) {
          assert.ok(!names.includes(guess), guess);
        }
        for (const kind of ['conn', 'cmd', 'authfail']) {
          assert.ok(names.includes(`${own}ingest:${kind}:${clientName(ip, SECRET)}`), `${kind} under the keyed name`);
        }
      }
      for (const key of keys) assert.doesNotMatch(String(await redis.get(key)), /198\.51|2001:db8/);
    } finally {
      await redis.del(...keys);
    }
  });

  it('refuses with RedisUnavailableError when Redis fails, and counts nothing as allowed', async () => {
    const down = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
    });
    try {
      const replica = createRateLimits(down, {
        prefix,
        redisNameSecret: SECRET,
        maxConnectionsPerClient: 10,
        commandsPerMinute: 100,
      });
      await assert.rejects(replica.takeAuthAttempt('192.0.2.110', 'x@behoerde.example'), RedisUnavailableError);
      const attempt: TakenAuthAttempt = { taken: true, ip: '192.0.2.110', username: 'x', accountCounted: true };
      await assert.rejects(replica.returnAuthAttempt(attempt, { succeeded: true }), RedisUnavailableError);
    } finally {
      down.disconnect();
    }
  });
});

describe('messages, recipients and bytes per hour of a submission sender', () => {
  const HOUR = 3_600_000;
  const limitsFor = (own: string) =>
    createRateLimits(redis, {
      prefix: own,
      redisNameSecret: SECRET,
      maxConnectionsPerClient: 10,
      commandsPerMinute: 100,
      submission: {
        account: { messages: 3, recipients: 500, bytes: 1000 },
        network: { messages: 2, recipients: 500, bytes: 2000 },
      },
    });

  it('allows an account its limit in a clock hour on all replicas together, and the next hour afresh', async () => {
    const own = testRedisPrefix();
    const [a, b] = [limitsFor(own), limitsFor(own)];
    const now = 1000 * HOUR + 10;
    const account = { account: 'Anna@Behoerde.example' };
    const counts = [
      await a.countSubmission('messages', account, now),
      await b.countSubmission('messages', { account: 'anna@behoerde.example' }, now),
      await a.countSubmission('messages', account, now),
      await b.countSubmission('messages', account, now),
    ];
    assert.deepEqual(
      counts.map((c) => c.allowed),
      [true, true, true, false],
    );
    assert.equal(counts[3]?.max, 3);
    assert.equal((await a.countSubmission('messages', account, now + HOUR)).allowed, true);
    // A client address is counted apart from every account, by the network's limit.
    const client = { ip: '127.10.0.9' };
    assert.deepEqual(
      [
        (await a.countSubmission('messages', client, now)).allowed,
        (await b.countSubmission('messages', client, now)).allowed,
        (await a.countSubmission('messages', client, now)).allowed,
      ],
      [true, true, false],
    );
    // Neither the username nor the address is in Redis.
    const keys = (await redis.keys(`${own}*`)).join(' ');
    assert.doesNotMatch(keys, /anna|behoerde|127\.10/i);
  });

  it('hands out a lease of recipients at a time, so a message of many does not ask Redis for each', async () => {
    const own = testRedisPrefix();
    const limits = limitsFor(own);
    const now = 2000 * HOUR;
    for (let i = 0; i < 500; i++) {
      assert.equal((await limits.countSubmission('recipients', { account: 'bulk' }, now)).allowed, true);
    }
    assert.equal((await limits.countSubmission('recipients', { account: 'bulk' }, now)).allowed, false);
    const [key] = await redis.keys(`${own}ingest:sub-recipients:*`);
    assert.equal(Number(await redis.get(key as string)), 500 + leaseSize(500));
  });

  it('counts the bytes of a message only when they fit in what is left of the hour, on all replicas together', async () => {
    const own = testRedisPrefix();
    const [a, b] = [limitsFor(own), limitsFor(own)];
    const now = 3000 * HOUR + 10;
    const account = { account: 'anna@behoerde.example' };
    const allowed = async (limits: typeof a, sender: typeof account | { ip: string }, bytes: number, at = now) =>
      (await limits.countSubmissionBytes(sender, bytes, at)).allowed;
    assert.equal(await allowed(a, account, 600), true);
    // 600 + 500 > 1000: refused and not counted, so 400 still fits, and then nothing more.
    assert.deepEqual(await b.countSubmissionBytes(account, 500, now), { allowed: false, max: 1000 });
    assert.equal(await allowed(b, account, 400), true);
    assert.equal(await allowed(a, account, 1), false);
    // Asking whether a declared size fits counts nothing.
    assert.deepEqual(await a.submissionBytesFit(account, 1, now), { allowed: false, max: 1000 });
    assert.deepEqual(await a.submissionBytesFit(account, 1000, now + HOUR), { allowed: true, max: 1000 });
    assert.equal(await allowed(a, account, 1000, now + HOUR), true);
    // A client address by the network's budget, apart from every account.
    assert.equal(await allowed(a, { ip: '127.10.0.9' }, 1500), true);
    assert.equal(await allowed(b, { ip: '127.10.0.9' }, 600), false);
    assert.equal(await allowed(b, { ip: '127.10.0.9' }, 500), true);
    // Neither the username nor the address is in Redis, and every counter ends with its window.
    const keys = await redis.keys(`${own}*sub-bytes*`);
    assert.doesNotMatch(keys.join(' '), /anna|behoerde|127\.10/i);
    for (const key of keys) assert.ok((await redis.ttl(key)) > 3600);
  });
});

describe('new TLS sessions per client, per network and minute', () => {
  const options = (client: number, network: number): RateLimitOptions => ({
    prefix,
    redisNameSecret: SECRET,
    maxConnectionsPerClient: 10,
    commandsPerMinute: 100,
    tlsSessionsPerMinute: { inbound: { client, network }, submission: { client: 50, network: 50 } },
  });
  // A minute of its own for each test, far from the others' (and from the clock).
  const minuteOf = (n: number) => (1_000_000 + n * 10) * MINUTE;

  it('allows a client its limit in a minute on all replicas together, counts nothing refused, and allows again the next minute', async () => {
    const replicas = [createRateLimits(redis, options(5, 100)), createRateLimits(redis, options(5, 100))];
    const now = minuteOf(1) + 30_000;
    const grants = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        (replicas[i % 2] as RateLimits).takeTlsSession('192.0.2.200', 'inbound', now),
      ),
    );
    assert.equal(grants.filter((g) => g.allowed).length, 5);
    assert.deepEqual(
      grants.find((g) => !g.allowed),
      { allowed: false, limit: 'client', max: 5 },
    );
    // Refusals took nothing of the network's count: a neighbour of the same /24 gets its own five.
    for (let i = 0; i < 5; i++) {
      assert.equal((await replicas[0]?.takeTlsSession('192.0.2.201', 'inbound', now))?.allowed, true);
    }
    // The window passes: the next minute counts afresh.
    assert.equal((await replicas[1]?.takeTlsSession('192.0.2.200', 'inbound', now + MINUTE))?.allowed, true);
  });

  it("refuses every client of a network over the network's limit, and no client of another network", async () => {
    const limits = createRateLimits(redis, options(3, 4));
    const now = minuteOf(2);
    const taken = [];
    for (const ip of ['198.51.100.1', '198.51.100.1', '198.51.100.2', '198.51.100.3']) {
      taken.push((await limits.takeTlsSession(ip, 'inbound', now)).allowed);
    }
    assert.deepEqual(taken, [true, true, true, true]);
    assert.deepEqual(await limits.takeTlsSession('198.51.100.4', 'inbound', now), {
      allowed: false,
      limit: 'network',
      max: 4,
    });
    assert.equal((await limits.takeTlsSession('198.51.101.4', 'inbound', now)).allowed, true);
    // IPv6: per /48, whatever /64 the client takes.
    const v6 = createRateLimits(redis, options(10, 2));
    assert.equal((await v6.takeTlsSession('2001:db8:7:1::1', 'inbound', now)).allowed, true);
    assert.equal((await v6.takeTlsSession('2001:db8:7:2::1', 'inbound', now)).allowed, true);
    assert.equal((await v6.takeTlsSession('2001:db8:7:3::1', 'inbound', now)).allowed, false);
    assert.equal((await v6.takeTlsSession('2001:db8:8:3::1', 'inbound', now)).allowed, true);
  });

  it("counts each listener apart, with the listener's own limits", async () => {
    const limits = createRateLimits(redis, options(2, 100));
    const now = minuteOf(3);
    assert.equal((await limits.takeTlsSession('203.0.113.50', 'inbound', now)).allowed, true);
    assert.equal((await limits.takeTlsSession('203.0.113.50', 'inbound', now)).allowed, true);
    assert.equal((await limits.takeTlsSession('203.0.113.50', 'inbound', now)).allowed, false);
    for (let i = 0; i < 10; i++) {
      assert.equal((await limits.takeTlsSession('203.0.113.50', 'submission', now)).allowed, true);
    }
  });

  it('refuses with RedisUnavailableError when Redis fails, and asks no Redis for a listener without limits (0)', async () => {
    const down = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
    });
    try {
      const replica = createRateLimits(down, {
        ...options(5, 0),
        tlsSessionsPerMinute: { inbound: { client: 5, network: 0 }, submission: { client: 0, network: 0 } },
      });
      await assert.rejects(replica.takeTlsSession('192.0.2.210', 'inbound'), RedisUnavailableError);
      assert.deepEqual(await replica.takeTlsSession('192.0.2.210', 'submission'), { allowed: true });
    } finally {
      down.disconnect();
    }
  });
});
