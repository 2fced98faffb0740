// Ingest's own scan of small messages (scan-at-ingest.ts): against the real clamd, and through the MX and submission
// listeners with the real PostgreSQL and RabbitMQ. Ingest only ever clears; everything else stays the scan stage's.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { type Envelope, itineraryFor } from '@smgw/envelope';
import { createAgency, putAgencyAddress } from '@smgw/key-directory';
import {
  assertQueued,
  EICAR,
  entityWithAttachment,
  envelopeFixture,
  opaqueSignedMail,
  signedDataOf,
} from '@smgw/testing';
import { getTrace } from '@smgw/trace';
import type { IngestConfig } from '../src/config.ts';
import {
  createCopyBudget,
  createIngestScanner,
  type IngestScan,
  type IngestScanner,
  keptForScan,
  scanStageRoute,
} from '../src/scan-at-ingest.ts';
import type { RunningIngest } from '../src/service.ts';
import { createTestWorld, type TestWorld } from './harness.ts';
import { SmtpTestClient } from './smtp-client.ts';

const CLAMD_URL = process.env.CLAMD_URL ?? 'tcp://127.0.0.1:3310';
const quiet = { warn() {}, info() {} };
const cleanMail = Buffer.from('From: a@sender.example\r\nSubject: hello\r\n\r\nnothing to see here\r\n');

