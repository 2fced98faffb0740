// `./smgw bench scan`: messages/s of the scan stage (the real service as a process, the shared clamd), for 10 KB
// and 1 MB messages, and the same for `clamdscan --stream` on files of the same generator in the same run.
//   --messages N (per size, default 200; 1 MB: N/4)   --concurrency C (scan prefetch and parallel clamdscan, default 8)
//   --sizes 10k,1m
// Each side scans its own copies (same sizes and structure, distinct unique headers): clamd caches the hashes of
// clean files, so scanning identical bytes twice would flatter whichever side goes second.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { type Envelope, newEnvelope, newMessageId } from '@smgw/envelope';
import { connectMq } from '@smgw/mq';
import { createLogger } from '@smgw/observability';
import { type ServiceProcess, startTestGateway, waitFor } from '@smgw/testing';
import { countMessagesWithEvent, recordMessage } from '@smgw/trace';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);
const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '8' },
    sizes: { type: 'string', default: '10k,1m' },
  },
});
const N = Number(args.messages);
const C = Number(args.concurrency);
const sizes = (args.sizes ?? '').split(',').map((s) => {
  const m = /^(\d+)(k|m)?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size ${s}`);
  return Number(m[1]) * (m[2]?.toLowerCase() === 'm' ? 1024 * 1024 : m[2] ? 1024 : 1);
});
const clamdConf = join(ROOT, '.smgw/clamav/clamd.conf');
const log = createLogger('bench-scan', 'warn');

/** A mail with a text part and a base64 attachment, `size` bytes in all; `tag` makes its bytes unique. */
function messageOf(size: number, tag: string): Buffer {
  const head = [
    'From: bench@behoerde.example',
    'To: amt@behoerde.example',
    `Subject: scan bench ${tag}`,
    `Message-ID: <${tag}@bench.test>`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="bench"',
    '',
    '--bench',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Anbei die Unterlagen ${tag}.`,
    '--bench',
    'Content-Type: application/octet-stream; name="akte.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    '',
  ].join('\r\n');
  const tail = '\r\n--bench--\r\n';
  const rawBytes = Math.max(1, Math.floor(((size - head.length - tail.length) * 3) / 4 / 1.027));
  const payload = Buffer.alloc(rawBytes);
  for (let i = 0; i < rawBytes; i++) payload[i] = (i * 31 + tag.length * 7 + tag.charCodeAt(i % tag.length)) & 0xff;
  const b64 = payload.toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(head + b64 + tail);
}

const gw = await startTestGateway({
  services: ['scan'],
  env: { SMGW_LOG_LEVEL: 'warn', SMGW_PREFETCH: String(C) },
});
const scan = gw.services.scan as ServiceProcess;
const blobStore = createBlobStore(gw.db.pool, { keyStore: createFolderKeyStore(gw.keys), directory: gw.blobDir });
const publisher = await connectMq({ url: gw.vhost.url, logger: log, connectionName: 'bench-scan' });
const rows: string[] = [];
const dir = mkdtempSync(join(tmpdir(), 'smgw-bench-scan-'));

try {
  process.stdout.write(
    `scan benchmark: ${N} messages per size (1 MB: ${Math.max(20, Math.floor(N / 4))}), concurrency ${C}\n`,
  );
  for (const size of sizes) {
    const count = size >= 1024 * 1024 ? Math.max(20, Math.floor(N / 4)) : N;
    const runId = `s${size}x${Date.now().toString(36)}`;

    // The service: blobs stored and recorded first, then all envelopes published; the clock runs until every one
    // has its message.scanned event.
    const envelopes: Envelope[] = [];
    for (let i = 0; i < count; i++) {
      const id = newMessageId();
      const blob = await blobStore.put(
        (async function* () {
          yield messageOf(size, `${runId}-svc-${i}`);
        })(),
        { messageId: id },
      );
      const envelope = newEnvelope({
        id,
        direction: 'internal',
        mailFrom: 'bench@behoerde.example',
        recipients: ['amt@behoerde.example'],
        client: { listener: 'submission', ip: '127.0.0.1', helo: 'bench', tls: false },
        blob,
      });
      await recordMessage(gw.db.pool, envelope);
      envelopes.push(envelope);
    }
    const ids = envelopes.map((e) => e.id);
    const scanned = () => countMessagesWithEvent(gw.db.pool, ids, { stage: 'scan', event: 'message.scanned' });
    const start = performance.now();
    await Promise.all(envelopes.map((e) => publisher.publish(e)));
    await waitFor(`${count} scanned`, async () => (await scanned()) >= count, { timeoutMs: 600_000, intervalMs: 10 });
    const serviceSeconds = (performance.now() - start) / 1000;

    // clamdscan --stream: C processes in parallel, each over its share of the files.
    const files: string[] = [];
    for (let i = 0; i < count; i++) {
      const file = join(dir, `${runId}-cli-${i}.eml`);
      writeFileSync(file, messageOf(size, `${runId}-cli-${i}`));
      files.push(file);
    }
    const shares = Array.from({ length: C }, (_, k) => files.filter((_, i) => i % C === k)).filter((s) => s.length);
    const cliStart = performance.now();
    await Promise.all(
      shares.map((share) =>
        run('clamdscan', ['--stream', '--no-summary', '-c', clamdConf, ...share], { maxBuffer: 1 << 24 }),
      ),
    );
    const cliSeconds = (performance.now() - cliStart) / 1000;

    const label = size >= 1024 * 1024 ? `${size / 1024 / 1024} MB` : `${size / 1024} KB`;
    const svc = count / serviceSeconds;
    const cli = count / cliSeconds;
    rows.push(
      `${label.padEnd(6)} ${String(count).padStart(5)} msgs  scan service ${svc.toFixed(1).padStart(7)} msg/s` +
        `  clamdscan --stream ${cli.toFixed(1).padStart(7)} msg/s  ratio ${(svc / cli).toFixed(2)}`,
    );
    process.stdout.write(`${rows.at(-1)}\n`);
  }
  process.stdout.write(`peak RSS scan ${(((await scan.peakRssBytes()) ?? 0) / 1024 / 1024).toFixed(1)} MB\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
  await publisher.close();
  await gw.close();
}
