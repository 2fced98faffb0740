// `./smgw bench`: throughput of ingest → scan → deliver into an SMTP sink, with the gateway running as real processes.
//   --messages N (per size, default 200; 5 MB messages: N/10)   --concurrency C (default 8)
//   --sizes 10k,100k,5m   --no-smtp-source   --blobs-in files|database (default files: SMGW_BLOB_DIR of its own)
// Prints messages/s, MB/s, p50/p99 latency from the client's 250 to arrival at the sink, and peak RSS per service.
// Then measures the ingest accept rate with Postfix's smtp-source (one message per connection, and with
// connection reuse) against smtp-sink in the same run, with and without the fast greeting for trusted networks.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { parseArgs, promisify } from 'node:util';
import { freePort, type ServiceProcess, startTestGateway, waitFor } from '@smgw/testing';
import nodemailer from 'nodemailer';

const run = promisify(execFile);
const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '8' },
    sizes: { type: 'string', default: '10k,100k,5m' },
    'no-smtp-source': { type: 'boolean', default: false },
    'blobs-in': { type: 'string', default: 'files' },
  },
});
if (args['blobs-in'] !== 'files' && args['blobs-in'] !== 'database') {
  throw new Error(`--blobs-in is files or database, not ${args['blobs-in']}`);
}
const N = Number(args.messages);
const C = Number(args.concurrency);
const sizes = (args.sizes ?? '').split(',').map((s) => {
  const m = /^(\d+)(k|m)?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size ${s}`);
  return Number(m[1]) * (m[2]?.toLowerCase() === 'm' ? 1024 * 1024 : m[2] ? 1024 : 1);
});

const percentile = (sorted: number[], p: number) =>
  sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number) : Number.NaN;
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

function messageOf(size: number, seq: number, runId: string): string {
  const head = [
    'From: bench@example.org',
    'To: amt@behoerde.example',
    `Subject: bench ${seq}`,
    `Message-ID: <${runId}-${seq}@bench.test>`,
    `X-Bench: ${runId} ${seq}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    '',
  ].join('\r\n');
  const line = `${'0123456789abcdef'.repeat(4)}${'x'.repeat(10)}\r\n`; // 76 bytes per line
  const body = line.repeat(Math.max(1, Math.ceil((size - head.length) / line.length)));
  return head + body;
}

const gw = await startTestGateway({
  services: ['ingest', 'encrypt', 'scan', 'deliver'],
  blobs: args['blobs-in'] === 'database' ? 'database' : 'files',
  env: {
    SMGW_SMTP_MAX_CONNECTIONS_PER_CLIENT: '10000',
    SMGW_SMTP_COMMANDS_PER_MINUTE: '10000000',
    SMGW_LOG_LEVEL: 'warn',
  },
});
const ingest = gw.services.ingest as ServiceProcess;
const deliver = gw.services.deliver as ServiceProcess;
const rows: string[] = [];

