// The per-client command limit against the real Redis: every replica takes numbers of the window's counter in
// leases, and all of them together never allow more than the limit.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testRedisPrefix } from '@smgw/testing';
import { Redis } from 'ioredis';
import {
  CommandLeases,
  createRateLimits,
  leaseSize,
  MAX_COMMAND_LEASE,
  RedisUnavailableError,
} from '../src/rate-limits.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const MINUTE = 60_000;

describe('SMTP commands per client and minute', () => {
  const prefix = testRedisPrefix();
  let redis: Redis;
  before(() => {
    redis = new Redis(REDIS_URL);
  });
  after(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  const limits = (commandsPerMinute: number) =>
    createRateLimits(redis, { prefix, maxConnectionsPerClient: 10, commandsPerMinute });

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
