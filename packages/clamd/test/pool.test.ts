// The clamd session pool: against the real clamd (through a TCP proxy that counts and breaks connections), and
// against a scripted clamd for every answer a session must not accept.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { freePort, waitFor } from '@smgw/testing';
import { ClamdError, type ClamdPool, createClamdPool, resolveTarget } from '../src/index.ts';
import { type FakeBehaviour, type FakeClamd, type FakeClamdRequest, startFakeClamd } from './fake-clamd.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

const REAL = resolveTarget({ url: process.env.CLAMD_URL ?? 'tcp://127.0.0.1:3310' });
// The EICAR test string, split so that this file itself is not a "virus".
const EICAR = Buffer.from(`X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-${'STANDARD-ANTIVIRUS-TEST-FILE'}!$H+H*`);
const CLEAN = Buffer.from('Guten Tag,\r\nanbei nichts.\r\n');
const LIMITS = { deadlineMs: 10_000, maxBytes: 10 * 1024 * 1024 };

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

async function proxy(): Promise<TcpProxy> {
  const p = await startTcpProxy(REAL);
  closers.push(() => p.close());
  return p;
}
async function fake(behave: (request: FakeClamdRequest) => FakeBehaviour): Promise<FakeClamd> {
  const f = await startFakeClamd(behave);
  closers.push(() => f.close());
  return f;
}
function pool(url: string, maxSessions = 4, idleCloseMs?: number): ClamdPool {
  const p = createClamdPool({ url, maxSessions, idleCloseMs });
  closers.push(() => p.close());
  return p;
}
/** A re-openable message, as scan passes it. */
const message = (bytes: Buffer) => () => Readable.from([bytes]);

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ClamdError, `expected a ClamdError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

describe('the clamd session pool against the real clamd', () => {
  it('scans one message after another on a single session, with no verdict bleeding into the next', async () => {
    const p = await proxy();
    const clamd = pool(p.url, 1);
    const sequence = [CLEAN, EICAR, CLEAN, EICAR, EICAR, CLEAN, CLEAN];
    const verdicts = [];
    for (const bytes of sequence) verdicts.push((await clamd.scanStream(message(bytes), LIMITS)).kind);
    assert.deepEqual(verdicts, ['clean', 'infected', 'clean', 'infected', 'infected', 'clean', 'clean']);
    assert.equal(p.connections(), 1);
    assert.equal(clamd.stats().reusedScans, sequence.length - 1);
  });

  it('finds EICAR on a reused session, with its signature name', async () => {
    const p = await proxy();
    const clamd = pool(p.url, 1);
    assert.deepEqual(await clamd.scanStream(message(CLEAN), LIMITS), { kind: 'clean' });
    const verdict = await clamd.scanStream(message(EICAR), LIMITS);
    assert.equal(verdict.kind, 'infected');
    assert.match((verdict as { signature: string }).signature, /Eicar/i);
    assert.equal(p.connections(), 1);
  });

  it('runs many concurrent scans on at most maxSessions connections and gives each its own verdict', async () => {
    const p = await proxy();
    const clamd = pool(p.url, 8);
    const exe = readFileSync('/usr/share/clamav-testfiles/clam.exe');
    const inputs = Array.from({ length: 60 }, (_, i) => [CLEAN, EICAR, exe, Buffer.alloc(10_000 + i, 'a')][i % 4]);
    const verdicts = await Promise.all(
      inputs.map((bytes) => clamd.scanStream(message(bytes as Buffer), { ...LIMITS, chunkBytes: 1000 })),
    );
    verdicts.forEach((verdict, i) => {
      const expected = i % 4 === 1 || i % 4 === 2 ? 'infected' : 'clean';
      assert.equal(verdict.kind, expected, `scan ${i}`);
      if (i % 4 === 2) assert.deepEqual(verdict, { kind: 'infected', signature: 'ClamAV-Test-File.UNOFFICIAL' });
    });
    assert.ok(p.connections() <= 8, `${p.connections()} connections for 60 scans`);
    assert.equal(clamd.stats().connectionsOpened, p.connections());
    assert.ok(clamd.stats().reusedScans >= 60 - 8);
  });

  it('drops a session clamd closed while it was idle, and the next scan works without an error', async () => {
    const p = await proxy();
    const clamd = pool(p.url, 2);
    await clamd.scanStream(message(CLEAN), LIMITS);
    p.closeAll();
    await waitFor('the pool to notice', () => clamd.stats().sessions === 0);
    assert.equal((await clamd.scanStream(message(EICAR), LIMITS)).kind, 'infected');
    assert.equal(p.connections(), 2);
  });

  it('repeats a scan once on a fresh connection when clamd had closed the reused session unnoticed', async () => {
    const p = await proxy();
    const clamd = pool(p.url, 1);
    await clamd.scanStream(message(CLEAN), LIMITS);
    p.staleAll();
    const verdict = await clamd.scanStream(message(EICAR), LIMITS);
    assert.equal(verdict.kind, 'infected');
    assert.equal(clamd.stats().retriedScans, 1);
    assert.equal(p.connections(), 2);
  });

  it('does not repeat a scan whose stream cannot be read again (CLAMD_CONNECTION_LOST, the stage retries)', async () => {
    const p = await proxy();
    const clamd = pool(p.url, 1);
    await clamd.scanStream(message(CLEAN), LIMITS);
    p.staleAll();
    await rejectsWith(clamd.scanStream(Readable.from([EICAR]), LIMITS), 'CLAMD_CONNECTION_LOST');
    assert.equal(clamd.stats().retriedScans, 0);
    assert.equal((await clamd.scanStream(message(EICAR), LIMITS)).kind, 'infected', 'the pool goes on');
  });

  it('fails with CLAMD_CONNECTION_LOST when the connection is cut mid-upload on a fresh session', async () => {
    const p = await proxy();
    const clamd = pool(p.url, 1);
    p.cutAfter(200_000);
    const big = () => Readable.from(Array.from({ length: 40 }, () => Buffer.alloc(64 * 1024, 'b')));
    await rejectsWith(clamd.scanStream(big, LIMITS), 'CLAMD_CONNECTION_LOST');
    assert.equal(clamd.stats().sessions, 0, 'the broken session is not kept');
  });

  it('repeats a cut upload on a reused session only once, then fails with CLAMD_CONNECTION_LOST', async () => {
    const p = await proxy();
    const clamd = pool(p.url, 1);
    await clamd.scanStream(message(CLEAN), LIMITS);
    p.cutAfter(200_000);
    const big = () => Readable.from(Array.from({ length: 40 }, () => Buffer.alloc(64 * 1024, 'b')));
    await rejectsWith(clamd.scanStream(big, LIMITS), 'CLAMD_CONNECTION_LOST');
    assert.equal(clamd.stats().retriedScans, 1);
    assert.equal(p.connections(), 2);
  });

  it('times out on a reused session that stops answering, and does not keep it', async () => {
    const p = await proxy();
    const clamd = pool(p.url, 1);
    await clamd.scanStream(message(CLEAN), LIMITS);
    // A source that never ends: clamd waits for the rest, we wait for a verdict.
    const endless = () => new Readable({ read() {} });
    await rejectsWith(clamd.scanStream(endless, { ...LIMITS, deadlineMs: 300 }), 'CLAMD_TIMEOUT');
    assert.equal(clamd.stats().reusedScans, 1);
    assert.equal(clamd.stats().sessions, 0);
    assert.equal((await clamd.scanStream(message(CLEAN), LIMITS)).kind, 'clean');
  });

  it('answers the size limit on a session with CLAMD_LIMIT_EXCEEDED and does not keep the session', async () => {
    const p = await proxy();
    const clamd = pool(p.url, 1);
    await clamd.scanStream(message(CLEAN), LIMITS);
    await rejectsWith(
      clamd.scanStream(message(Buffer.alloc(5000)), { ...LIMITS, maxBytes: 1000 }),
      'CLAMD_LIMIT_EXCEEDED',
    );
    assert.equal(clamd.stats().sessions, 0);
    assert.equal((await clamd.scanStream(message(CLEAN), LIMITS)).kind, 'clean');
    assert.equal(p.connections(), 2);
  });

  it('ends idle sessions itself after idleCloseMs (zEND), long before clamd would', async () => {
    const p = await proxy();
    const clamd = pool(p.url, 2, 100);
    await Promise.all([clamd.scanStream(message(CLEAN), LIMITS), clamd.scanStream(message(CLEAN), LIMITS)]);
    await waitFor('the idle sessions to be ended', () => clamd.stats().sessions === 0 && p.open() === 0);
    assert.equal((await clamd.scanStream(message(EICAR), LIMITS)).kind, 'infected');
  });

  it('on close lets running scans finish, then ends every session and takes no new scan', async () => {
    const p = await proxy();
    const clamd = createClamdPool({ url: p.url, maxSessions: 2 });
    const running = [CLEAN, EICAR, CLEAN].map((bytes) => clamd.scanStream(message(bytes), LIMITS));
    await clamd.close();
    assert.deepEqual(
      (await Promise.all(running)).map((v) => v.kind),
      ['clean', 'infected', 'clean'],
    );
    assert.equal(clamd.stats().sessions, 0);
    await waitFor('clamd to close the ended sessions', () => p.open() === 0);
    await rejectsWith(clamd.scanStream(message(CLEAN), LIMITS), 'CLAMD_INVALID_OPTIONS');
  });

  it('is CLAMD_UNREACHABLE when nothing listens, as the one-shot client', async () => {
    const port = await freePort();
    const clamd = pool(`tcp://127.0.0.1:${port}`, 2);
    await rejectsWith(clamd.scanStream(message(CLEAN), LIMITS), 'CLAMD_UNREACHABLE');
    assert.equal(clamd.stats().sessions, 0);
  });
});

