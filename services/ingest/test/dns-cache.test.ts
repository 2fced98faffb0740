// The DNS answers ingest keeps for SPF, DKIM and DMARC: answers and "no such name" kept for the setting's time,
// failures never, one question on its way at a time, and every caller with its own copy.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withDnsCache } from '../src/dns-cache.ts';
import type { DnsLookup } from '../src/mail-auth.ts';

const dnsError = (code: string) => Object.assign(new Error(`query failed: ${code}`), { code });

/** A resolver that answers from `zone` (an Error: that failure) and records every question it is asked. */
function resolverOf(zone: Record<string, unknown>) {
  const asked: string[] = [];
  const lookup: DnsLookup = async (name, type) => {
    asked.push(`${type} ${name}`);
    await new Promise((resolve) => setImmediate(resolve));
    const answer = zone[`${type} ${name}`];
    if (answer instanceof Error) throw answer;
    if (answer === undefined) throw dnsError('ENOTFOUND');
    return structuredClone(answer) as never;
  };
  return { lookup, asked, zone };
}

describe('DNS cache of mail authentication', () => {
  it('asks once for the same question within the time, case-insensitively, and again after it', async () => {
    const resolver = resolverOf({ 'TXT sender.example': [['v=spf1 -all']] });
    const cached = withDnsCache(resolver.lookup, { ttlMs: 50 });
    assert.deepEqual(await cached('sender.example', 'TXT'), [['v=spf1 -all']]);
    assert.deepEqual(await cached('Sender.Example', 'TXT'), [['v=spf1 -all']]);
    assert.deepEqual(resolver.asked, ['TXT sender.example']);
    // Another type is another question.
    await assert.rejects(cached('sender.example', 'MX'), { code: 'ENOTFOUND' });
    assert.equal(resolver.asked.length, 2);
    // A changed record is seen once the time is over.
    resolver.zone['TXT sender.example'] = [['v=spf1 +all']];
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.deepEqual(await cached('sender.example', 'TXT'), [['v=spf1 +all']]);
    assert.equal(resolver.asked.length, 3);
  });

  it('keeps "no such name" and "no such record", with their codes, as answers', async () => {
    const resolver = resolverOf({ 'TXT _dmarc.nodata.example': dnsError('ENODATA') });
    const cached = withDnsCache(resolver.lookup, { ttlMs: 60_000 });
    for (let i = 0; i < 2; i++) {
      await assert.rejects(cached('_dmarc.none.example', 'TXT'), { code: 'ENOTFOUND' });
      await assert.rejects(cached('_dmarc.nodata.example', 'TXT'), { code: 'ENODATA' });
    }
    assert.equal(resolver.asked.length, 2);
  });

  it('never keeps a failure: a timeout or SERVFAIL is asked again at once', async () => {
    for (const code of ['ETIMEOUT', 'ESERVFAIL', 'ECONNREFUSED', 'ELOOKUPLIMIT']) {
      const resolver = resolverOf({ 'TXT flaky.example': dnsError(code) });
      const cached = withDnsCache(resolver.lookup, { ttlMs: 60_000 });
      await assert.rejects(cached('flaky.example', 'TXT'), { code });
      resolver.zone['TXT flaky.example'] = [['v=spf1 -all']];
      assert.deepEqual(await cached('flaky.example', 'TXT'), [['v=spf1 -all']], code);
      assert.equal(resolver.asked.length, 2, code);
    }
  });

  it('lets questions asked at the same time share one, failures included', async () => {
    const resolver = resolverOf({ 'TXT busy.example': [['a']], 'TXT down.example': dnsError('ETIMEOUT') });
    const cached = withDnsCache(resolver.lookup, { ttlMs: 60_000 });
    const answers = await Promise.all([1, 2, 3].map(() => cached('busy.example', 'TXT')));
    assert.deepEqual(answers, [[['a']], [['a']], [['a']]]);
    const failures = await Promise.allSettled([1, 2].map(() => cached('down.example', 'TXT')));
    assert.ok(failures.every((f) => f.status === 'rejected'));
    assert.deepEqual(resolver.asked, ['TXT busy.example', 'TXT down.example']);
  });

  it('gives each caller its own copy, so one message cannot change what the next is told', async () => {
    const resolver = resolverOf({ 'TXT sender.example': [['v=spf1 -all']] });
    const cached = withDnsCache(resolver.lookup, { ttlMs: 60_000 });
    const first = (await cached('sender.example', 'TXT')) as string[][];
    first[0]?.push('injected');
    assert.deepEqual(await cached('sender.example', 'TXT'), [['v=spf1 -all']]);
  });

  it('keeps at most maxEntries questions, and nothing at all with a time of 0', async () => {
    const resolver = resolverOf({});
    const cached = withDnsCache(resolver.lookup, { ttlMs: 60_000, maxEntries: 2 });
    for (const name of ['a.example', 'b.example', 'c.example', 'a.example']) {
      await assert.rejects(cached(name, 'TXT'));
    }
    assert.equal(resolver.asked.length, 4, 'a.example was dropped for c.example');
    assert.equal(withDnsCache(resolver.lookup, { ttlMs: 0 }), resolver.lookup);
  });

  it("keeps answers only up to maxBytes, and none larger than a sixteenth of it (a stranger's huge TXT records)", async () => {
    const huge = [['x'.repeat(2000)]];
    const zone: Record<string, unknown> = { 'TXT huge.example': huge };
    for (let i = 0; i < 40; i++) zone[`TXT d${i}.example`] = [['y'.repeat(500)]];
    const resolver = resolverOf(zone);
    const cached = withDnsCache(resolver.lookup, { ttlMs: 60_000, maxBytes: 16 * 1024 });
    // Over 1 KiB: answered, never kept.
    assert.deepEqual(await cached('huge.example', 'TXT'), huge);
    assert.deepEqual(await cached('huge.example', 'TXT'), huge);
    assert.equal(resolver.asked.length, 2);
    // 40 answers of about 600 bytes do not fit in 16 KiB: the first ones asked are gone, the last one is kept.
    for (let i = 0; i < 40; i++) await cached(`d${i}.example`, 'TXT');
    const before = resolver.asked.length;
    await cached('d39.example', 'TXT');
    assert.equal(resolver.asked.length, before, 'the latest is kept');
    await cached('d0.example', 'TXT');
    assert.equal(resolver.asked.length, before + 1, 'the oldest was dropped for the bytes');
  });
});
