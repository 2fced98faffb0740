// SPF, DKIM and DMARC of MX mail against the real ingest (PostgreSQL, RabbitMQ, Redis) and a stub DNS server that
// publishes the senders' records: what is accepted carries the results in its envelope, a DMARC p=reject failure
// is refused before anything is stored, and a DNS that does not answer never refuses mail by default.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Envelope } from '@smgw/envelope';
import { assertQueued, createDkimTestKey } from '@smgw/testing';
import type { RunningIngest } from '../src/service.ts';
import { createTestWorld, type TestWorld } from './harness.ts';
import { SmtpTestClient } from './smtp-client.ts';

const dkimKey = createDkimTestKey();

/** A message From `from`, signed by `signingDomain` with the published key when given. */
async function message(from: string, options: { signingDomain?: string; extraHeader?: string } = {}) {
  const unsigned = [
    `From: ${from}`,
    'To: amt@behoerde.example',
    'Subject: Antrag',
    'Message-ID: <1@sender.example>',
    'Date: Fri, 04 Dec 2026 10:00:00 +0000',
    ...(options.extraHeader ? [options.extraHeader] : []),
    '',
    'Sehr geehrte Damen und Herren,',
    '',
  ].join('\r\n');
  return options.signingDomain ? dkimKey.sign(unsigned, options.signingDomain) : unsigned;
}

