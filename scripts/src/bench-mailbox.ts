// `./smgw bench mailbox`: messages/s of the mailbox stage (the real service as a process; deliver takes the notices
// to a sink), for 10 KB and 1 MB messages into the portal.
//   --messages N (per size, default 200; 1 MB: N/4)   --concurrency C (mailbox prefetch, default 8)
//   --mailboxes M (recipients the messages are spread over, default 20)   --sizes 10k,1m
// The first message to each recipient creates its mailbox and activation token (an argon2id hash of the PIN); the
// rest are plain arrivals into a passive mailbox (the link notice and the sender's PIN notice each time).
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { type Envelope, newEnvelope, newMessageId } from '@smgw/envelope';
import { connectMq } from '@smgw/mq';
import { createLogger } from '@smgw/observability';
import { type ServiceProcess, startTestGateway, waitFor } from '@smgw/testing';
import { countMessagesWithEvent, recordMessage } from '@smgw/trace';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '8' },
    mailboxes: { type: 'string', default: '20' },
    sizes: { type: 'string', default: '10k,1m' },
  },
});
const N = Number(args.messages);
const C = Number(args.concurrency);
const M = Number(args.mailboxes);
const sizes = (args.sizes ?? '').split(',').map((s) => {
  const m = /^(\d+)(k|m)?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size ${s}`);
  return Number(m[1]) * (m[2]?.toLowerCase() === 'm' ? 1024 * 1024 : m[2] ? 1024 : 1);
});
const log = createLogger('bench-mailbox', 'warn');

/** A plain text mail of `size` bytes. */
function messageOf(size: number, tag: string): Buffer {
  const head = `From: bench@behoerde.example\r\nTo: buerger@buerger.example\r\nSubject: mailbox bench ${tag}\r\n\r\n`;
  const line = `Bescheid ${tag} `.padEnd(76, 'x');
  const body = `${line}\r\n`.repeat(Math.max(1, Math.ceil((size - head.length) / 78)));
  return Buffer.from(head + body).subarray(0, Math.max(size, head.length + 80));
}

const gw = await startTestGateway({
  services: ['mailbox', 'deliver'],
  env: {
    SMGW_LOG_LEVEL: 'warn',
    SMGW_PREFETCH: String(C),
    SMGW_INTERNAL_DOMAINS: 'behoerde.example',
    SMGW_MAILBOX_QUOTA_BYTES: String(2 ** 40),
  },
});
const mailbox = gw.services.mailbox as ServiceProcess;
const blobStore = createBlobStore(gw.db.pool, { keyStore: createFolderKeyStore(gw.keys), directory: gw.blobDir });
const publisher = await connectMq({ url: gw.vhost.url, logger: log, connectionName: 'bench-mailbox' });

try {
  process.stdout.write(
    `mailbox benchmark: ${N} messages per size (1 MB: ${Math.max(20, Math.floor(N / 4))}) over ${M} mailboxes, prefetch ${C}\n`,
  );
  for (const size of sizes) {
    const count = size >= 1024 * 1024 ? Math.max(20, Math.floor(N / 4)) : N;
    const runId = randomBytes(3).toString('hex');
    const envelopes: Envelope[] = [];
    for (let i = 0; i < count; i++) {
      const id = newMessageId();
      const blob = await blobStore.put(
        (async function* () {
          yield messageOf(size, `${runId}-${i}`);
        })(),
        { messageId: id },
      );
      const envelope = newEnvelope({
        id,
        direction: 'outbound',
        mailFrom: 'bench@behoerde.example',
        recipients: [`b${runId}-${i % M}@buerger.example`],
        client: { listener: 'submission', ip: '127.0.0.1', helo: 'bench', tls: false },
        blob,
      });
      await recordMessage(gw.db.pool, envelope);
      // As encrypt hands it on.
      envelopes.push({ ...envelope, itinerary: ['mailbox'] });
    }
    const ids = envelopes.map((e) => e.id);
    const stored = () => countMessagesWithEvent(gw.db.pool, ids, { stage: 'mailbox', event: 'message.to-mailbox' });
    const start = performance.now();
    await Promise.all(envelopes.map((e) => publisher.publish(e)));
    await waitFor(`${count} stored`, async () => (await stored()) >= count, { timeoutMs: 600_000, intervalMs: 10 });
    const seconds = (performance.now() - start) / 1000;
    const label = size >= 1024 * 1024 ? `${size / 1024 / 1024} MB` : `${size / 1024} KB`;
    process.stdout.write(
      `${label.padEnd(6)} ${String(count).padStart(5)} msgs  ${(count / seconds).toFixed(1)} msg/s\n`,
    );
  }
  process.stdout.write(`peak RSS mailbox ${(((await mailbox.peakRssBytes()) ?? 0) / 1024 / 1024).toFixed(1)} MB\n`);
} finally {
  await publisher.close();
  await gw.close();
}
