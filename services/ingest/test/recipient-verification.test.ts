// Recipient verification on the MX port against a real relay (an SMTP sink), with Redis as the cache and counter.
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { freePort } from '@smgw/testing';
import { Redis } from 'ioredis';
import { createRecipientVerification, relayProbe } from '../src/recipient-verification.ts';
import type { RunningIngest } from '../src/service.ts';
import { createTestWorld, type TestWorld } from './harness.ts';
import { SmtpTestClient } from './smtp-client.ts';

const UNKNOWN_REPLY = '550 5.1.1 Recipient address rejected: unknown user';
const UNVERIFIED_REPLY = '450 4.1.1 Recipient address not verified now, try again later';
const LIMIT_REPLY = '450 4.7.1 Too many unknown recipients, try again later';

/** An MX session after EHLO and MAIL FROM, ready for RCPT. */
async function mxSession(port: number): Promise<SmtpTestClient> {
  const { client, greeting } = await SmtpTestClient.open(port);
  assert.equal(greeting.code, 220);
  assert.equal((await client.command('EHLO sender.example')).code, 250);
  assert.equal((await client.command('MAIL FROM:<absender@extern.example>')).code, 250);
  return client;
}

async function rcpt(client: SmtpTestClient, address: string): Promise<string> {
  return (await client.command(`RCPT TO:<${address}>`)).text;
}

