// `./smgw bench`: throughput of ingest → scan → deliver into an SMTP sink, with the gateway running as real processes.
//   --messages N (per size, default 200; 5 MB messages: N/10)   --concurrency C (default 8)
//   --sizes 10k,100k,5m   --no-smtp-source   --blobs-in files|database (default files: SMGW_BLOB_DIR of its own)
// Prints messages/s, MB/s, p50/p99 latency from the client's 250 to arrival at the sink, and per stage the memory
// a message in flight costs: each size runs twice, at a quarter of the concurrency and at all of it, each time on
// freshly started services warmed up with a few 10 KB messages; the peak RSS (VmHWM, reset through
// /proc/<pid>/clear_refs when allowed) above the RSS before the load is printed for both, and their difference
// divided by the difference in messages in flight.
// Then measures the ingest accept rate with Postfix's smtp-source (one message per connection, and with
// connection reuse) against smtp-sink in the same run, with and without the fast greeting for trusted networks.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
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
    // The load comes from one trusted client address: the hourly submission limits are not what is measured.
    SMGW_SUBMISSION_NETWORK_MESSAGES_PER_HOUR: '1000000000',
    SMGW_SUBMISSION_NETWORK_RECIPIENTS_PER_HOUR: '1000000000',
    SMGW_SUBMISSION_NETWORK_BYTES_PER_HOUR: '1000000000000000',
    SMGW_LOG_LEVEL: 'warn',
  },
});
const ingest = gw.services.ingest as ServiceProcess;
// The stages a plain inbound message passes (it skips encrypt): the ones whose memory per message is printed.
const measured = ['ingest', 'scan', 'deliver'].map((name) => gw.services[name] as ServiceProcess);
const rows: string[] = [];

async function procStatus(service: ServiceProcess, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${service.child?.pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN) * 1024;
}

/** Starts the peak RSS afresh (Linux: 5 > clear_refs); false where the kernel or our rights do not allow it. */
async function resetPeak(service: ServiceProcess): Promise<boolean> {
  return writeFile(`/proc/${service.child?.pid}/clear_refs`, '5').then(
    () => true,
    () => false,
  );
}

/** Sends `count` messages of `size` with `concurrency` connections; resolves with each sequence number's 250 time. */
async function send(size: number, count: number, concurrency: number, runId: string): Promise<Map<number, number>> {
  const accepted = new Map<number, number>();
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: gw.inboundPort,
    ignoreTLS: true,
    pool: true,
    maxConnections: concurrency,
    maxMessages: Number.POSITIVE_INFINITY,
  });
  const bodies = Array.from({ length: Math.min(count, 4) }, (_, i) => messageOf(size, i, runId));
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const seq = next++;
        const raw = (bodies[seq % bodies.length] as string).replace(/X-Bench: \S+ \d+/, `X-Bench: ${runId} ${seq}`);
        await transport.sendMail({ envelope: { from: 'bench@example.org', to: ['amt@behoerde.example'] }, raw });
        accepted.set(seq, performance.now());
      }
    }),
  );
  transport.close();
  return accepted;
}

/** Fails with what the services wrote last (warnings and errors: SMGW_LOG_LEVEL=warn), to tell why mail stopped. */
function withServiceOutput(err: unknown): never {
  const output = Object.values(gw.services)
    .map((service) => `--- ${service.name}\n${service.output.join('').slice(-4000)}`)
    .join('\n');
  throw new Error(`${(err as Error).message}\n${output}`);
}

