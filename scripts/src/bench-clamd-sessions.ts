// A micro-benchmark of the clamd client alone (not a test, not part of `./smgw bench`): N scans of one size at
// concurrency C against the running clamd, one connection per scan (scanStream) against reused sessions
// (createClamdPool). Prints messages/s and CPU ms per message of this process (process.cpuUsage) and of clamd
// (utime + stime from /proc/<pid>/stat).
//   node scripts/src/bench-clamd-sessions.ts [--scans 2000] [--concurrency 8] [--size 10240] [--rounds 2]
//                                            [--url tcp://127.0.0.1:3310] [--clamd-pid PID]
// Every scan sends bytes of its own: clamd caches the hashes of clean files, and scanning the same bytes twice would
// flatter whichever side goes second. The sides alternate, `--rounds` times each, to spread the noise of a shared
// machine over both.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createClamdPool, type ScanVerdict, scanStream } from '@smgw/clamd';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const { values: args } = parseArgs({
  options: {
    scans: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '8' },
    size: { type: 'string', default: '10240' },
    rounds: { type: 'string', default: '2' },
    url: { type: 'string', default: process.env.CLAMD_URL ?? 'tcp://127.0.0.1:3310' },
    'clamd-pid': { type: 'string' },
  },
});
const SCANS = Number(args.scans);
const CONCURRENCY = Number(args.concurrency);
const SIZE = Number(args.size);
const ROUNDS = Number(args.rounds);
const url = args.url ?? 'tcp://127.0.0.1:3310';
const clamdPid = Number(args['clamd-pid'] ?? readFileSync(`${ROOT}.smgw/clamav/clamd.pid`, 'utf8').trim());
const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const LIMITS = { deadlineMs: 60_000, maxBytes: 64 * 1024 * 1024 };

/** A small text mail of `size` bytes, unique by its tag and random body. */
function messageOf(size: number, tag: string): Buffer {
  const head = Buffer.from(`From: bench@behoerde.example\r\nTo: amt@behoerde.example\r\nSubject: ${tag}\r\n\r\n`);
  const body = randomBytes(Math.ceil(size / 2))
    .toString('hex')
    .slice(0, Math.max(0, size - head.length));
  return Buffer.concat([head, Buffer.from(body)]);
}

/** clamd's CPU time so far, in milliseconds. */
function clamdCpuMs(): number {
  const stat = readFileSync(`/proc/${clamdPid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces, in parentheses): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
}

type Scan = (bytes: Buffer) => Promise<ScanVerdict>;

async function run(scan: Scan, round: number, side: string) {
  const messages = Array.from({ length: SCANS }, (_, i) => messageOf(SIZE, `${side}-${round}-${i}-${Date.now()}`));
  let next = 0;
  const cpu0 = process.cpuUsage();
  const clamd0 = clamdCpuMs();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < SCANS; i = next++) {
        const verdict = await scan(messages[i] as Buffer);
        if (verdict.kind !== 'clean') throw new Error(`scan ${i} was ${verdict.kind}`);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const ours = (cpu.user + cpu.system) / 1000;
  const clamd = clamdCpuMs() - clamd0;
  return { side, round, msgPerS: SCANS / seconds, oursMsPerMsg: ours / SCANS, clamdMsPerMsg: clamd / SCANS };
}

const oneShot: Scan = (bytes) => scanStream(Readable.from([bytes]), { url, ...LIMITS });
const pool = createClamdPool({ url, maxSessions: CONCURRENCY });
const sessions: Scan = (bytes) => pool.scanStream(() => Readable.from([bytes]), LIMITS);

// Warm-up (JIT, clamd threads), not counted.
for (const scan of [oneShot, sessions]) {
  await Promise.all(Array.from({ length: 50 }, (_, i) => scan(messageOf(SIZE, `warm-${i}-${Date.now()}`))));
}

const results = [];
for (let round = 1; round <= ROUNDS; round++) {
  results.push(await run(oneShot, round, 'connection per scan'));
  results.push(await run(sessions, round, 'reused sessions'));
}
await pool.close();

console.log(
  `${SCANS} scans of ${SIZE} bytes at concurrency ${CONCURRENCY}, clamd pid ${clamdPid}; CPU in ms per message`,
);
console.table(
  results.map((r) => ({
    side: r.side,
    round: r.round,
    'msg/s': Math.round(r.msgPerS),
    'our CPU': r.oursMsPerMsg.toFixed(3),
    'clamd CPU': r.clamdMsPerMsg.toFixed(3),
  })),
);
console.log('pool:', pool.stats());