describe('the clamd session pool against a scripted clamd', () => {
  const ok = (r: FakeClamdRequest): FakeBehaviour => ({ reply: `${r.number}: stream: OK\0` });
  /** The first request answered with `first`, every later one (on any connection) with a good OK. */
  const firstThen = (first: (r: FakeClamdRequest) => FakeBehaviour) => {
    let seen = 0;
    return (r: FakeClamdRequest) => (seen++ === 0 ? first(r) : ok(r));
  };

  it('opens a session with zIDSESSION and numbers its requests 1, 2, 3 on one connection', async () => {
    const f = await fake(ok);
    const clamd = pool(f.url, 1);
    for (let i = 0; i < 3; i++) await clamd.scanStream(message(Buffer.alloc(5000, i)), { ...LIMITS, chunkBytes: 2048 });
    assert.deepEqual(
      f.requests.map((r) => [r.command, r.number, r.connection, r.inSession]),
      [
        ['INSTREAM', 1, 1, true],
        ['INSTREAM', 2, 1, true],
        ['INSTREAM', 3, 1, true],
      ],
    );
    assert.deepEqual(f.requests[2]?.chunkLengths, [2048, 2048, 904]);
    assert.ok(f.requests[2]?.body.equals(Buffer.alloc(5000, 2)));
  });

  it('reports a FOUND reply of a session as infected, without extended detection info', async () => {
    const f = await fake((r) => ({
      reply: `${r.number}: stream: Win.Test.EICAR_HDB-1(44d88612fea8a8f36de82e1278abb02f:68) FOUND\0`,
    }));
    const clamd = pool(f.url, 1);
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(await clamd.scanStream(message(EICAR), LIMITS), {
        kind: 'infected',
        signature: 'Win.Test.EICAR_HDB-1',
      });
    }
    assert.equal(f.connections(), 1);
  });

  const notClean: [string, (r: FakeClamdRequest) => FakeBehaviour, string][] = [
    ['answers with the wrong request number', (r) => ({ reply: `${r.number + 1}: stream: OK\0` }), 'CLAMD_BAD_REPLY'],
    ['answers with request number 0', () => ({ reply: '0: stream: OK\0' }), 'CLAMD_BAD_REPLY'],
    ['answers without a request number', () => ({ reply: 'stream: OK\0' }), 'CLAMD_BAD_REPLY'],
    ['answers OK with trailing garbage', (r) => ({ reply: `${r.number}: stream: OK junk\0` }), 'CLAMD_BAD_REPLY'],
    ['sends garbage after the OK', (r) => ({ reply: `${r.number}: stream: OK\0junk` }), 'CLAMD_BAD_REPLY'],
    [
      'sends a second reply with the OK',
      (r) => ({ reply: `${r.number}: stream: OK\0${r.number + 1}: stream: OK\0` }),
      'CLAMD_BAD_REPLY',
    ],
    [
      'answers OK without the NUL and closes',
      (r) => ({ reply: `${r.number}: stream: OK`, close: true }),
      'CLAMD_BAD_REPLY',
    ],
    ['answers OK without the NUL and says no more', (r) => ({ reply: `${r.number}: stream: OK` }), 'CLAMD_TIMEOUT'],
    ['answers an endless line', () => ({ reply: Buffer.alloc(10_000, 'A') }), 'CLAMD_BAD_REPLY'],
    [
      'answers an ERROR line',
      (r) => ({ reply: `${r.number}: stream: Can not allocate memory ERROR\0` }),
      'CLAMD_SCAN_FAILED',
    ],
    [
      'answers the size limit',
      (r) => ({ reply: `${r.number}: INSTREAM size limit exceeded. ERROR\0`, close: true }),
      'CLAMD_LIMIT_EXCEEDED',
    ],
    ['answers lowercase ok', (r) => ({ reply: `${r.number}: stream: ok\0` }), 'CLAMD_BAD_REPLY'],
    ['never answers', () => ({ hang: true }), 'CLAMD_TIMEOUT'],
    ['closes without a reply', () => ({ closeWithoutReply: true }), 'CLAMD_CONNECTION_LOST'],
    ['resets the connection', () => ({ reset: true }), 'CLAMD_CONNECTION_LOST'],
  ];
  for (const [what, first, code] of notClean) {
    it(`is not clean (${code}) when clamd ${what} on a fresh session, and does not reuse that session`, async () => {
      const f = await fake(firstThen(first));
      const clamd = pool(f.url, 1);
      await rejectsWith(clamd.scanStream(message(Buffer.alloc(2000, 1)), { ...LIMITS, deadlineMs: 500 }), code);
      assert.equal(clamd.stats().sessions, 0);
      assert.deepEqual(await clamd.scanStream(message(CLEAN), LIMITS), { kind: 'clean' });
      assert.equal(f.connections(), 2, 'the next scan had a connection of its own');
    });
  }

  it('is not clean when a reused session answers with the number of an earlier request', async () => {
    const f = await fake((r) => ({ reply: `${r.number === 2 ? 1 : r.number}: stream: OK\0` }));
    const clamd = pool(f.url, 1);
    await clamd.scanStream(message(CLEAN), LIMITS);
    await rejectsWith(clamd.scanStream(message(CLEAN), LIMITS), 'CLAMD_BAD_REPLY');
    assert.equal(clamd.stats().retriedScans, 0, 'a wrong answer is never repeated');
  });

  it('is not clean when clamd answers OK before the whole stream was sent', async () => {
    const f = await fake((r) => ({ reply: `${r.number}: stream: OK\0`, early: true }));
    const clamd = pool(f.url, 1);
    const source = new Readable({ read() {} });
    source.push(Buffer.alloc(100, 1));
    await rejectsWith(
      clamd.scanStream(() => source, LIMITS),
      'CLAMD_BAD_REPLY',
    );
    assert.ok(source.destroyed, 'the source is destroyed');
  });

  it('drops an idle session on which clamd says something unasked', async () => {
    const f = await fake(ok);
    const clamd = pool(f.url, 1);
    await clamd.scanStream(message(CLEAN), LIMITS);
    assert.equal(clamd.stats().idle, 1);
    // What clamd sends when its ReadTimeout ends an idle session (before it closes it).
    for (const socket of f.sockets()) socket.write('COMMAND READ TIMED OUT\n');
    await waitFor('the pool to drop the session', () => clamd.stats().sessions === 0);
    assert.deepEqual(await clamd.scanStream(message(CLEAN), LIMITS), { kind: 'clean' });
    assert.equal(f.connections(), 2);
  });

  it('lets a scan wait for a free session, within its deadline', async () => {
    const f = await fake((r) => (r.number === 1 && r.connection === 1 ? { hang: true } : ok(r)));
    const clamd = pool(f.url, 1);
    const hanging = clamd.scanStream(message(CLEAN), { ...LIMITS, deadlineMs: 2000 });
    // No session free for this one within its deadline.
    await rejectsWith(clamd.scanStream(message(CLEAN), { ...LIMITS, deadlineMs: 100 }), 'CLAMD_TIMEOUT');
    assert.equal(clamd.stats().waiting, 0);
    // This one waits until the first times out and its session is destroyed, then gets a fresh one.
    const waiting = clamd.scanStream(message(CLEAN), { ...LIMITS, deadlineMs: 10_000 });
    await rejectsWith(hanging, 'CLAMD_TIMEOUT');
    assert.deepEqual(await waiting, { kind: 'clean' });
    assert.equal(f.connections(), 2);
  });

  it('ends a session that has grown older than maxSessionAgeMs instead of keeping it', async () => {
    const f = await fake(ok);
    let clock = 0;
    const clamd = createClamdPool({ url: f.url, maxSessions: 1, maxSessionAgeMs: 60_000, now: () => clock });
    closers.push(() => clamd.close());
    await clamd.scanStream(message(CLEAN), LIMITS);
    clock = 59_999;
    await clamd.scanStream(message(CLEAN), LIMITS);
    assert.equal(f.connections(), 1, 'young enough: reused');
    clock = 60_000;
    await clamd.scanStream(message(CLEAN), LIMITS);
    assert.equal(clamd.stats().sessions, 0, 'ended when it came back');
    await waitFor('clamd to get zEND', () => f.ends() === 1);
    await clamd.scanStream(message(CLEAN), LIMITS);
    assert.equal(f.connections(), 2);
  });

  it('passes CLAMD_SOURCE_FAILED through and does not keep the session', async () => {
    const f = await fake(ok);
    const clamd = pool(f.url, 1);
    await clamd.scanStream(message(CLEAN), LIMITS);
    const failing = () =>
      new Readable({
        read() {
          this.destroy(new Error('disk on fire'));
        },
      });
    await rejectsWith(clamd.scanStream(failing, LIMITS), 'CLAMD_SOURCE_FAILED');
    assert.equal(clamd.stats().sessions, 0);
    assert.equal(clamd.stats().retriedScans, 0);
  });

  it('refuses options that cannot work', () => {
    assert.throws(() => createClamdPool({ url: 'http://x:1', maxSessions: 1 }), ClamdError);
    assert.throws(() => createClamdPool({ url: 'tcp://127.0.0.1:1', maxSessions: 0 }), ClamdError);
    assert.throws(() => createClamdPool({ url: 'tcp://127.0.0.1:1', maxSessions: 1, idleCloseMs: 0 }), ClamdError);
    assert.throws(() => createClamdPool({ url: 'tcp://127.0.0.1:1', maxSessions: 1, maxSessionAgeMs: -1 }), ClamdError);
  });
});
