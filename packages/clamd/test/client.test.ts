import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { freePort } from '@smgw/testing';
import { ClamdError, ping, scanStream, version } from '../src/index.ts';
import { type FakeBehaviour, type FakeClamd, type FakeClamdRequest, startFakeClamd } from './fake-clamd.ts';

const REAL = { url: process.env.CLAMD_URL ?? 'tcp://127.0.0.1:3310' };
// The EICAR test string, split so that this file itself is not a "virus".
const EICAR = `X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-${'STANDARD-ANTIVIRUS-TEST-FILE'}!$H+H*`;
const LIMITS = { deadlineMs: 5000, maxBytes: 10 * 1024 * 1024 };

const fakes: FakeClamd[] = [];
async function fake(behave: (request: FakeClamdRequest) => FakeBehaviour): Promise<FakeClamd> {
  const f = await startFakeClamd(behave);
  fakes.push(f);
  return f;
}
after(async () => {
  await Promise.all(fakes.map((f) => f.close()));
});

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ClamdError, `expected a ClamdError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

describe('scanStream against a scripted clamd', () => {
  it('sends zINSTREAM, length-prefixed chunks of at most chunkBytes and a zero terminator', async () => {
    const f = await fake(() => ({ reply: 'stream: OK\0' }));
    const body = Buffer.alloc(10_000, 7);
    const verdict = await scanStream(Readable.from([body]), { url: f.url, ...LIMITS, chunkBytes: 4096 });
    assert.deepEqual(verdict, { kind: 'clean' });
    assert.equal(f.requests[0]?.command, 'INSTREAM');
    assert.deepEqual(f.requests[0]?.chunkLengths, [4096, 4096, 1808]);
    assert.ok(f.requests[0]?.body.equals(body));
  });

  it('reports a FOUND reply as infected with the signature name, without extended detection info', async () => {
    const f = await fake(() => ({
      reply: 'stream: Win.Test.EICAR_HDB-1(44d88612fea8a8f36de82e1278abb02f:68) FOUND\0',
    }));
    const verdict = await scanStream(Readable.from(['x']), { url: f.url, ...LIMITS });
    assert.deepEqual(verdict, { kind: 'infected', signature: 'Win.Test.EICAR_HDB-1' });
  });

  const notClean: [string, FakeBehaviour, string][] = [
    ['answers the size limit error', { reply: 'INSTREAM size limit exceeded. ERROR\0' }, 'CLAMD_LIMIT_EXCEEDED'],
    [
      'answers the size limit error before the upload is done',
      { reply: 'INSTREAM size limit exceeded. ERROR\0', early: true },
      'CLAMD_LIMIT_EXCEEDED',
    ],
    ['answers an ERROR line', { reply: 'stream: Can not allocate memory ERROR\0' }, 'CLAMD_SCAN_FAILED'],
    ['answers garbage containing OK', { reply: 'stream: OKAY\0' }, 'CLAMD_BAD_REPLY'],
    ['answers OK for another stream', { reply: 'stream: OK FOUND OK\0' }, 'CLAMD_BAD_REPLY'],
    ['answers lowercase ok', { reply: 'stream: ok\0' }, 'CLAMD_BAD_REPLY'],
    ['answers OK without the NUL (truncated)', { reply: 'stream: OK' }, 'CLAMD_BAD_REPLY'],
    ['answers an empty FOUND', { reply: 'stream:  FOUND\0' }, 'CLAMD_BAD_REPLY'],
    ['answers an endless line', { reply: Buffer.alloc(10_000, 'A') }, 'CLAMD_BAD_REPLY'],
    ['closes without a reply', { closeWithoutReply: true }, 'CLAMD_CONNECTION_LOST'],
    ['resets the connection', { reset: true }, 'CLAMD_CONNECTION_LOST'],
  ];
  for (const [what, behaviour, code] of notClean) {
    it(`is not clean (${code}) when clamd ${what}`, async () => {
      const f = await fake(() => behaviour);
      await rejectsWith(scanStream(Readable.from([Buffer.alloc(2000, 1)]), { url: f.url, ...LIMITS }), code);
    });
  }

  it('is not clean when a peer answers OK before the whole stream was sent (clamd answers only after the end)', async () => {
    const f = await fake(() => ({ reply: 'stream: OK\0', early: true }));
    // A source that never ends: the answer can only have come early.
    const source = new Readable({ read() {} });
    source.push(Buffer.alloc(100, 1));
    await rejectsWith(scanStream(source, { url: f.url, ...LIMITS }), 'CLAMD_BAD_REPLY');
    assert.ok(source.destroyed, 'the source is destroyed');
  });

  it('times out (and destroys the socket) when clamd never answers', async () => {
    const f = await fake(() => ({ hang: true }));
    await rejectsWith(scanStream(Readable.from(['x']), { url: f.url, ...LIMITS, deadlineMs: 300 }), 'CLAMD_TIMEOUT');
  });

  it('times out during an upload that clamd stops reading, instead of buffering it all in memory', async () => {
    const f = await fake(() => ({ stopReading: true }));
    let produced = 0;
    const source = new Readable({
      read() {
        produced += 64 * 1024;
        this.push(Buffer.alloc(64 * 1024));
      },
    });
    await rejectsWith(scanStream(source, { url: f.url, deadlineMs: 500, maxBytes: 2 ** 31 }), 'CLAMD_TIMEOUT');
    // Backpressure: the kernel buffers plus a few chunks, not an unbounded amount.
    assert.ok(produced < 64 * 1024 * 1024, `read ${produced} bytes while clamd read nothing`);
    assert.ok(source.destroyed, 'the source is destroyed');
  });

  it('refuses a stream longer than maxBytes without waiting for clamd', async () => {
    const f = await fake(() => ({ reply: 'stream: OK\0' }));
    await rejectsWith(
      scanStream(Readable.from([Buffer.alloc(1000), Buffer.alloc(1000)]), { url: f.url, ...LIMITS, maxBytes: 1500 }),
      'CLAMD_LIMIT_EXCEEDED',
    );
  });

  it('fails with CLAMD_SOURCE_FAILED when the source errors', async () => {
    const f = await fake(() => ({ reply: 'stream: OK\0' }));
    const source = new Readable({
      read() {
        this.destroy(new Error('disk on fire'));
      },
    });
    await rejectsWith(scanStream(source, { url: f.url, ...LIMITS }), 'CLAMD_SOURCE_FAILED');
  });

  it('is unreachable when nothing listens', async () => {
    const port = await freePort();
    await rejectsWith(scanStream(Readable.from(['x']), { host: '127.0.0.1', port, ...LIMITS }), 'CLAMD_UNREACHABLE');
    await rejectsWith(ping({ host: '127.0.0.1', port }), 'CLAMD_UNREACHABLE');
  });

  it('rejects a URL that is not tcp://host:port', async () => {
    await rejectsWith(scanStream(Readable.from(['x']), { url: 'http://x:1', ...LIMITS }), 'CLAMD_INVALID_OPTIONS');
  });

  it('accepts PING only when the answer is PONG', async () => {
    const good = await fake(() => ({ reply: 'PONG\0' }));
    await ping({ url: good.url });
    assert.equal(good.requests[0]?.command, 'PING');
    const bad = await fake(() => ({ reply: 'PANG\0' }));
    await rejectsWith(ping({ url: bad.url }), 'CLAMD_BAD_REPLY');
  });
});

describe('scanStream against the real clamd', () => {
  it('answers PING and VERSION', async () => {
    await ping(REAL);
    assert.match(await version(REAL), /^ClamAV \d/);
  });

  it('finds EICAR', async () => {
    const verdict = await scanStream(Readable.from([Buffer.from(EICAR)]), { ...REAL, ...LIMITS });
    assert.equal(verdict.kind, 'infected');
    assert.match((verdict as { signature: string }).signature, /Eicar/i);
  });

  it('finds clam.exe split over many small chunks', async () => {
    const exe = readFileSync('/usr/share/clamav-testfiles/clam.exe');
    const verdict = await scanStream(Readable.from([exe]), { ...REAL, ...LIMITS, chunkBytes: 7 });
    assert.deepEqual(verdict, { kind: 'infected', signature: 'ClamAV-Test-File.UNOFFICIAL' });
  });

  it('calls harmless text clean', async () => {
    const verdict = await scanStream(Readable.from([Buffer.from('Guten Tag,\r\nanbei nichts.\r\n')]), {
      ...REAL,
      ...LIMITS,
    });
    assert.deepEqual(verdict, { kind: 'clean' });
  });

  it('reports a nesting beyond MaxRecursion as a Heuristics.Limits.Exceeded finding, never as OK', async () => {
    const file = readFileSync('/usr/share/clamav-testfiles/clam_cache_emax.tgz');
    const verdict = await scanStream(Readable.from([file]), { ...REAL, ...LIMITS });
    assert.equal(verdict.kind, 'infected');
    assert.match((verdict as { signature: string }).signature, /^Heuristics\.Limits\.Exceeded\./);
  });
});