describe('mail authentication on the MX port', () => {
  let world: TestWorld;
  let ingest: RunningIngest;

  before(async () => {
    world = await createTestWorld();
    // sender.example: SPF for 127.0.0.1, DKIM key, DMARC reject. strict.example: SPF fails everyone, DMARC reject.
    // relaxed.example: SPF fails everyone, DMARC none.
    world.dns.set('sender.example', [{ type: 'TXT', text: 'v=spf1 ip4:127.0.0.1 -all' }]);
    world.dns.set('sel._domainkey.sender.example', [{ type: 'TXT', text: dkimKey.record }]);
    world.dns.set('_dmarc.sender.example', [{ type: 'TXT', text: 'v=DMARC1; p=reject' }]);
    world.dns.set('strict.example', [{ type: 'TXT', text: 'v=spf1 -all' }]);
    world.dns.set('_dmarc.strict.example', [{ type: 'TXT', text: 'v=DMARC1; p=reject' }]);
    world.dns.set('relaxed.example', [{ type: 'TXT', text: 'v=spf1 -all' }]);
    world.dns.set('_dmarc.relaxed.example', [{ type: 'TXT', text: 'v=DMARC1; p=none' }]);
    ({ ingest } = await world.start({ SMGW_DNS_TIMEOUT_MS: '300' }));
  });
  after(() => world.close());

  async function send(port: number, from: string, body: string) {
    const { client } = await SmtpTestClient.open(port);
    await client.command('EHLO mail.sender.example');
    const reply = await client.sendMail({ from, to: ['amt@behoerde.example'], body });
    await client.quit();
    return reply;
  }

  async function counts() {
    const { rows } = await world.db.pool.query(
      'select (select count(*) from messages)::int as messages, (select count(*) from blobs)::int as blobs',
    );
    return rows[0] as { messages: number; blobs: number };
  }

  async function accepted(reply: Awaited<ReturnType<typeof send>>): Promise<Envelope> {
    const id = assertQueued(reply.final?.text);
    const envelopes = await world.takeInboundEnvelopes();
    const envelope = envelopes.find((e) => e.id === id);
    assert.ok(envelope, `envelope ${id} queued`);
    return envelope;
  }

  it('passes SPF, DKIM and DMARC of a signed message from a permitted address and says so in its verdict', async () => {
    const reply = await send(
      ingest.inboundPort,
      'news@sender.example',
      await message('Amt <news@sender.example>', { signingDomain: 'sender.example' }),
    );
    const auth = (await accepted(reply)).verdicts.auth;
    assert.ok(auth);
    assert.equal(auth.status, 'pass');
    assert.deepEqual([auth.spf, auth.dkim, auth.dmarc], ['pass', ['pass'], ['pass']]);
    const field = String(auth.field);
    assert.match(field, /^Authentication-Results: smgw\.test;\r\n/);
    assert.match(field, /\tspf=pass [^\r]*smtp\.mailfrom=news@sender\.example/);
    assert.match(field, /\tdkim=pass [^\r]*header\.i=@sender\.example header\.s=sel/);
    assert.match(field, /\tdmarc=pass [^\r]*header\.from=sender\.example/);
  });

  it('refuses a p=reject From domain whose SPF and DKIM fail with 550 5.7.1, storing and queueing nothing', async () => {
    const before = await counts();
    // Signed, but by a domain that is not the From domain's, and sent from an address its SPF does not allow.
    const reply = await send(
      ingest.inboundPort,
      'bounce@strict.example',
      await message('Bank <service@strict.example>', { signingDomain: 'sender.example' }),
    );
    assert.equal(reply.final?.code, 550);
    assert.match(reply.final?.text ?? '', /^550 5\.7\.1 /);
    assert.deepEqual(await counts(), before);
    assert.deepEqual(await world.takeInboundEnvelopes(), []);
  });

  it('refuses a forged p=reject domain hidden beside another From address', async () => {
    const reply = await send(
      ingest.inboundPort,
      'news@sender.example',
      await message('news@sender.example, service@strict.example', { signingDomain: 'sender.example' }),
    );
    assert.equal(reply.final?.code, 550);
    assert.deepEqual(await world.takeInboundEnvelopes(), []);
  });

  it('accepts a p=none domain that fails, marked dmarc=fail', async () => {
    const reply = await send(ingest.inboundPort, 'x@relaxed.example', await message('x@relaxed.example'));
    const auth = (await accepted(reply)).verdicts.auth;
    assert.equal(auth?.status, 'fail');
    assert.deepEqual([auth?.spf, auth?.dmarc], ['fail', ['fail']]);
    assert.match(String(auth?.field), /\tdmarc=fail [^\r]*header\.from=relaxed\.example/);
  });

  it('only marks a p=reject failure with SMGW_DMARC_REJECT=false', async () => {
    const { ingest: marking } = await world.start({ SMGW_DMARC_REJECT: 'false', SMGW_DNS_TIMEOUT_MS: '300' });
    const reply = await send(marking.inboundPort, 'x@strict.example', await message('x@strict.example'));
    const auth = (await accepted(reply)).verdicts.auth;
    assert.deepEqual([auth?.status, auth?.dmarc], ['fail', ['fail']]);
  });

  it('leaves the submission port alone: no DNS question, no verdict', async () => {
    const asked = world.dns.queries.length;
    const reply = await send(ingest.submissionPort, 'amt@behoerde.example', await message('amt@behoerde.example'));
    const id = assertQueued(reply.final?.text);
    const envelopes = await world.takeEnvelopes('smgw.scan');
    assert.equal(envelopes.find((e) => e.id === id)?.verdicts.auth, undefined);
    assert.equal(world.dns.queries.length, asked);
  });

  it('asks no DNS and adds nothing with SMGW_MAIL_AUTH=off', async () => {
    const { ingest: off } = await world.start({ SMGW_MAIL_AUTH: 'off' });
    const asked = world.dns.queries.length;
    const reply = await send(off.inboundPort, 'x@strict.example', await message('x@strict.example'));
    // No auth verdict; the message is plain text, so ingest only says that for encrypt (inbound-crypto-route.ts).
    assert.deepEqual(Object.keys((await accepted(reply)).verdicts), ['crypto']);
    assert.equal(world.dns.queries.length, asked);
  });

  it('refuses a header block longer than 1 MiB (the DKIM verifier would have to hold it) with 552', async () => {
    const { ingest: roomy } = await world.start({ SMGW_MAX_MESSAGE_BYTES: String(4 * 1024 * 1024) });
    const longHeader = Array.from({ length: 20_000 }, (_, i) => `X-Filler-${i}: ${'x'.repeat(60)}`).join('\r\n');
    const reply = await send(
      roomy.inboundPort,
      'x@relaxed.example',
      await message('x@relaxed.example', { extraHeader: longHeader }),
    );
    assert.equal(reply.final?.code, 552);
    assert.deepEqual(await world.takeInboundEnvelopes(), []);
  });

  it('asks DNS once per question for mail from the same domain (SMGW_DNS_CACHE_SECONDS), every time with 0', async () => {
    world.dns.set('cached.example', [{ type: 'TXT', text: 'v=spf1 ip4:127.0.0.1 -all' }]);
    world.dns.set('_dmarc.cached.example', [{ type: 'TXT', text: 'v=DMARC1; p=none' }]);
    const asked = () => world.dns.queries.filter((q) => /cached\.example/i.test(q)).length;
    const { ingest: uncached } = await world.start({ SMGW_DNS_CACHE_SECONDS: '0' });
    for (const [running, expected] of [
      [ingest, 1],
      [uncached, 2],
    ] as const) {
      const before = asked();
      const results: string[] = [];
      for (let i = 0; i < 2; i++) {
        const reply = await send(running.inboundPort, 'x@cached.example', await message('x@cached.example'));
        const auth = (await accepted(reply)).verdicts.auth;
        results.push(`${auth?.spf} ${auth?.dmarc}`);
      }
      assert.deepEqual(results, ['pass pass', 'pass pass']);
      // SPF's TXT and DMARC's TXT: once each with the cache, for each message without it.
      assert.equal(asked() - before, 2 * expected);
    }
  });

  describe('when DNS does not answer', () => {
    before(() => {
      world.dns.silent = true;
    });
    after(() => {
      world.dns.silent = false;
    });

    it('accepts the message marked temperror (never refused by default)', async () => {
      // A domain never asked before: what DNS answered earlier is kept (SMGW_DNS_CACHE_SECONDS), a failure is not.
      const reply = await send(ingest.inboundPort, 'x@quiet.example', await message('x@quiet.example'));
      const auth = (await accepted(reply)).verdicts.auth;
      assert.deepEqual([auth?.status, auth?.spf, auth?.dmarc], ['temperror', 'temperror', ['temperror']]);
      assert.match(String(auth?.field), /\tspf=temperror[^\r]*;\r\n\tdkim=none[^\r]*;\r\n\tdmarc=temperror/);
    });

    it('answers 451 with SMGW_DNS_FAILURE=defer, storing nothing', async () => {
      const { ingest: deferring } = await world.start({ SMGW_DNS_FAILURE: 'defer', SMGW_DNS_TIMEOUT_MS: '300' });
      const before = await counts();
      const reply = await send(deferring.inboundPort, 'x@strict.example', await message('x@strict.example'));
      assert.match(reply.final?.text ?? '', /^451 4\.4\.3 /);
      assert.deepEqual(await counts(), before);
    });
  });
});
