// AUTH guesses per account on the submission listener, against the real PostgreSQL and Redis: a guesser spread over
// many client addresses is held to the account's limit (20 per 15 minutes), the spellings of a username share it,
// unknown usernames are answered as known ones, and a client that logged in to the account before is not locked out.
// Each test presents its clients from addresses of its own in 127.0.0.0/8 (Linux's loopback takes them all), which
// are outside this world's SMGW_SUBMISSION_NETWORKS, so they must AUTH.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@smgw/observability';
import { createSubmissionAccount } from '@smgw/submission-accounts';
import { Redis } from 'ioredis';
import { AUTH_ACCOUNT_FAILURE_LIMIT, AUTH_FAILURE_LIMIT, accountKey, redisNameSecretFrom } from '../src/rate-limits.ts';
import type { RunningIngest } from '../src/service.ts';
import { createTestWorld, type TestWorld } from './harness.ts';
import { type Reply, SmtpTestClient } from './smtp-client.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PASSWORD = 'a long enough secret';
const plain = (user: string, password: string) => Buffer.from(`\u0000${user}\u0000${password}`).toString('base64');
const codes = (replies: Reply[]) => replies.map((r) => r.code);

/** Addresses 127.<net>.0.1, 127.<net>.0.2, …: `count` clients of one test, apart from every other test's. */
const addresses = (net: number, count: number) => Array.from({ length: count }, (_, i) => `127.${net}.0.${i + 1}`);