/** One size at one concurrency on freshly started stages: throughput, latency, and each stage's peak RSS growth. */
async function runSize(size: number, count: number, concurrency: number, fresh: boolean) {
  // Fresh processes, so that no run inherits the heap another one grew; then a few small messages, so that pools,
  // connections and compiled code are there before the baseline is read.
  if (fresh) {
    for (const service of measured) {
      await service.stop();
      await service.start();
    }
  }
  gw.relay.messages.length = 0;
  await send(10 * 1024, 2 * concurrency, concurrency, `w${size}x${Date.now().toString(36)}`);
  await waitFor('the warm-up at the sink', () => gw.relay.messages.length >= 2 * concurrency, {
    timeoutMs: 300_000,
  }).catch(withServiceOutput);
  gw.relay.messages.length = 0;
  const baseline = new Map<ServiceProcess, number>();
  let peakReset = true;
  for (const service of measured) {
    if (!(await resetPeak(service))) peakReset = false;
    baseline.set(service, await procStatus(service, 'VmRSS'));
  }
  const runId = `r${size}x${Date.now().toString(36)}`;
  const start = performance.now();
  const accepted = await send(size, count, concurrency, runId);
  await waitFor(`${count} messages at the sink`, () => gw.relay.messages.length >= count, {
    timeoutMs: 30 * 60_000,
    intervalMs: 20,
  }).catch(withServiceOutput);
  const end = Math.max(...gw.relay.messages.map((m) => m.receivedAt));
  const latencies = gw.relay.messages
    .map((m) => {
      const seq = Number(new RegExp(`X-Bench: ${runId} (\\d+)`).exec(m.raw.subarray(0, 2000).toString())?.[1]);
      return m.receivedAt - (accepted.get(seq) ?? m.receivedAt);
    })
    .sort((a, b) => a - b);
  const growth = new Map<string, number>();
  for (const service of measured) {
    growth.set(service.name, Math.max(0, (await procStatus(service, 'VmHWM')) - (baseline.get(service) ?? 0)));
  }
  return {
    seconds: (end - start) / 1000,
    bytes: gw.relay.messages.reduce((sum, m) => sum + m.raw.length, 0),
    latencies,
    growth,
    peakReset,
  };
}

try {
  // Memory per message in flight: the peak RSS growth of each stage at `C` and at a quarter of it, the difference
  // divided by the difference in messages in flight. A stage's growth alone is mostly the garbage its collector
  // lets pile up before it runs (about the same at any concurrency), not what the messages hold.
  const fewer = Math.max(1, Math.floor(C / 4));
  process.stdout.write(
    `benchmark: ${N} messages per size (5 MB: ${Math.max(10, Math.floor(N / 10))}), concurrency ${C}; memory: peak ` +
      `RSS growth per stage at concurrency ${fewer} and ${C}, and per message in flight the difference / ${C - fewer}\n`,
  );
  let peakResettable = true;
  for (const [index, size] of sizes.entries()) {
    const count = size >= 1024 * 1024 ? Math.max(10, Math.floor(N / 10)) : N;
    const few = await runSize(size, count, fewer, index > 0);
    const many = await runSize(size, count, C, true);
    peakResettable &&= few.peakReset && many.peakReset;
    rows.push(
      [
        `${(size / 1024).toFixed(0).padStart(6)} KB`,
        `${String(count).padStart(5)} msgs`,
        `${(count / many.seconds).toFixed(1).padStart(8)} msg/s`,
        `${(many.bytes / 1024 / 1024 / many.seconds).toFixed(2).padStart(7)} MB/s`,
        `p50 ${percentile(many.latencies, 50).toFixed(0).padStart(5)} ms`,
        `p99 ${percentile(many.latencies, 99).toFixed(0).padStart(5)} ms`,
        `RSS growth ${fewer}/${C} in flight, per message: ${measured
          .map(({ name }) => {
            const low = few.growth.get(name) ?? 0;
            const high = many.growth.get(name) ?? 0;
            const perMessage = C > fewer ? mb(Math.max(0, high - low) / (C - fewer)) : 'n/a';
            return `${name} ${mb(low)}/${mb(high)} MB, ${perMessage}`;
          })
          .join('; ')}`,
      ].join('  '),
    );
    process.stdout.write(`${rows.at(-1)}\n`);
  }
  if (!peakResettable) {
    process.stdout.write('(the peak RSS could not be reset here: each figure is the peak since the service started)\n');
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