try {
  process.stdout.write(
    `benchmark: ${N} messages per size (5 MB: ${Math.max(10, Math.floor(N / 10))}), concurrency ${C}\n`,
  );
  for (const size of sizes) {
    const count = size >= 1024 * 1024 ? Math.max(10, Math.floor(N / 10)) : N;
    const runId = `r${size}x${Date.now().toString(36)}`;
    gw.relay.messages.length = 0;
    const accepted = new Map<number, number>();
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: gw.inboundPort,
      ignoreTLS: true,
      pool: true,
      maxConnections: C,
      maxMessages: Number.POSITIVE_INFINITY,
    });
    const bodies = Array.from({ length: Math.min(count, 4) }, (_, i) => messageOf(size, i, runId));
    const start = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: C }, async () => {
        while (next < count) {
          const seq = next++;
          const raw = (bodies[seq % bodies.length] as string).replace(/X-Bench: \S+ \d+/, `X-Bench: ${runId} ${seq}`);
          await transport.sendMail({ envelope: { from: 'bench@example.org', to: ['amt@behoerde.example'] }, raw });
          accepted.set(seq, performance.now());
        }
      }),
    );
    transport.close();
    await waitFor(`${count} messages at the sink`, () => gw.relay.messages.length >= count, {
      timeoutMs: 30 * 60_000,
      intervalMs: 20,
    });
    const end = Math.max(...gw.relay.messages.map((m) => m.receivedAt));
    const latencies = gw.relay.messages
      .map((m) => {
        const seq = Number(new RegExp(`X-Bench: ${runId} (\\d+)`).exec(m.raw.subarray(0, 2000).toString())?.[1]);
        return m.receivedAt - (accepted.get(seq) ?? m.receivedAt);
      })
      .sort((a, b) => a - b);
    const seconds = (end - start) / 1000;
    const bytes = gw.relay.messages.reduce((sum, m) => sum + m.raw.length, 0);
    rows.push(
      [
        `${(size / 1024).toFixed(0).padStart(6)} KB`,
        `${String(count).padStart(5)} msgs`,
        `${(count / seconds).toFixed(1).padStart(8)} msg/s`,
        `${(bytes / 1024 / 1024 / seconds).toFixed(2).padStart(7)} MB/s`,
        `p50 ${percentile(latencies, 50).toFixed(0).padStart(5)} ms`,
        `p99 ${percentile(latencies, 99).toFixed(0).padStart(5)} ms`,
        `peak RSS ingest ${mb((await ingest.peakRssBytes()) ?? 0)} MB, deliver ${mb((await deliver.peakRssBytes()) ?? 0)} MB`,
      ].join('  '),
    );
    process.stdout.write(`${rows.at(-1)}\n`);
  }

  if (!args['no-smtp-source']) {
    process.stdout.write('\ningest accept rate with smtp-source (10 KB, 1 recipient), beside smtp-sink:\n');
    const sinkPort = await freePort();
    // smtp-sink refuses to run as root without a user to drop to.
    const asUser = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
    const sink = spawn('smtp-sink', [...asUser, '-c', `127.0.0.1:${sinkPort}`, '1000'], { stdio: 'ignore' });
    await waitFor('smtp-sink', async () => {
      const { createConnection } = await import('node:net');
      return new Promise<boolean>((resolve) => {
        const s = createConnection(sinkPort, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        }).on('error', () => resolve(false));
      });
    });
    const sourceRuns = async (label: string, port: number, reuse: boolean) => {
      const count = N * 2;
      const t0 = performance.now();
      await run(
        'smtp-source',
        [
          ...(reuse ? ['-d'] : []),
          '-s',
          String(C),
          '-m',
          String(count),
          '-l',
          '10240',
          '-f',
          'bench@example.org',
          '-t',
          'amt@behoerde.example',
          '-M',
          'bench.test',
          `127.0.0.1:${port}`,
        ],
        { timeout: 30 * 60_000 },
      );
      const rate = count / ((performance.now() - t0) / 1000);
      process.stdout.write(`  ${label.padEnd(58)} ${rate.toFixed(1).padStart(8)} msg/s\n`);
      return rate;
    };
    const sinkNew = await sourceRuns('smtp-sink, new connection per message', sinkPort, false);
    const sinkReuse = await sourceRuns('smtp-sink, connection reuse', sinkPort, true);
    const fastNew = await sourceRuns('ingest (fast greeting for trusted), new connection each', gw.inboundPort, false);
    const fastReuse = await sourceRuns('ingest, connection reuse', gw.inboundPort, true);
    await ingest.stop();
    gw.env.SMGW_SMTP_FAST_GREETING_TRUSTED = 'false'; // the services read gw.env at each start
    await ingest.start();
    process.stdout.write('  (ingest restarted with SMGW_SMTP_FAST_GREETING_TRUSTED=false)\n');
    const slowNew = await sourceRuns('ingest (100 ms early-talker pause), new connection each', gw.inboundPort, false);
    sink.kill();
    await once(sink, 'exit');
    process.stdout.write(
      [
        '',
        'ratios to smtp-sink:',
        `  new connection per message: fast greeting ${(fastNew / sinkNew).toFixed(3)}x, with the 100 ms pause ${(slowNew / sinkNew).toFixed(3)}x`,
        `  connection reuse:           ${(fastReuse / sinkReuse).toFixed(3)}x`,
        '',
      ].join('\n'),
    );
  }
} finally {
  await gw.close();
}