describe('AUTH guesses per account on the submission listener', () => {
  let world: TestWorld;
  let ingest: RunningIngest;
  let redis: Redis;
  const logLines: Record<string, unknown>[] = [];

  before(async () => {
    world = await createTestWorld();
    const log = createLogger('ingest-test', 'info', { write: (line: string) => logLines.push(JSON.parse(line)) });
    ({ ingest } = await world.start({ SMGW_SUBMISSION_NETWORKS: '10.0.0.0/8' }, log));
    redis = new Redis(REDIS_URL);
    for (const name of ['kanzlei', 'anna', 'bruno', 'clara', 'dora', 'emil']) {
      await createSubmissionAccount(world.db.pool, {
        username: `${name}@behoerde.example`,
        password: PASSWORD,
        senderDomains: ['behoerde.example'],
      });
    }
  });
  after(async () => {
    redis.disconnect();
    await world.close();
  });

  /** A session from `address` after STARTTLS, ready for AUTH. */
  async function tlsSession(address: string) {
    const { client, greeting } = await SmtpTestClient.open(ingest.submissionPort, address);
    assert.equal(greeting.code, 220);
    assert.equal((await client.command('EHLO agency.example')).code, 250);
    assert.equal((await client.startTls()).code, 220);
    assert.equal((await client.command('EHLO agency.example')).code, 250);
    return client;
  }

  /** One AUTH PLAIN on a session of its own from `address`. */
  async function authOnce(address: string, user: string, password: string) {
    const client = await tlsSession(address);
    const reply = await client.command(`AUTH PLAIN ${plain(user, password)}`);
    await client.quit();
    return reply;
  }

  /** `count` wrong passwords for `user` from `address`, one after the other on one session. */
  async function guessInTurn(address: string, user: string, count: number) {
    const client = await tlsSession(address);
    const replies: Reply[] = [];
    for (let i = 0; i < count; i++) replies.push(await client.command(`AUTH PLAIN ${plain(user, `guess ${i}`)}`));
    await client.quit();
    return replies;
  }

  /** Guesses of every address up to the client limit: AUTH_FAILURE_LIMIT wrong passwords each. */
  async function guessFromEach(clients: string[], user: string | ((i: number) => string)) {
    const replies: Reply[] = [];
    for (const [i, address] of clients.entries()) {
      replies.push(...(await guessInTurn(address, typeof user === 'string' ? user : user(i), AUTH_FAILURE_LIMIT)));
    }
    return replies;
  }

  const rateLimitedLines = () => logLines.filter((line) => line.code === 'AUTH_RATE_LIMITED');

  it('checks at most twenty passwords of one account guessed at once from six addresses, then refuses the right one with 454', async () => {
    const clients = addresses(1, 7);
    const guessers = clients.slice(0, 6);
    // Five guesses per address (each within its client limit), all on sessions of their own, all sent together.
    const sessions = await Promise.all(
      guessers.flatMap((address) => Array.from({ length: 5 }, () => tlsSession(address))),
    );
    const replies = await Promise.all(
      sessions.map((client, i) => client.command(`AUTH PLAIN ${plain('kanzlei@behoerde.example', `guess ${i}`)}`)),
    );
    await Promise.all(sessions.map((client) => client.quit()));
    assert.equal(replies.filter((r) => r.code === 535).length, AUTH_ACCOUNT_FAILURE_LIMIT, codes(replies).join(' '));
    assert.equal(replies.filter((r) => r.code === 454).length, 30 - AUTH_ACCOUNT_FAILURE_LIMIT);
    const right = await authOnce(clients[6] as string, 'kanzlei@behoerde.example', PASSWORD);
    assert.equal(right.text, '454 4.7.0 Too many failed authentication attempts, try again later');
    const refusals = rateLimitedLines().filter((line) => line.user === 'kanzlei@behoerde.example');
    assert.equal(refusals.length, 30 - AUTH_ACCOUNT_FAILURE_LIMIT + 1);
    assert.ok(refusals.every((line) => line.limit === 'account'));
  });

  it('counts the spellings of one username as one account', async () => {
    const clients = addresses(2, 5);
    const spellings = [
      'Anna@Behoerde.example',
      'ANNA@BEHOERDE.EXAMPLE',
      ' anna@behoerde.example',
      'anna@behoerde.EXAMPLE ',
    ];
    const replies = await guessFromEach(clients.slice(0, 4), (i) => spellings[i] as string);
    assert.deepEqual(codes(replies), Array(AUTH_ACCOUNT_FAILURE_LIMIT).fill(535));
    assert.equal((await authOnce(clients[4] as string, 'anna@behoerde.example', PASSWORD)).code, 454);
  });

  it('answers an unknown username exactly as a known one, up to the limit and past it', async () => {
    const answers = async (net: number, user: string) => {
      const clients = addresses(net, 5);
      const replies = await guessFromEach(clients.slice(0, 4), user);
      replies.push(await authOnce(clients[4] as string, user, 'one more guess'));
      return replies.map((r) => r.text);
    };
    const known = await answers(3, 'bruno@behoerde.example');
    const unknown = await answers(4, 'nobody@behoerde.example');
    assert.deepEqual(unknown, known);
    assert.deepEqual(known.slice(-2), [
      '535 5.7.8 Authentication credentials invalid',
      '454 4.7.0 Too many failed authentication attempts, try again later',
    ]);
  });

  it('still lets in a client that logged in to the account before, and a new one once the window has ended', async () => {
    const [usual, newcomer, ...strangers] = addresses(5, 6) as [string, string, ...string[]];
    assert.equal((await authOnce(usual, 'clara@behoerde.example', PASSWORD)).code, 235);
    await guessFromEach(strangers, 'clara@behoerde.example');
    assert.equal((await authOnce(newcomer, 'clara@behoerde.example', PASSWORD)).code, 454, 'temporary, not 535');
    assert.equal((await authOnce(usual, 'Clara@behoerde.example', PASSWORD)).code, 235, 'the usual client');
    // The window ends: what the counter's TTL does after AUTH_FAILURE_WINDOW_SECONDS (the unit tests wait for a short
    // one; this service runs with the 15 minutes).
    const counter = `${world.redisPrefix}ingest:authfail-account:${accountKey('clara@behoerde.example', redisNameSecretFrom(world.db.keys.masterKey))}`;
    assert.equal(await redis.get(counter), String(AUTH_ACCOUNT_FAILURE_LIMIT));
    assert.ok((await redis.ttl(counter)) > 0, 'the count ends with its window');
    await redis.del(counter);
    assert.equal((await authOnce(newcomer, 'clara@behoerde.example', PASSWORD)).code, 235);
  });

  it('gives back only the slots of a login that succeeded among guesses sent beside it', async () => {
    const [client] = addresses(6, 1) as [string];
    const sessions = await Promise.all(Array.from({ length: 5 }, () => tlsSession(client)));
    const replies = await Promise.all(
      sessions.map((session, i) =>
        session.command(`AUTH PLAIN ${plain('dora@behoerde.example', i === 2 ? PASSWORD : `guess ${i}`)}`),
      ),
    );
    await Promise.all(sessions.map((session) => session.quit()));
    assert.deepEqual(codes(replies).sort(), [235, 535, 535, 535, 535]);
    const counter = `${world.redisPrefix}ingest:authfail-account:${accountKey('dora@behoerde.example', redisNameSecretFrom(world.db.keys.masterKey))}`;
    assert.equal(await redis.get(counter), '4', 'the four failures stay counted for the account');
    // One failure left for this client; then even the right password is refused (client limit, logged as such).
    assert.deepEqual(codes(await guessInTurn(client, 'dora@behoerde.example', 1)), [535]);
    assert.equal((await authOnce(client, 'dora@behoerde.example', PASSWORD)).code, 454);
    const last = rateLimitedLines().at(-1);
    assert.deepEqual([last?.user, last?.limit, last?.ip], ['dora@behoerde.example', 'client', client]);
  });

  it('logs no password, and keeps no username in clear in Redis', async () => {
    await authOnce(addresses(7, 1)[0] as string, 'emil@behoerde.example', 'wrong but secret');
    const logged = JSON.stringify(logLines);
    assert.ok(logLines.length > 0);
    for (const secret of [PASSWORD, 'wrong but secret', 'guess 1']) assert.ok(!logged.includes(secret), secret);
    const keys = await redis.keys(`${world.redisPrefix}ingest:auth*`);
    assert.ok(keys.length > 0);
    assert.ok(
      keys.every((key) => !/behoerde|nobody/i.test(key)),
      keys.join('\n'),
    );
  });
});