describe('recipient verification against the agencies relay', () => {
  let world: TestWorld;
  let ingest: RunningIngest;
  const probes: { rcpt: string; mailFrom: string }[] = [];

  before(async () => {
    world = await createTestWorld();
    world.relay.rejectRecipient = (address, mailFrom) => {
      probes.push({ rcpt: address, mailFrom });
      if (address.startsWith('unbekannt')) return { code: 550, message: `5.1.1 <${address}>: no such user` };
      if (address.startsWith('spaeter')) return { code: 451, message: '4.3.0 directory busy' };
      return undefined;
    };
    ({ ingest } = await world.start());
  });
  after(() => world.close());

  it('takes a recipient the relay knows and refuses one it does not with 550 5.1.1, at RCPT', async () => {
    const client = await mxSession(ingest.inboundPort);
    assert.equal(await rcpt(client, 'amt-a@behoerde.example'), '250 2.1.5 Accepted');
    assert.equal(await rcpt(client, 'unbekannt-a@behoerde.example'), UNKNOWN_REPLY);
    await client.quit();
  });

  it('keeps in Redis no list of which agency addresses exist, nor the addresses of clients: keyed HMACs name them', async () => {
    const client = await mxSession(ingest.inboundPort);
    assert.equal(await rcpt(client, 'amt-geheim@behoerde.example'), '250 2.1.5 Accepted');
    assert.equal(await rcpt(client, 'unbekannt-geheim@behoerde.example'), UNKNOWN_REPLY);
    await client.quit();
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    try {
      const names = await redis.keys(`${world.redisPrefix}ingest:rcpt-verify:*`);
      assert.ok(names.length >= 2, `cached: ${names.length}`);
      assert.ok(!names.some((name) => /geheim|behoerde/.test(name)), names.join(' '));
      const values = await Promise.all(names.map((name) => redis.get(name)));
      assert.ok(
        values.every((value) => !value?.includes('behoerde')),
        'the answers name no address either',
      );
      // The client's count of unknown recipients (and its commands) named as the rate limits name clients.
      const all = await redis.keys(`${world.redisPrefix}*`);
      assert.ok(
        all.some((name) => name.includes(':unknown-rcpt:')),
        all.join(' '),
      );
      assert.ok(!all.some((name) => name.includes('127.0.0.1')), all.join(' '));
    } finally {
      redis.disconnect();
    }
  });

  it('asks the relay with the null sender and sends it no message', async () => {
    const client = await mxSession(ingest.inboundPort);
    await rcpt(client, 'amt-b@behoerde.example');
    await client.quit();
    const probe = probes.find((p) => p.rcpt === 'amt-b@behoerde.example');
    assert.deepEqual(probe, { rcpt: 'amt-b@behoerde.example', mailFrom: '' });
    assert.equal(world.relay.messages.length, 0);
  });

  it('asks the relay once per address while its answer is remembered, known or unknown', async () => {
    for (let i = 0; i < 2; i++) {
      const client = await mxSession(ingest.inboundPort);
      assert.equal(await rcpt(client, 'amt-c@behoerde.example'), '250 2.1.5 Accepted');
      assert.equal(await rcpt(client, 'unbekannt-c@behoerde.example'), UNKNOWN_REPLY);
      await client.quit();
    }
    assert.equal(probes.filter((p) => p.rcpt === 'amt-c@behoerde.example').length, 1);
    assert.equal(probes.filter((p) => p.rcpt === 'unbekannt-c@behoerde.example').length, 1);
  });

  it('asks the relay once for an address however its case is spelled (no probe per spelling)', async () => {
    // 2^n spellings of one known address were a session to the relay each, and never counted as unknown.
    const client = await mxSession(ingest.inboundPort);
    for (let i = 0; i < 16; i++) {
      const local = [...'amt-d'].map((ch, j) => ((i >> j) & 1 ? ch.toUpperCase() : ch)).join('');
      assert.equal(await rcpt(client, `${local}@Behoerde.example`), '250 2.1.5 Accepted');
    }
    await client.quit();
    assert.equal(probes.filter((p) => p.rcpt.toLowerCase() === 'amt-d@behoerde.example').length, 1);
  });

  it('answers 450 4.1.1 when the relay answers a temporary failure, and asks again next time', async () => {
    const client = await mxSession(ingest.inboundPort);
    assert.equal(await rcpt(client, 'spaeter-d@behoerde.example'), UNVERIFIED_REPLY);
    assert.equal(await rcpt(client, 'spaeter-d@behoerde.example'), UNVERIFIED_REPLY);
    await client.quit();
    assert.equal(probes.filter((p) => p.rcpt === 'spaeter-d@behoerde.example').length, 2);
  });

  it('counts verifications by result in /metrics', async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${ingest.healthPort}/metrics`)).text();
    for (const result of ['known', 'unknown', 'unverified']) {
      assert.match(
        metrics,
        new RegExp(`^smgw_ingest_recipient_verifications_total\\{result="${result}"[^}]*\\} [1-9]`, 'm'),
      );
    }
  });

  it('does not verify recipients on the submission port', async () => {
    const { client } = await SmtpTestClient.open(ingest.submissionPort);
    await client.command('EHLO client.behoerde.example');
    assert.equal((await client.command('MAIL FROM:<sb@behoerde.example>')).code, 250);
    assert.equal(await rcpt(client, 'unbekannt-e@behoerde.example'), '250 2.1.5 Accepted');
    await client.quit();
    assert.equal(probes.filter((p) => p.rcpt === 'unbekannt-e@behoerde.example').length, 0);
  });
});

describe('the cap on unknown recipients per client (against harvesting agency addresses)', () => {
  let world: TestWorld;
  let ingest: RunningIngest;

  before(async () => {
    world = await createTestWorld();
    world.relay.rejectRecipient = (address) =>
      address.startsWith('raten') ? { code: 550, message: '5.1.1 no such user' } : undefined;
    ({ ingest } = await world.start({ SMGW_SMTP_MAX_UNKNOWN_RECIPIENTS: '3' }));
  });
  after(() => world.close());

  it('answers 450 to every further RCPT, known or not, once a client tried too many unknown ones', async () => {
    const client = await mxSession(ingest.inboundPort);
    assert.equal(await rcpt(client, 'amt@behoerde.example'), '250 2.1.5 Accepted');
    for (const guess of ['raten-1', 'raten-2', 'raten-3']) {
      assert.equal(await rcpt(client, `${guess}@behoerde.example`), UNKNOWN_REPLY);
    }
    assert.equal(await rcpt(client, 'raten-4@behoerde.example'), LIMIT_REPLY);
    assert.equal(await rcpt(client, 'amt@behoerde.example'), LIMIT_REPLY, 'a known address tells nothing either');
    await client.quit();
    const again = await mxSession(ingest.inboundPort);
    assert.equal(await rcpt(again, 'amt@behoerde.example'), LIMIT_REPLY, 'a new session does not reset it');
    await again.quit();
  });
});

describe('the cap on unknown recipients per network (IPv4 /24, IPv6 /48)', () => {
  let world: TestWorld;
  let ingest: RunningIngest;

  before(async () => {
    world = await createTestWorld();
    world.relay.rejectRecipient = (address) =>
      address.startsWith('raten') ? { code: 550, message: '5.1.1 no such user' } : undefined;
    ({ ingest } = await world.start({
      SMGW_SMTP_MAX_UNKNOWN_RECIPIENTS: '3',
      SMGW_SMTP_MAX_UNKNOWN_RECIPIENTS_PER_NETWORK: '5',
    }));
  });
  after(() => world.close());

  /** An MX session from `localAddress` (any of 127.0.0.0/8 on Linux's loopback). */
  async function sessionFrom(localAddress: string): Promise<SmtpTestClient> {
    const { client, greeting } = await SmtpTestClient.open(ingest.inboundPort, localAddress);
    assert.equal(greeting.code, 220);
    assert.equal((await client.command('EHLO sender.example')).code, 250);
    assert.equal((await client.command('MAIL FROM:<absender@extern.example>')).code, 250);
    return client;
  }

  it('answers 450 to every RCPT from the network once its clients together tried too many', async () => {
    const first = await sessionFrom('127.0.0.2');
    for (const guess of ['raten-1', 'raten-2', 'raten-3']) {
      assert.equal(await rcpt(first, `${guess}@behoerde.example`), UNKNOWN_REPLY);
    }
    await first.quit();
    // Another client of 127.0.0.0/24, under its own limit: the network's 5 are used up after two more.
    const second = await sessionFrom('127.0.0.3');
    assert.equal(await rcpt(second, 'raten-4@behoerde.example'), UNKNOWN_REPLY);
    assert.equal(await rcpt(second, 'raten-5@behoerde.example'), UNKNOWN_REPLY);
    assert.equal(await rcpt(second, 'raten-6@behoerde.example'), LIMIT_REPLY);
    await second.quit();
    const third = await sessionFrom('127.0.0.4');
    assert.equal(await rcpt(third, 'amt@behoerde.example'), LIMIT_REPLY, 'a known address tells nothing either');
    await third.quit();
    // Another network is not held.
    const elsewhere = await sessionFrom('127.0.1.4');
    assert.equal(await rcpt(elsewhere, 'amt@behoerde.example'), '250 2.1.5 Accepted');
    await elsewhere.quit();
  });

  it('counts IPv6 clients per /48: a new /64 of the same /48 does not start afresh', async () => {
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    try {
      const verification = createRecipientVerification(
        redis,
        {
          mode: 'relay',
          relays: [],
          hostname: 'smgw.test',
          prefix: `${world.redisPrefix}v6:`,
          redisNameSecret: Buffer.alloc(32, 3),
          knownTtlMs: 60_000,
          unknownTtlMs: 60_000,
          probeTimeoutMs: 1000,
          maxUnknownPerClient: 2,
          maxUnknownPerNetwork: 5,
          unknownWindowMs: 60_000,
          ipv6ClientPrefix: 64,
        },
        {
          probe: async (address) =>
            address.startsWith('raten')
              ? { verdict: 'unknown', reply: '550 no such user', relay: 'stub' }
              : { verdict: 'known', reply: '250 ok', relay: 'stub' },
        },
      );
      const codes: string[] = [];
      // Two guesses from each of three /64s of 2001:db8:7::/48: the sixth is over the network's 5.
      for (const net of [1, 2, 3]) {
        for (const n of [1, 2]) {
          const check = await verification.check(`2001:db8:7:${net}::1`, `raten-${net}-${n}@behoerde.example`);
          codes.push(check.accept ? 'accepted' : check.code);
        }
      }
      assert.deepEqual(codes, [
        'RECIPIENT_UNKNOWN',
        'RECIPIENT_UNKNOWN',
        'RECIPIENT_UNKNOWN',
        'RECIPIENT_UNKNOWN',
        'RECIPIENT_UNKNOWN',
        'UNKNOWN_RECIPIENT_LIMIT',
      ]);
      const known = await verification.check('2001:db8:7:9::1', 'amt@behoerde.example');
      assert.equal(known.accept ? 'accepted' : known.code, 'UNKNOWN_RECIPIENT_LIMIT');
      assert.deepEqual(await verification.check('2001:db8:8:1::1', 'amt@behoerde.example'), { accept: true });
    } finally {
      redis.disconnect();
    }
  });
});

describe('recipient verification when the relay cannot be asked', () => {
  let world: TestWorld;
  let dead: RunningIngest;
  let failover: RunningIngest;
  let off: RunningIngest;
  let silent: RunningIngest;
  // Takes connections and never says a word.
  const muted = new Set<net.Socket>();
  const mute = net.createServer((socket) => {
    muted.add(socket);
    socket.on('error', () => {});
  });

  before(async () => {
    world = await createTestWorld();
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    ({ ingest: silent } = await world.start({
      SMGW_INTERNAL_RELAY: `127.0.0.1:${(mute.address() as AddressInfo).port}`,
      SMGW_RECIPIENT_VERIFY_TIMEOUT: '300ms',
    }));
    const deadRelay = `127.0.0.1:${await freePort()}`;
    ({ ingest: dead } = await world.start({ SMGW_INTERNAL_RELAY: deadRelay }));
    ({ ingest: failover } = await world.start({
      SMGW_INTERNAL_RELAY: `${deadRelay},127.0.0.1:${world.relay.port}`,
    }));
    ({ ingest: off } = await world.start({ SMGW_INTERNAL_RELAY: deadRelay, SMGW_RECIPIENT_VERIFY: 'off' }));
  });
  after(async () => {
    await world.close();
    for (const socket of muted) socket.destroy();
    await new Promise((resolve) => mute.close(resolve));
  });

  it('answers 450 4.1.1, never 250, when no relay can be reached', async () => {
    const client = await mxSession(dead.inboundPort);
    assert.equal(await rcpt(client, 'amt-f@behoerde.example'), UNVERIFIED_REPLY);
    await client.quit();
  });

  it('answers 450 4.1.1 when the relay does not answer in SMGW_RECIPIENT_VERIFY_TIMEOUT', async () => {
    const client = await mxSession(silent.inboundPort);
    assert.equal(await rcpt(client, 'amt-i@behoerde.example'), UNVERIFIED_REPLY);
    await client.quit();
  });

  it('asks the next relay of SMGW_INTERNAL_RELAY when the first cannot be reached', async () => {
    const client = await mxSession(failover.inboundPort);
    assert.equal(await rcpt(client, 'amt-g@behoerde.example'), '250 2.1.5 Accepted');
    await client.quit();
  });

  it('takes every agency recipient unasked with SMGW_RECIPIENT_VERIFY=off', async () => {
    const client = await mxSession(off.inboundPort);
    assert.equal(await rcpt(client, 'amt-h@behoerde.example'), '250 2.1.5 Accepted');
    await client.quit();
  });
});

describe('which RCPT addresses are probed at all', () => {
  const probe = relayProbe({ relays: [], hostname: 'smgw.test', probeTimeoutMs: 100 });

  it('probes none without an at sign between two characters, or with white space or angle brackets', async () => {
    for (const address of ['a', '@a', 'a@', '@', 'a b@c', 'a@b\u00a0', '<a@b>', 'a@b\n']) {
      assert.deepEqual(await probe(address), { verdict: 'unverified', reason: 'not an address to probe' }, address);
    }
    for (const address of ['a@b', '@@a', 'a@@', '@a@b']) {
      assert.notDeepEqual(await probe(address), { verdict: 'unverified', reason: 'not an address to probe' }, address);
    }
  });

  // Each at sign was tried again to the end of the address: a RCPT as long as smtp-server reads (16 KB) took 0.2 s
  // of the MX port, and a client may send many.
  it('reads an address of 1 MiB of at signs before a space in one pass', async () => {
    const address = `${'@a'.repeat(512 * 1024)} @behoerde.example`;
    assert.deepEqual(await probe(address), { verdict: 'unverified', reason: 'not an address to probe' });
  });
});