describe('ingest scanning a message itself', () => {
  let scanner: IngestScanner;
  const results: string[] = [];
  before(async () => {
    scanner = await createIngestScanner({
      clamdUrl: CLAMD_URL,
      maxBytes: 4096,
      log: quiet,
      onResult: (r) => results.push(r),
    });
  });
  after(() => scanner.close());

  it('says clean, with clamd and its version, for an exact stream: OK', async () => {
    const scan = await scanner.scan([cleanMail.subarray(0, 10), cleanMail.subarray(10)]);
    assert.equal(scan.clean, true);
    assert.ok(scan.clean && /^clamd ClamAV \d/.test(scan.engine), JSON.stringify(scan));
  });

  it('leaves a finding to the scan stage: ingest neither refuses nor quarantines', async () => {
    const scan = await scanner.scan([Buffer.concat([cleanMail, EICAR, Buffer.from('\r\n')])]);
    assert.deepEqual(scan, { clean: false, reason: 'finding' });
  });

  it('never clears a message that may carry SignedData (clamd cannot look inside): the scan stage takes it apart', async () => {
    const signed = opaqueSignedMail(signedDataOf(entityWithAttachment('rechnung.com', EICAR)));
    assert.ok(signed.length <= 4096, `${signed.length} bytes`);
    assert.deepEqual(await scanner.scan([signed.subarray(0, 100), signed.subarray(100)]), {
      clean: false,
      reason: 'signed-data',
    });
  });

  it('never clears a message that may carry a zip (clamd skips members over MaxFileSize): the scan stage counts them', async () => {
    // The start of a zip (a local header), base64 in an attachment: its members are the scan stage's to count.
    const zipStart = Buffer.from('504b03041400000008000000', 'hex').toString('base64');
    const part = `Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${zipStart}\r\n`;
    const withZip = Buffer.concat([cleanMail, Buffer.from(`\r\n${part}`)]);
    assert.deepEqual(await scanner.scan([withZip]), { clean: false, reason: 'zip' });
  });

  it('leaves a message over its size, or one it did not keep, to the scan stage without asking clamd', async () => {
    assert.deepEqual(await scanner.scan([Buffer.alloc(4097, 'a')]), { clean: false, reason: 'too-large' });
    assert.deepEqual(await scanner.scan(undefined), { clean: false, reason: 'too-large' });
  });

  it('counts every result', () => {
    assert.deepEqual(results, ['clean', 'finding', 'signed-data', 'zip', 'too-large', 'too-large']);
  });

  it('sends a message to the scan stage while every session of its own is busy', async () => {
    const one = await createIngestScanner({ clamdUrl: CLAMD_URL, maxBytes: 1 << 20, maxConcurrent: 1, log: quiet });
    try {
      const big = Buffer.alloc(1 << 20, 'x');
      const [first, second] = await Promise.all([one.scan([big]), one.scan([cleanMail])]);
      assert.equal(first.clean, true);
      assert.deepEqual(second, { clean: false, reason: 'busy' });
    } finally {
      await one.close();
    }
  });

  it('sends everything to the scan stage while clamd does not answer, and never throws', async () => {
    const down = await createIngestScanner({ clamdUrl: 'tcp://127.0.0.1:1', maxBytes: 4096, log: quiet });
    try {
      assert.deepEqual(await down.scan([cleanMail]), { clean: false, reason: 'clamd-down' });
    } finally {
      await down.close();
    }
  });

  it('after a scan that failed, sends messages to the scan stage until clamd answers a PING again', async () => {
    // A clamd that answers PING and VERSION but drops every session, as a clamd in trouble may.
    const server = createServer((socket) => {
      socket.once('data', (data) => {
        const command = data.toString('latin1');
        if (command.startsWith('zPING')) socket.end('PONG\0');
        else if (command.startsWith('zVERSION')) socket.end('ClamAV 9.9.9/1/test\0');
        else socket.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const troubled = await createIngestScanner({ clamdUrl: `tcp://127.0.0.1:${port}`, maxBytes: 4096, log: quiet });
    try {
      assert.deepEqual(await troubled.scan([cleanMail]), { clean: false, reason: 'clamd-error' });
      assert.deepEqual(await troubled.scan([cleanMail]), { clean: false, reason: 'clamd-down' });
    } finally {
      await troubled.close();
      server.close();
    }
  });

  it('does not scan at all with a size of 0', async () => {
    const off = await createIngestScanner({ clamdUrl: CLAMD_URL, maxBytes: 0, log: quiet });
    assert.deepEqual(await off.scan([Buffer.alloc(0)]), { clean: false, reason: 'too-large' });
    await off.close();
  });
});

describe('the bytes kept for that scan', () => {
  async function drain(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of source) parts.push(Buffer.from(chunk));
    return Buffer.concat(parts);
  }
  async function* chunks(...parts: string[]) {
    for (const part of parts) yield Buffer.from(part);
  }

  it('passes the message on unchanged and keeps a copy of it up to the size', async () => {
    const kept = keptForScan(chunks('abc', 'def'), { maxBytes: 6, copyBudget: createCopyBudget(100) });
    assert.equal((await drain(kept.source)).toString(), 'abcdef');
    assert.equal(Buffer.concat(kept.kept() ?? []).toString(), 'abcdef');
  });

  it('keeps nothing of a longer message, nothing with a size of 0, nothing without a scanner', async () => {
    const longer = keptForScan(chunks('abc', 'defg'), { maxBytes: 6, copyBudget: createCopyBudget(100) });
    assert.equal((await drain(longer.source)).toString(), 'abcdefg');
    assert.equal(longer.kept(), undefined);
    const off = keptForScan(chunks('abc'), { maxBytes: 0, copyBudget: createCopyBudget(100) });
    assert.equal((await drain(off.source)).toString(), 'abc');
    assert.equal(off.kept(), undefined);
    const noScanner = keptForScan(chunks('abc'), undefined);
    assert.equal((await drain(noScanner.source)).toString(), 'abc');
    assert.equal(noScanner.kept(), undefined);
  });

  it('keeps copies of all messages together only up to the budget, and gives the bytes back on release', async () => {
    const budget = createCopyBudget(10);
    const first = keptForScan(chunks('abcd', 'efgh'), { maxBytes: 100, copyBudget: budget });
    await drain(first.source);
    assert.equal(budget.held(), 8);
    const second = keptForScan(chunks('ijk'), { maxBytes: 100, copyBudget: budget });
    assert.equal((await drain(second.source)).toString(), 'ijk', 'passed on all the same');
    assert.equal(second.kept(), undefined, 'no room left: not kept');
    assert.equal(budget.held(), 8);
    first.release();
    first.release();
    assert.equal(budget.held(), 0);
    assert.equal(first.kept(), undefined);
    const third = keptForScan(chunks('ijk'), { maxBytes: 100, copyBudget: budget });
    await drain(third.source);
    assert.equal(Buffer.concat(third.kept() ?? []).toString(), 'ijk');
  });

  it('gives back what a message over the size had taken', async () => {
    const budget = createCopyBudget(100);
    const longer = keptForScan(chunks('abc', 'defg'), { maxBytes: 6, copyBudget: budget });
    await drain(longer.source);
    assert.equal(budget.held(), 0);
  });

  it('keeps a copy, not the producer memory, which may be reused', async () => {
    const reused = Buffer.from('aaaa');
    async function* reusing() {
      yield reused;
      reused.fill('b');
      yield reused;
    }
    const kept = keptForScan(reusing(), { maxBytes: 100, copyBudget: createCopyBudget(100) });
    await drain(kept.source);
    assert.equal(Buffer.concat(kept.kept() ?? []).toString(), 'aaaabbbb');
  });
});

describe('routing past the scan stage', () => {
  const at = new Date('2026-12-05T10:00:00Z');
  const clean: IngestScan = { clean: true, engine: 'clamd ClamAV 1.4.3/1/x', at };
  const scannerSaying = (scan: IngestScan) => {
    const calls: unknown[] = [];
    const scanner = {
      scan: async (message: readonly Buffer[] | undefined) => {
        calls.push(message);
        return scan;
      },
    };
    return { calls, scanner };
  };
  const log = { warn() {} };
  const plainInbound = (recipients: string[]): Envelope => {
    const e = envelopeFixture({ recipients });
    return { ...e, itinerary: e.itinerary.slice(1) }; // past encrypt, as ingest builds plain mail
  };

  it('splits clean inbound mail at verify like the scan stage, with its verdict and events', async () => {
    const built = [plainInbound(['a@behoerde.example', 'b@behoerde.example'])];
    const { scanner } = scannerSaying(clean);
    const route = await scanStageRoute(
      { scanner, verifyingSignatures: async () => new Set(['b@behoerde.example']) },
      built,
      [cleanMail],
      log,
    );
    assert.deepEqual(route.trace, { skipped: true });
    assert.equal(route.recorded.length, 1);
    assert.deepEqual(
      route.published.map((e) => [e.recipients, e.itinerary, e.hop]),
      [
        [['b@behoerde.example'], ['verify', 'deliver'], 1],
        [['a@behoerde.example'], ['deliver'], 1],
      ],
    );
    for (const e of route.published) {
      assert.deepEqual(e.verdicts.scan, { status: 'clean', at: at.toISOString(), engine: clean.engine, by: 'ingest' });
    }
    assert.deepEqual(
      route.events.map((e) => [e.stage, e.event]),
      [
        ['ingest', 'message.scanned'],
        ['ingest', 'message.verification-routed'],
        ['ingest', 'message.verification-skipped'],
      ],
    );
  });

  it('sends clean outbound mail on to encrypt, never past it', async () => {
    const outbound = envelopeFixture({ direction: 'outbound', recipients: ['x@extern.example'] });
    assert.deepEqual(outbound.itinerary, itineraryFor('outbound'));
    const { scanner } = scannerSaying(clean);
    const route = await scanStageRoute({ scanner }, [outbound], [cleanMail], log);
    assert.deepEqual(
      route.published.map((e) => e.itinerary),
      [['encrypt', 'deliver']],
    );
    assert.deepEqual(
      route.events.map((e) => e.event),
      ['message.scanned'],
    );
  });

  it('leaves every envelope at scan when the scan is not clean, saying why', async () => {
    const built = [plainInbound(['a@behoerde.example'])];
    const { scanner } = scannerSaying({ clean: false, reason: 'finding' });
    const route = await scanStageRoute({ scanner, verifyingSignatures: async () => new Set() }, built, [], log);
    assert.deepEqual(route, {
      recorded: built,
      published: built,
      events: [],
      trace: { skipped: false, reason: 'finding' },
    });
  });

  it('leaves them at scan when it cannot tell who verifies signatures', async () => {
    const built = [plainInbound(['a@behoerde.example'])];
    const { scanner } = scannerSaying(clean);
    const failing = async (): Promise<Set<string>> => {
      throw new Error('database down');
    };
    const route = await scanStageRoute({ scanner, verifyingSignatures: failing }, built, [cleanMail], log);
    assert.deepEqual(route.published, built);
    assert.deepEqual(route.trace, { skipped: false, reason: 'lookup-failed' });
  });

  it('does not scan mail that goes to encrypt first (it may be encrypted): scan has it after decryption', async () => {
    const built = [envelopeFixture()];
    assert.equal(built[0]?.itinerary[0], 'encrypt');
    const { scanner, calls } = scannerSaying(clean);
    const route = await scanStageRoute({ scanner }, built, [cleanMail], log);
    assert.deepEqual(route.published, built);
    assert.equal(route.trace, undefined);
    assert.equal(calls.length, 0);
  });
});

/** What message.received says of the scan stage. */
function scanStageOf(received: { data?: unknown } | undefined): unknown {
  return (received?.data as { scanStage?: unknown } | undefined)?.scanStage;
}

describe('the listeners with ingest scanning, contents in files', () => {
  let world: TestWorld;
  let ingest: RunningIngest;
  let config: IngestConfig;
  const blobDir = mkdtempSync(join(tmpdir(), 'smgw-ingest-scan-'));

  before(async () => {
    world = await createTestWorld();
    ({ ingest, config } = await world.start({
      SMGW_INGEST_SCAN_MAX_BYTES: '65536',
      CLAMD_URL,
      SMGW_BLOB_DIR: blobDir,
    }));
    const agency = await createAgency(world.db.pool, {
      name: 'Behörde',
      domains: ['behoerde.example'],
      now: new Date(),
    });
    assert.equal(agency.kind, 'created');
    if (agency.kind === 'created') {
      await putAgencyAddress(world.db.pool, {
        agencyId: agency.id,
        address: 'pruefer@behoerde.example',
        verifySignatures: true,
      });
    }
  });
  after(async () => {
    await world.close();
    rmSync(blobDir, { recursive: true, force: true });
  });

  async function send(to: string[], body: string | Buffer): Promise<string> {
    const { client } = await SmtpTestClient.open(ingest.inboundPort);
    await client.command('EHLO sender.example');
    const reply = await client.sendMail({ from: 'a@sender.example', to, body: body.toString('latin1') });
    await client.quit();
    return assertQueued(reply.final?.text);
  }

  it('queues clean mail past scan: to verify for who verifies signatures, to deliver for the rest', async () => {
    const id = await send(
      ['x@behoerde.example', 'pruefer@behoerde.example'],
      'From: a@sender.example\r\nTo: x@behoerde.example\r\nSubject: hi\r\n\r\nclean\r\n',
    );
    assert.deepEqual(await world.takeEnvelopes('smgw.scan'), []);
    const [toVerify] = await world.takeEnvelopes('smgw.verify');
    const [toDeliver] = await world.takeEnvelopes('smgw.deliver');
    assert.equal(toVerify?.id, id);
    assert.deepEqual(toVerify?.recipients, ['pruefer@behoerde.example']);
    assert.equal(toDeliver?.id, id);
    assert.deepEqual(toDeliver?.recipients, ['x@behoerde.example']);
    assert.equal(toDeliver?.verdicts.scan?.status, 'clean');
    assert.equal(toDeliver?.verdicts.scan?.by, 'ingest');
    // The blob's row was committed with the message's, and its file is in place for deliver.
    const blobs = createBlobStore(world.db.pool, { keyStore: createFolderKeyStore(config), directory: blobDir });
    assert.match((await blobs.readAll(toDeliver?.blob.ref ?? '')).toString(), /\r\n\r\nclean\r\n$/);
    assert.deepEqual(readdirSync(join(blobDir, 'tmp')), []);

    const trace = await getTrace(world.db.pool, id);
    const received = trace?.events.find((e) => e.event === 'message.received');
    assert.deepEqual(scanStageOf(received), { skipped: true });
    assert.deepEqual(
      trace?.events.filter((e) => e.stage === 'ingest').map((e) => e.event),
      ['message.received', 'message.scanned', 'message.verification-routed', 'message.verification-skipped'],
    );
  });

  it("follows an operator's change of who verifies signatures while running (the change is announced)", async () => {
    const agencyId = (await world.db.pool.query(`select agency_id from agency_addresses limit 1`)).rows[0]?.agency_id;
    const body = 'From: a@sender.example\r\nTo: neu@behoerde.example\r\nSubject: hi\r\n\r\nclean\r\n';
    // Where a message to neu@ goes, once the change has reached ingest (a notice takes milliseconds; tried a while).
    const routedTo = async (queue: string): Promise<boolean> => {
      for (let attempt = 0; attempt < 50; attempt++) {
        const id = await send(['neu@behoerde.example'], body);
        const [verify, deliver] = [await world.takeEnvelopes('smgw.verify'), await world.takeEnvelopes('smgw.deliver')];
        const went = (queue === 'smgw.verify' ? verify : deliver).some((e) => e.id === id);
        if (went) return true;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return false;
    };
    assert.ok(await routedTo('smgw.deliver'));
    await putAgencyAddress(world.db.pool, { agencyId, address: 'neu@behoerde.example', verifySignatures: true });
    assert.ok(await routedTo('smgw.verify'), 'enabled: to verify');
    await putAgencyAddress(world.db.pool, { agencyId, address: 'neu@behoerde.example', verifySignatures: false });
    assert.ok(await routedTo('smgw.deliver'), 'disabled again: straight to deliver');
  });

  it('queues infected mail for the scan stage, which quarantines it', async () => {
    const id = await send(['x@behoerde.example'], `From: a@sender.example\r\nSubject: x\r\n\r\n${EICAR}\r\n`);
    const [envelope] = await world.takeEnvelopes('smgw.scan');
    assert.equal(envelope?.id, id);
    assert.equal(envelope?.verdicts.scan, undefined);
    assert.deepEqual(await world.takeEnvelopes('smgw.deliver'), []);
    const received = (await getTrace(world.db.pool, id))?.events.find((e) => e.event === 'message.received');
    assert.deepEqual(scanStageOf(received), { skipped: false, reason: 'finding' });
  });

  it('routes both envelopes of clean mixed agency mail past scan: internal to deliver, outbound to encrypt', async () => {
    const { client } = await SmtpTestClient.open(ingest.submissionPort);
    await client.command('EHLO agency.example');
    const reply = await client.sendMail({
      from: 'clerk@behoerde.example',
      to: ['citizen@mail.example', 'colleague@behoerde.example'],
      body: 'From: clerk@behoerde.example\r\nSubject: cc\r\n\r\nx\r\n',
    });
    await client.quit();
    const id = assertQueued(reply.final?.text);
    assert.deepEqual(await world.takeEnvelopes('smgw.scan'), []);
    const [outbound] = await world.takeEnvelopes('smgw.encrypt');
    const [internal] = await world.takeEnvelopes('smgw.deliver');
    assert.equal(outbound?.id, id);
    assert.equal(outbound?.direction, 'outbound');
    assert.deepEqual(outbound?.itinerary, ['encrypt', 'deliver']);
    assert.equal(outbound?.verdicts.scan?.by, 'ingest');
    assert.equal(internal?.id, id);
    assert.equal(internal?.direction, 'internal');
    assert.deepEqual(internal?.itinerary, ['deliver']);
    const scanned = (await getTrace(world.db.pool, id))?.events.filter((e) => e.event === 'message.scanned');
    assert.deepEqual(scanned?.map((e) => (e.data as { direction?: string }).direction).sort(), [
      'internal',
      'outbound',
    ]);
  });

  it('queues a message over SMGW_INGEST_SCAN_MAX_BYTES for the scan stage', async () => {
    const id = await send(['x@behoerde.example'], `Subject: big\r\n\r\n${'a'.repeat(70)}\r\n`.repeat(1000));
    const [envelope] = await world.takeEnvelopes('smgw.scan');
    assert.equal(envelope?.id, id);
  });

  it('gives every copy back, also of a message it refused, and counts its scans', async () => {
    const { client } = await SmtpTestClient.open(ingest.inboundPort);
    await client.command('EHLO sender.example');
    const refused = await client.sendMail({
      from: 'a@sender.example',
      to: ['x@behoerde.example'],
      body: 'Subject: bare\r\n\r\na bare\nline feed\r\n',
    });
    await client.quit();
    assert.match(refused.final?.text ?? '', /^550 5\.6\.0/);
    const metrics = await (await fetch(`http://127.0.0.1:${ingest.healthPort}/metrics`)).text();
    assert.match(metrics, /^smgw_ingest_scan_copy_bytes\{[^}]*\} 0$/m);
    assert.match(metrics, /^smgw_ingest_scans_total\{[^}]*result="clean"[^}]*\} [1-9]/m);
    assert.match(metrics, /^smgw_ingest_scans_total\{[^}]*result="finding"[^}]*\} [1-9]/m);
  });
});
