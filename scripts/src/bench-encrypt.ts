// `node scripts/src/bench-encrypt.ts`: S/MIME encrypt throughput (AES-256-CBC + RSA-3072, PKCS#1 v1.5) for 10 KB,
// 100 KB and 5 MB messages, with two ratios from the same run:
//   to the limit: the same AES-256-CBC over the same bytes plus one RSA-3072 publicEncrypt, directly with node:crypto
//   to the peer:  `openssl cms -encrypt -aes256 -recip cert.pem` as a process on the same file
// plus the "straightforward pkijs" way (EnvelopedData.encrypt over the whole buffer, OAEP) as the before figure, and
// memory per message in flight with 20 × 5 MB messages encrypted at once.
//   --sizes 10k,100k,5m   --scale 1 (multiplies the message counts)
import { execFile } from 'node:child_process';
import { constants, createCipheriv, publicEncrypt, randomBytes, X509Certificate } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { parseArgs, promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { encryptEnveloped } from '@smgw/crypto';
import { encryptWithPkijs, parsePkijsCertificate } from '../../packages/crypto/test/smime-pkijs-baseline.ts';

const run = promisify(execFile);
const { values: args } = parseArgs({
  options: { sizes: { type: 'string', default: '10k,100k,5m' }, scale: { type: 'string', default: '1' } },
});
const scale = Number(args.scale);
const sizes = (args.sizes ?? '').split(',').map((s) => {
  const m = /^(\d+)(k|m)?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size ${s}`);
  return Number(m[1]) * (m[2]?.toLowerCase() === 'm' ? 1024 * 1024 : m[2] ? 1024 : 1);
});

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const label = (bytes: number) => (bytes >= 1024 * 1024 ? `${bytes / 1024 / 1024} MB` : `${bytes / 1024} KB`);
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

function messageOf(size: number): Buffer {
  const head = 'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n';
  const lines: string[] = [];
  let length = head.length;
  while (length < size) {
    const line = randomBytes(57).toString('base64');
    lines.push(line);
    length += line.length + 2;
  }
  return Buffer.from(`${head}${lines.join('\r\n')}\r\n`).subarray(0, size);
}

/** Messages per second of `once` over `count` sequential runs. */
async function rate(count: number, once: () => Promise<unknown> | unknown): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await once();
  return count / (Number(process.hrtime.bigint() - start) / 1e9);
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)] as number;
};

/**
 * Rates of several variants measured in interleaved rounds (the machine is shared: load varies over the run),
 * after a warm-up. Returns the median rate of each and the median of the per-round ratios of the first to the others.
 */
async function interleaved(
  rounds: number,
  variants: ReadonlyArray<{ count: number; once: () => Promise<unknown> | unknown }>,
): Promise<{ rates: number[]; ratios: number[] }> {
  for (const { count, once } of variants) for (let i = 0; i < Math.min(5, count); i++) await once();
  const perRound: number[][] = variants.map(() => []);
  for (let round = 0; round < rounds; round++) {
    // No forced GC between rounds: it shrinks the young generation and would charge a steady-state service for
    // a cold heap.
    for (const [index, { count, once }] of variants.entries()) {
      perRound[index]?.push(await rate(count, once));
    }
  }
  const first = perRound[0] ?? [];
  return {
    rates: perRound.map(median),
    ratios: perRound.map((rates) => median(rates.map((r, round) => (first[round] as number) / r))),
  };
}

async function drain(stream: Readable): Promise<number> {
  let bytes = 0;
  for await (const chunk of stream) bytes += (chunk as Buffer).length;
  return bytes;
}

/**
 * Peak memory above the idle baseline while `work` runs, sampled every 10 ms: heap + external as found (garbage
 * included), live (heap + external after a forced GC: what messages in flight actually hold), and rss.
 */
async function peakMemory(work: () => Promise<unknown>): Promise<{ found: number; live: number; rss: number }> {
  // Settle first: the backing stores of earlier big buffers are freed a little after the GC that finds them.
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const base = process.memoryUsage();
  const peak = { found: 0, live: 0, rss: 0 };
  const above = (m: NodeJS.MemoryUsage) => m.heapUsed + m.external - base.heapUsed - base.external;
  const sample = () => {
    const found = process.memoryUsage();
    peak.found = Math.max(peak.found, above(found));
    peak.rss = Math.max(peak.rss, found.rss - base.rss);
    gc();
    peak.live = Math.max(peak.live, above(process.memoryUsage()));
  };
  const timer = setInterval(sample, 10);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return peak;
}

const dir = await mkdtemp(join(tmpdir(), 'smgw-bench-encrypt-'));
try {
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:3072',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-subj',
    '/CN=bench',
    '-days',
    '1',
  ]);
  const certificatePem = await readFile(certPath, 'utf8');
  const x509 = new X509Certificate(certificatePem);
  const publicKey = x509.publicKey;
  const pkijsCertificate = parsePkijsCertificate(x509.raw);
  const recipients = [{ certificate: certificatePem }];
  const headers = { From: 'bench@amt.example', To: 'peer@extern.example', Subject: 'bench' };

  console.log(`S/MIME encrypt, AES-256-CBC + RSA-3072, one message at a time on one core (Node ${process.version})`);
  console.log('size     | smgw msg/s | limit msg/s | ×limit | openssl msg/s | ×openssl | pkijs msg/s | pkijs ×limit');
  for (const size of sizes) {
    const message = messageOf(size);
    const path = join(dir, `message-${size}.eml`);
    await writeFile(path, message);
    // Messages per round: about 50-100 ms of work per variant, so that the load of the shared machine changes little within a round.
    const perRound = Math.max(3, Math.round((size >= 1024 * 1024 ? 6 : size >= 100 * 1024 ? 150 : 400) * scale));

    // The limit: the same AES-256-CBC over the same bytes and one RSA-3072 encryption, directly, no CMS around it.
    const limitOnce = () => {
      const cipher = createCipheriv('aes-256-cbc', randomBytes(32), randomBytes(16));
      cipher.update(message);
      cipher.final();
      publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, randomBytes(32));
    };
    const rounds = 15;
    const {
      rates: [smgw = 0, limit = 0],
      ratios: [, smgwToLimit = 0],
    } = await interleaved(rounds, [
      { count: perRound, once: () => drain(encryptEnveloped({ content: message, recipients, headers })) },
      { count: perRound, once: limitOnce },
    ]);
    // The before figure, measured apart: its garbage (whole-message copies) would slow down the rounds above.
    const {
      rates: [pkijs = 0],
      ratios: [, pkijsToLimit = 0],
    } = await interleaved(5, [
      { count: Math.max(2, Math.round(perRound / 4)), once: () => encryptWithPkijs(pkijsCertificate, message) },
      { count: perRound, once: limitOnce },
    ]);
    const peerCount = Math.max(5, Math.round((size >= 1024 * 1024 ? 20 : 100) * scale));
    const openssl = await rate(peerCount, () =>
      run('openssl', ['cms', '-encrypt', '-aes256', '-recip', certPath, '-in', path, '-out', '/dev/null']),
    );
    console.log(
      [
        label(size).padEnd(8),
        smgw.toFixed(0).padStart(10),
        limit.toFixed(0).padStart(11),
        smgwToLimit.toFixed(2).padStart(6),
        openssl.toFixed(0).padStart(13),
        (smgw / openssl).toFixed(1).padStart(8),
        pkijs.toFixed(0).padStart(11),
        pkijsToLimit.toFixed(2).padStart(12),
      ].join(' | '),
    );
  }

  const inFlight = 20;
  const bigSize = 5 * 1024 * 1024;
  const bigPath = join(dir, 'message-big.eml');
  await writeFile(bigPath, messageOf(bigSize));
  const streamed = await peakMemory(() =>
    Promise.all(
      Array.from({ length: inFlight }, () =>
        drain(encryptEnveloped({ content: createReadStream(bigPath), recipients, headers })),
      ),
    ),
  );
  const whole = await peakMemory(() =>
    Promise.all(
      Array.from({ length: inFlight }, async () => encryptWithPkijs(pkijsCertificate, await readFile(bigPath))),
    ),
  );
  console.log(`\nMemory with ${inFlight} × ${label(bigSize)} in flight (peak above idle, per message in flight):`);
  console.log(
    `  smgw streaming:     live ${mb(streamed.live / inFlight)} MB, with garbage ${mb(streamed.found / inFlight)} MB, rss ${mb(streamed.rss / inFlight)} MB`,
  );
  console.log(
    `  pkijs whole buffer: live ${mb(whole.live / inFlight)} MB, with garbage ${mb(whole.found / inFlight)} MB, rss ${mb(whole.rss / inFlight)} MB`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
