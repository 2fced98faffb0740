// The scan handler against the real clamd and PostgreSQL, called directly (no broker).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gzipSync } from 'node:zlib';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { type ClamdPool, createClamdPool, scanStream } from '@smgw/clamd';
import { type Envelope, newMessageId } from '@smgw/envelope';
import { createAgency, putAgencyAddress } from '@smgw/key-directory';
import type { Outcome } from '@smgw/mq';
import { createRegistry } from '@smgw/observability';
import {
  createTestDatabase,
  entityWithAttachment,
  freePort,
  mailWithAttachmentNamed,
  opaqueSignedMail,
  signedDataOf,
  type TestDatabase,
} from '@smgw/testing';
import { getTrace, recordMessage } from '@smgw/trace';
import { scanMetrics } from '../src/metrics.ts';
import { loadNoticeTemplates } from '../src/notice.ts';
import { type ScanDeps, scanEnvelope } from '../src/scan-envelope.ts';
import { DEFAULT_SCAN_POLICY, parseScanPolicy } from '../src/scan-policy.ts';
import {
  CLAMD_URL,
  EICAR,
  handlerContext,
  mailThreeLevelsDeep,
  mailWithAttachment,
  type PrivateClamd,
  startPrivateClamd,
  streamedZip,
  TESTFILES,
  tarOf,
  testEnvelope,
  textMail,
  zerosThen,
  zipOf,
} from './fixtures.ts';

const MAX_BYTES = 52 * 1024 * 1024;
/** The shared clamd's limits (.smgw/clamav/clamd.conf, as ./smgw up writes it for a 50 MiB message limit). */
const ARCHIVE_LIMITS = {
  maxFileSize: 53_477_376,
  maxScanSize: 4 * 53_477_376,
  maxRecursion: 16,
  maxFiles: 10_000,
  maxHeaderLines: 100_000,
};
let db: TestDatabase;
let blobStore: BlobStore;
let deps: ScanDeps;
/** Most tests scan through a pool of clamd sessions, as the service does. */
let clamdSessions: ClamdPool;

function depsFor(clamdUrl: string, overrides: Partial<ScanDeps> = {}): ScanDeps {
  return {
    ...deps,
    scan: (open: () => Readable) => scanStream(open, { url: clamdUrl, deadlineMs: 60_000, maxBytes: MAX_BYTES }),
    ...overrides,
  };
}

before(async () => {
  clamdSessions = createClamdPool({ url: CLAMD_URL, maxSessions: 4 });
  db = await createTestDatabase();
  blobStore = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
  deps = {
    pool: db.pool,
    blobStore,
    scan: (open) => clamdSessions.scanStream(open, { deadlineMs: 60_000, maxBytes: MAX_BYTES }),
    engine: () => 'clamd test',
    policy: DEFAULT_SCAN_POLICY,
    quarantineRetentionMs: 30 * 86_400_000,
    inboundNoticeTo: undefined,
    hostname: 'smgw.test',
    templates: await loadNoticeTemplates(),
    metrics: scanMetrics(createRegistry('scan-test')),
    archiveLimits: ARCHIVE_LIMITS,
  };
});
after(async () => {
  await clamdSessions.close();
  await db.drop();
});

/** A multipart message of `count` parts, each `header` (if any) and the bytes `body(index)` gives. */
function messageOfParts(count: number, body: (index: number) => Buffer, lastHeader = ''): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const header = i === count - 1 ? lastHeader : '';
    parts.push(Buffer.from(`--b\r\n${header}\r\n`), body(i), Buffer.from('\r\n'));
  }
  return Buffer.concat([
    Buffer.from('From: a@behoerde.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'),
    ...parts,
    Buffer.from('--b--\r\n'),
  ]);
}

async function received(raw: Buffer, direction: Envelope['direction'] = 'internal', overrides: Partial<Envelope> = {}) {
  const id = overrides.id ?? newMessageId();
  const blob = await blobStore.put(
    (async function* () {
      yield raw;
    })(),
    { messageId: id },
  );
  const envelope = testEnvelope(blob, direction, { ...overrides, id });
  await recordMessage(db.pool, envelope);
  return envelope;
}

function envelopesOf(outcome: Outcome): Envelope[] {
  assert.equal(outcome.kind, 'next', JSON.stringify(outcome));
  return outcome.kind === 'next' ? outcome.envelopes : [];
}

async function quarantineRow(messageId: string) {
  const rows = await db.pool.query('select * from quarantine where message_id = $1', [messageId]);
  assert.equal(rows.rowCount, 1, `one quarantine row for ${messageId}`);
  return rows.rows[0];
}

/** An infected message to an agency colleague and a citizen, split as ingest splits it: two envelopes, one id. */
async function splitInfected(): Promise<{ internal: Envelope; outbound: Envelope }> {
  const internal = await received(mailWithAttachment('eicar.com', EICAR), 'internal');
  const outbound: Envelope = {
    ...internal,
    direction: 'outbound',
    recipients: ['citizen@mail.example'],
    itinerary: ['scan', 'encrypt', 'deliver'],
  };
  await recordMessage(db.pool, outbound);
  return { internal, outbound };
}

/** Scans; expects the message to end in quarantine with a notice; returns the row, the notice and its text. */
async function expectQuarantined(envelope: Envelope, verdict: 'infected' | 'suspicious', scanDeps = deps) {
  const [notice, ...rest] = envelopesOf(await scanEnvelope(scanDeps, envelope, handlerContext()));
  assert.equal(rest.length, 0, 'only the notice travels on');
  const row = await quarantineRow(envelope.id);
  assert.equal(row.verdict, verdict, `verdict for finding ${row.finding}`);
  assert.equal(row.direction, envelope.direction);
  assert.deepEqual(row.envelope, envelope);
  const trace = await getTrace(db.pool, envelope.id);
  assert.ok(trace?.recipients.every((r) => r.state === 'quarantined'));
  assert.ok(trace?.events.some((e) => e.event === 'message.quarantined'));
  return { row, notice, text: notice ? (await blobStore.readAll(notice.blob.ref)).toString('latin1') : '' };
}

describe('EICAR in its usual disguises', () => {
  const eicarZip = () => zipOf({ 'eicar.com': EICAR });
  const cases: [string, () => Buffer][] = [
    ['as the body', () => textMail(EICAR)],
    ['as a base64 attachment', () => mailWithAttachment('eicar.com', EICAR)],
    ['in a zip', () => mailWithAttachment('unterlagen.zip', eicarZip(), 'application/zip')],
    ['in a zip in a zip', () => mailWithAttachment('akte.zip', zipOf({ 'inner.zip': eicarZip() }), 'application/zip')],
    ['three MIME levels deep', () => mailThreeLevelsDeep('eicar.com', EICAR)],
  ];
  for (const [where, make] of cases) {
    it(`quarantines EICAR ${where} as infected and tells the sender without carrying it`, async () => {
      const envelope = await received(make());
      const { row, notice, text } = await expectQuarantined(envelope, 'infected');
      assert.match(row.finding, /Eicar/i);
      assert.deepEqual(notice?.recipients, ['clerk@behoerde.example']);
      assert.equal(notice?.direction, 'generated');
      assert.equal(notice?.mailFrom, '');
      assert.deepEqual(notice?.itinerary, ['deliver']);
      assert.equal(notice?.relatesTo, envelope.id);
      assert.ok(text.includes(envelope.id), 'the notice names the message id');
      assert.ok(text.includes(row.finding), 'the notice names the finding');
      assert.ok(!text.includes('EICAR-STANDARD'), 'the notice does not carry the content');
      assert.ok(!text.includes(EICAR.toString('base64').slice(0, 40)), 'not even encoded');
    });
  }
});

describe("ClamAV's test files (clamav-testfiles), each wrapped as a MIME attachment", () => {
  const files = readdirSync(TESTFILES).sort();
  it('has test files to work with', () => assert.ok(files.length > 30));
  for (const file of files) {
    // clam_cache_emax.tgz nests deeper than MaxRecursion: clamd says Heuristics.Limits.Exceeded, not the signature.
    const verdict = file === 'clam_cache_emax.tgz' ? 'suspicious' : 'infected';
    it(`quarantines ${file} as ${verdict}`, async () => {
      const envelope = await received(mailWithAttachment(file, readFileSync(`${TESTFILES}/${file}`)));
      await expectQuarantined(envelope, verdict);
    });
  }

  for (const file of ['clam.mail', 'clam.exe.mbox.base64', 'clam.exe.mbox.uu']) {
    it(`quarantines ${file} sent as the message itself (clamd parses the mail)`, async () => {
      const envelope = await received(readFileSync(`${TESTFILES}/${file}`));
      await expectQuarantined(envelope, 'infected');
    });
  }
});

describe('clean mail to agency addresses enabled for signature verification', () => {
  it('goes on to verify for the enabled recipients only; the others skip it, both groups traced', async () => {
    const agency = await createAgency(db.pool, {
      name: 'Verify-Routing',
      domains: ['pruefung.example'],
      now: new Date(),
    });
    assert.equal(agency.kind, 'created');
    const agencyId = agency.kind === 'created' ? agency.id : '';
    await putAgencyAddress(db.pool, { agencyId, address: 'an@pruefung.example', verifySignatures: true });
    await putAgencyAddress(db.pool, { agencyId, address: 'aus@pruefung.example', verifySignatures: false });
    const raw = textMail('Bitte pruefen.');
    const mixed = await received(raw, 'inbound', {
      recipients: ['An@Pruefung.example', 'aus@pruefung.example', 'x@pruefung.example'],
    });
    const [through, past, ...rest] = envelopesOf(await scanEnvelope(deps, mixed, handlerContext()));
    assert.equal(rest.length, 0);
    assert.deepEqual(through?.recipients, ['An@Pruefung.example']);
    assert.deepEqual(through?.itinerary, ['verify', 'deliver']);
    assert.deepEqual(past?.recipients, ['aus@pruefung.example', 'x@pruefung.example']);
    assert.deepEqual(past?.itinerary, ['deliver']);
    const events = (await getTrace(db.pool, mixed.id))?.events.map((e) => e.event) ?? [];
    assert.ok(events.includes('message.verification-routed') && events.includes('message.verification-skipped'));

    const outbound = await received(raw, 'outbound', { recipients: ['an@pruefung.example'] });
    const [onward] = envelopesOf(await scanEnvelope(deps, outbound, handlerContext()));
    assert.deepEqual(onward?.itinerary, ['encrypt', 'deliver'], 'outbound mail is never verified');
    const portal = await received(raw, 'portal', { recipients: ['aus@pruefung.example'] });
    const [plain, ...more] = envelopesOf(await scanEnvelope(deps, portal, handlerContext()));
    assert.equal(more.length, 0);
    assert.deepEqual(plain?.itinerary, ['deliver'], 'nobody enabled: no queue hop to verify');
    const portalEvents = (await getTrace(db.pool, portal.id))?.events.map((e) => e.event) ?? [];
    assert.ok(!portalEvents.some((e) => e.startsWith('message.verification')), portalEvents.join(', '));
  });
});

describe('clean mail', () => {
  it('passes byte-identical: same blob, scan verdict recorded, on to the next stage', async () => {
    const raw = mailWithAttachment('bescheid.pdf', Buffer.from('%PDF-1.4 harmless'), 'application/pdf');
    const envelope = await received(raw, 'outbound');
    const [passed, ...rest] = envelopesOf(await scanEnvelope(deps, envelope, handlerContext()));
    assert.equal(rest.length, 0);
    assert.deepEqual(passed?.blob, envelope.blob);
    assert.deepEqual(passed?.itinerary, ['encrypt', 'deliver']);
    assert.equal(passed?.verdicts.scan?.status, 'clean');
    assert.equal(passed?.verdicts.scan?.engine, 'clamd test');
    assert.ok((await blobStore.readAll(envelope.blob.ref)).equals(raw));
    const trace = await getTrace(db.pool, envelope.id);
    assert.ok(trace?.events.some((e) => e.event === 'message.scanned' && e.outcome === 'next'));
    assert.equal((await db.pool.query('select 1 from quarantine where message_id = $1', [envelope.id])).rowCount, 0);
  });

  it('gives clamd the message as something it can open again, whole each time (a repeat on a fresh session)', async () => {
    const raw = textMail('Zweimal gelesen, zweimal ganz.');
    const envelope = await received(raw);
    const reads: Buffer[] = [];
    const twice: ScanDeps = {
      ...deps,
      scan: async (open) => {
        reads.push(await buffer(open()), await buffer(open()));
        return clamdSessions.scanStream(open, { deadlineMs: 60_000, maxBytes: MAX_BYTES });
      },
    };
    const [passed] = envelopesOf(await scanEnvelope(twice, envelope, handlerContext()));
    assert.equal(passed?.verdicts.scan?.status, 'clean');
    assert.deepEqual(
      reads.map((r) => r.equals(raw)),
      [true, true],
    );
  });

  it('streams a 50 MB message through clamd without holding it in memory', async () => {
    const line = Buffer.from(`${'Sehr geehrte Damen und Herren, dies ist eine lange Anlage. '.repeat(2)}\r\n`);
    const target = 50 * 1024 * 1024;
    const id = newMessageId();
    const blob = await blobStore.put(
      (async function* () {
        yield Buffer.from('Subject: gross\r\nContent-Type: text/plain\r\n\r\n');
        for (let sent = 0; sent < target; sent += line.length * 1024) yield Buffer.concat(Array(1024).fill(line));
      })(),
      { messageId: id, maxBytes: MAX_BYTES },
    );
    assert.ok(blob.size > target);
    const envelope = testEnvelope(blob, 'internal', { id });
    await recordMessage(db.pool, envelope);
    // Live memory, not garbage: collect before each sample.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const baseline = process.memoryUsage();
    let peak = 0;
    const sampler = setInterval(() => {
      gc();
      const m = process.memoryUsage();
      peak = Math.max(peak, m.heapUsed + m.arrayBuffers - baseline.heapUsed - baseline.arrayBuffers);
    }, 20);
    // The assertion is about memory, not time: a loaded machine (CI, a full suite beside other work) took clamd past
    // the 60 s deadline the other tests use.
    const patient: ScanDeps = {
      ...deps,
      scan: (open) => clamdSessions.scanStream(open, { deadlineMs: 300_000, maxBytes: MAX_BYTES }),
    };
    const outcome = await scanEnvelope(patient, envelope, handlerContext()).finally(() => clearInterval(sampler));
    const [passed] = envelopesOf(outcome);
    assert.equal(passed?.verdicts.scan?.status, 'clean');
    assert.ok(peak < 24 * 1024 * 1024, `memory grew by ${Math.round(peak / 1024 / 1024)} MB for a 50 MB message`);
  });
});

describe('suspicious content', () => {
  it('quarantines a password-protected zip as suspicious (Heuristics.Encrypted)', async () => {
    const zip = zipOf({ 'bescheid.txt': Buffer.from('nothing bad in here\n') }, 'geheim');
    const envelope = await received(mailWithAttachment('bescheid.zip', zip, 'application/zip'));
    const { row } = await expectQuarantined(envelope, 'suspicious');
    assert.match(row.finding, /^Heuristics\.Encrypted\./);
  });

  it('lets an encrypted zip pass where the policy allows it for that direction, with the finding in the verdict', async () => {
    const zip = zipOf({ 'bescheid.txt': Buffer.from('still nothing bad\n') }, 'geheim');
    const envelope = await received(mailWithAttachment('bescheid.zip', zip, 'application/zip'));
    const relaxed = { ...deps, policy: parseScanPolicy('internal:encrypted') };
    const [passed] = envelopesOf(await scanEnvelope(relaxed, envelope, handlerContext()));
    assert.equal(passed?.verdicts.scan?.status, 'allowed');
    assert.match(passed?.verdicts.scan?.detail ?? '', /Heuristics\.Encrypted\./);
  });

  it('never lets EICAR in an encrypted-zip-allowed direction pass', async () => {
    const envelope = await received(mailWithAttachment('eicar.com', EICAR));
    const relaxed = { ...deps, policy: parseScanPolicy('internal:encrypted,internal:limits,internal:heuristic') };
    await expectQuarantined(envelope, 'infected', relaxed);
  });

  it('quarantines a message longer than clamd may be sent as suspicious (never clean, never retried)', async () => {
    const envelope = await received(textMail('x'.repeat(5000)));
    const tight = {
      ...deps,
      scan: (open: () => Readable) => clamdSessions.scanStream(open, { deadlineMs: 10_000, maxBytes: 1000 }),
    };
    const { row } = await expectQuarantined(envelope, 'suspicious', tight);
    assert.equal(row.finding, 'Smgw.Limits.Exceeded.StreamMaxLength');
  });

  describe('with a clamd of small scan limits', () => {
    let small: PrivateClamd;
    before(async () => {
      small = await startPrivateClamd({ MaxFileSize: '100K', MaxScanSize: '200K', StreamMaxLength: '1M' });
    });
    after(() => small.close());

    it("quarantines a message over clamd's StreamMaxLength when the stream limit is kept at it (SMGW_CLAMD_STREAM_MAX_BYTES)", async () => {
      const large = () => received(textMail('y'.repeat(3 * 1024 * 1024)));
      const pool = createClamdPool({ url: small.url, maxSessions: 2 });
      const scanUpTo = (maxBytes: number) =>
        depsFor(small.url, {
          scan: (open: () => Readable) => pool.scanStream(open, { deadlineMs: 60_000, maxBytes }),
        });
      try {
        // Misconfigured (our limit above clamd's): clamd refuses and closes mid-upload; its answer may be lost with
        // the connection. Never passed: quarantined, or retried.
        const misconfigured = await large();
        for (let i = 0; i < 3; i++) {
          const outcome = await scanEnvelope(scanUpTo(MAX_BYTES), misconfigured, handlerContext());
          const passed = outcome.kind === 'next' && outcome.envelopes.some((e) => e.id === misconfigured.id);
          assert.ok(!passed && (outcome.kind === 'retry' || outcome.kind === 'next'), JSON.stringify(outcome));
        }
        // Kept at clamd's limit: our client stops there, every time.
        const { row } = await expectQuarantined(await large(), 'suspicious', scanUpTo(1024 * 1024));
        assert.equal(row.finding, 'Smgw.Limits.Exceeded.StreamMaxLength');
      } finally {
        await pool.close();
      }
    });

    it('does not call a file over MaxFileSize clean', async () => {
      // Incompressible: a zip whose member is over MaxFileSize but which is itself small passes clamd as OK even
      // with AlertExceedsMax (seen with ClamAV 1.x; see README "Known gaps").
      const big = randomBytes(400 * 1024);
      const envelope = await received(mailWithAttachment('gross.zip', zipOf({ 'gross.bin': big }), 'application/zip'));
      const { row } = await expectQuarantined(envelope, 'suspicious', depsFor(small.url));
      assert.match(row.finding, /^Heuristics\.Limits\.Exceeded\./);
    });
  });
});

describe('content inside a CMS SignedData (what a mail client shows of a signed message), scanned too', () => {
  const infectedEntity = () => entityWithAttachment('rechnung.com', EICAR);
  /** What clamd alone says of the bytes. */
  const scanAlone = (raw: Buffer) =>
    clamdSessions.scanStream(() => Readable.from([raw]), { deadlineMs: 60_000, maxBytes: MAX_BYTES });

  it('quarantines EICAR inside an opaque-signed S/MIME message, which clamd alone calls clean', async () => {
    const raw = opaqueSignedMail(signedDataOf(infectedEntity()));
    assert.equal((await scanAlone(raw)).kind, 'clean');
    const envelope = await received(raw, 'inbound', { recipients: ['stelle@behoerde.example'] });
    const { row } = await expectQuarantined(envelope, 'infected');
    assert.match(row.finding, /Eicar/i);
    assert.match(row.detail, /inside the SignedData at \/content/);
  });

  it('quarantines EICAR in a .p7m attachment (a CAdES-signed document)', async () => {
    // Gzipped: clamd finds EICAR as such, or a zip, in the DER, but opens no gzip inside it (it does as an attachment).
    const gzipped = gzipSync(EICAR);
    assert.equal((await scanAlone(mailWithAttachmentNamed('rechnung.com.gz', gzipped))).kind, 'infected');
    const raw = mailWithAttachmentNamed('rechnung.com.gz.p7m', signedDataOf(gzipped));
    assert.equal((await scanAlone(raw)).kind, 'clean');
    const envelope = await received(raw, 'inbound', { recipients: ['stelle@behoerde.example'] });
    const { row } = await expectQuarantined(envelope, 'infected');
    assert.match(row.finding, /Eicar/i);
    assert.match(row.detail, /\/2\/content/);
  });

  it('quarantines EICAR in SignedData inside SignedData', async () => {
    const envelope = await received(opaqueSignedMail(signedDataOf(signedDataOf(infectedEntity()))));
    const { row } = await expectQuarantined(envelope, 'infected');
    assert.match(row.finding, /Eicar/i);
  });

  it('passes a clean opaque-signed message byte for byte, its signed content scanned', async () => {
    const raw = opaqueSignedMail(signedDataOf(entityWithAttachment('rechnung.txt', Buffer.from('Betrag: 12 EUR'))));
    const envelope = await received(raw, 'outbound');
    const [passed, ...rest] = envelopesOf(await scanEnvelope(deps, envelope, handlerContext()));
    assert.equal(rest.length, 0);
    assert.deepEqual(passed?.blob, envelope.blob);
    assert.equal(passed?.verdicts.scan?.status, 'clean');
    assert.ok((await blobStore.readAll(envelope.blob.ref)).equals(raw));
    const trace = await getTrace(db.pool, envelope.id);
    const scanned = trace?.events.find((e) => e.event === 'message.scanned');
    assert.equal((scanned?.data as { signedContents?: number } | undefined)?.signedContents, 1);
  });

  it('does not pass SignedData it cannot take apart: quarantined as suspicious, the finding saying so', async () => {
    const signed = signedDataOf(infectedEntity());
    const envelope = await received(opaqueSignedMail(signed.subarray(0, signed.length - 300)));
    const { row } = await expectQuarantined(envelope, 'suspicious');
    assert.equal(row.finding, 'Smgw.Broken.SignedData');
  });

  it('does not pass SignedData nested beyond the limit', async () => {
    const envelope = await received(opaqueSignedMail(signedDataOf(signedDataOf(signedDataOf(Buffer.from('harmlos'))))));
    const shallow = {
      ...deps,
      signedContentLimits: {
        maxDepth: 1,
        maxSignedData: 32,
        maxBytes: 1024 * 1024,
        maxParts: 10_000,
        maxHeaderLines: 100_000,
      },
    };
    const { row } = await expectQuarantined(envelope, 'suspicious', shallow);
    assert.equal(row.finding, 'Smgw.Limits.Exceeded.SignedData.MaxRecursion');
  });

  it('never lets SignedData it cannot take apart pass, whatever the policy lets pass of broken content or limits', async () => {
    // A malformed SignedData placed first would otherwise hide a real one after it (the walk stops at the first).
    const signed = signedDataOf(infectedEntity());
    const envelope = await received(opaqueSignedMail(signed.subarray(0, signed.length - 300)));
    const lenient = { ...deps, policy: parseScanPolicy('internal:broken,internal:limits') };
    const { row } = await expectQuarantined(envelope, 'suspicious', lenient);
    assert.equal(row.finding, 'Smgw.Broken.SignedData');
  });

  it('does not pass a message of more MIME parts than it walks (clamd MaxFiles), whatever the policy lets pass of limits', async () => {
    // 20,000 tiny parts, the last one declaring CMS (so the message shows a hint); nothing beyond part 10,000 is read.
    const raw = messageOfParts(20_000, () => Buffer.from('x'), 'Content-Type: application/pkcs7-mime\r\n');
    const lenient = { ...deps, policy: parseScanPolicy('internal:limits') };
    const { row } = await expectQuarantined(await received(raw), 'suspicious', lenient);
    assert.equal(row.finding, 'Smgw.Limits.Exceeded.SignedData.MaxParts');
    assert.match(row.detail, /SignedData at \/10000 not taken apart \(more than 10000 MIME parts\)/);
  });

  it('does not pass a message with a part of more header lines than it reads, whatever the policy lets pass of limits', async () => {
    // 200,000 lines (1.6 MB) ending in a CMS type; of 31 MB (4 million) the walk held the event loop 2–3 s before.
    const header = `${'X-A: b\r\n'.repeat(200_000)}Content-Type: application/pkcs7-mime\r\n`;
    const raw = messageOfParts(2, () => Buffer.from('x'), header);
    const lenient = { ...deps, policy: parseScanPolicy('internal:limits') };
    const { row } = await expectQuarantined(await received(raw), 'suspicious', lenient);
    assert.equal(row.finding, 'Smgw.Limits.Exceeded.SignedData.MaxHeader');
    assert.match(row.detail, /SignedData at \/2 not taken apart \(more than 99997 header lines left to read\)/);
  });

  it('never lets EICAR inside SignedData pass where an operator lets broken content pass', async () => {
    const envelope = await received(opaqueSignedMail(signedDataOf(infectedEntity())));
    const lenient = { ...deps, policy: parseScanPolicy('internal:broken,internal:limits') };
    const { row } = await expectQuarantined(envelope, 'infected', lenient);
    assert.match(row.finding, /Eicar/i);
  });
});

describe('zip members clamd does not look into (MaxFileSize, ClamAV issue 633): taken apart here', () => {
  // A clamd whose MaxFileSize is below its MaxScanSize, as clamd's defaults and many operators' own configurations
  // have it (the shipped one has them equal, below): it skips a larger zip member and answers OK.
  let narrowClamd: PrivateClamd;
  let narrow: ScanDeps;
  /** What that clamd alone says of the bytes. */
  const scanAlone = (raw: Buffer) =>
    scanStream(() => Readable.from([raw]), { url: narrowClamd.url, deadlineMs: 60_000, maxBytes: MAX_BYTES });
  /** 60 MiB of zeros, then EICAR: one member over clamd's MaxFileSize (51 MiB here), a zip of about 61 KB. */
  let paddedEicar: Buffer;
  before(async () => {
    paddedEicar = streamedZip([{ name: 'daten.bin', chunks: zerosThen(60, EICAR) }]);
    narrowClamd = await startPrivateClamd({ MaxFileSize: '53477376' });
    narrow = depsFor(narrowClamd.url);
  });
  after(async () => {
    await narrowClamd?.close();
  });

  for (const [name, type, direction] of [
    ['daten.zip', 'application/zip', 'inbound'],
    ['bescheid.pdf', 'application/pdf', 'portal'],
    ['akte.zip', 'application/zip', 'internal'],
  ] as const) {
    it(`quarantines EICAR after 60 MiB of zeros in a zip named ${name} (${direction}), which clamd alone calls clean`, async () => {
      const raw = mailWithAttachment(name, paddedEicar, type);
      assert.ok(raw.length < 100_000);
      assert.equal((await scanAlone(raw)).kind, 'clean', "clamd's own answer: OK");
      const envelope = await received(raw, direction);
      const { row } = await expectQuarantined(envelope, 'suspicious', narrow);
      assert.equal(row.finding, 'Smgw.Limits.Exceeded.ArchiveMember');
      assert.match(row.detail, /zip at \/2, entry 1: declares more than 53477376 bytes/);
    });
  }

  it('counts what a member inflates to, not what it declares', async () => {
    const lying = streamedZip([{ name: 'klein.txt', chunks: zerosThen(60, EICAR), declaredSize: 1000 }]);
    const raw = mailWithAttachment('klein.zip', lying, 'application/zip');
    assert.equal((await scanAlone(raw)).kind, 'clean', "clamd's own answer: OK");
    const { row } = await expectQuarantined(await received(raw), 'suspicious', narrow);
    assert.equal(row.finding, 'Smgw.Limits.Exceeded.ArchiveMember');
    assert.match(row.detail, /zip at \/2, entry 1: more than 53477376 bytes inflated/);
  });

  it('quarantines it inside a zip inside a zip', async () => {
    const outer = streamedZip([
      { name: 'liesmich.txt', chunks: () => [Buffer.from('Anbei.')] },
      { name: 'innen.zip', chunks: () => [paddedEicar] },
    ]);
    const raw = mailWithAttachment('paket.zip', outer, 'application/zip');
    assert.equal((await scanAlone(raw)).kind, 'clean');
    const { row } = await expectQuarantined(await received(raw), 'suspicious', narrow);
    assert.equal(row.finding, 'Smgw.Limits.Exceeded.ArchiveMember');
    assert.match(row.detail, /zip at \/2, entry 2, entry 1: declares more than/);
  });

  it('quarantines zips nested deeper than clamd opens them', async () => {
    let nested = streamedZip([{ name: 'x.txt', chunks: () => [Buffer.from('tief')] }]);
    for (let i = 0; i < 3; i++) nested = streamedZip([{ name: `ebene${i}.zip`, chunks: () => [nested] }]);
    const shallow = { ...narrow, archiveLimits: { ...ARCHIVE_LIMITS, maxRecursion: 2 } };
    const { row } = await expectQuarantined(
      await received(mailWithAttachment('tief.zip', nested, 'application/zip')),
      'suspicious',
      shallow,
    );
    assert.equal(row.finding, 'Smgw.Limits.Exceeded.Archive.MaxRecursion');
  });

  it('stops at the budget of inflated bytes per message: many members each below the limit', async () => {
    // Five zips of 45 MiB each: 225 MiB, over clamd's MaxScanSize of 204 MiB; each alone is below MaxFileSize.
    const bomb = streamedZip([{ name: 'nullen.bin', chunks: zerosThen(45) }]);
    const boundary = 'b-many';
    const parts = Array.from({ length: 5 }, (_, i) =>
      [
        `--${boundary}`,
        `Content-Type: application/zip; name="teil${i}.zip"`,
        'Content-Transfer-Encoding: base64',
        '',
        bomb.toString('base64').replace(/.{76}/g, '$&\r\n'),
      ].join('\r\n'),
    );
    const raw = Buffer.from(
      [
        'From: a@behoerde.example',
        'MIME-Version: 1.0',
        `Content-Type: multipart/mixed; boundary="${boundary}"`,
        '',
        ...parts,
        `--${boundary}--`,
        '',
      ].join('\r\n'),
    );
    const { row } = await expectQuarantined(await received(raw), 'suspicious', narrow);
    assert.equal(row.finding, 'Smgw.Limits.Exceeded.Archive.MaxScanSize');
  });

  it('quarantines a message of more parts than MaxFiles, each an empty zip, which clamd alone calls clean, at part 10,000', async () => {
    // 20,000 parts of 22 bytes: 620 KB. Of 31 MB (a million parts) the walk took 7 s of CPU before it counted them.
    const raw = messageOfParts(20_000, () => Buffer.from(`504b0506${'00'.repeat(18)}`, 'hex'));
    assert.equal((await scanAlone(raw)).kind, 'clean', "clamd's own answer: OK");
    const { row } = await expectQuarantined(await received(raw), 'suspicious', narrow);
    assert.equal(row.finding, 'Smgw.Limits.Exceeded.Archive.MaxFiles');
    assert.match(row.detail, /^\/10000: more than 10000 MIME parts and zip members; clamd/);
  });

  it('quarantines what looks like a zip and cannot be read (clamd reads local headers where the directory fails)', async () => {
    const broken = Buffer.from(paddedEicar.subarray(0, paddedEicar.length - 30));
    const { row } = await expectQuarantined(
      await received(mailWithAttachment('kaputt.zip', broken, 'application/zip')),
      'suspicious',
      narrow,
    );
    assert.equal(row.finding, 'Smgw.Broken.Archive');
  });

  it('still quarantines a password-protected zip as clamd names it (Heuristics.Encrypted)', async () => {
    const zip = zipOf({ 'bescheid.txt': Buffer.from('nothing bad in here\n') }, 'geheim');
    const { row } = await expectQuarantined(
      await received(mailWithAttachment('bescheid.zip', zip, 'application/zip')),
      'suspicious',
      narrow,
    );
    assert.match(row.finding, /^Heuristics\.Encrypted\./);
  });

  it('passes a small zip and a .docx (a zip of XML parts) clean, byte for byte', async () => {
    const docx = streamedZip([
      { name: '[Content_Types].xml', chunks: () => [Buffer.from('<?xml version="1.0"?><Types/>')] },
      { name: '_rels/.rels', chunks: () => [Buffer.from('<?xml version="1.0"?><Relationships/>')] },
      {
        name: 'word/document.xml',
        chunks: () => [Buffer.from(`<w:document>${'<w:p>Absatz</w:p>'.repeat(2000)}</w:document>`)],
      },
      { name: 'word/media/image1.png', chunks: () => [randomBytes(20_000)], stored: true },
    ]);
    for (const raw of [
      mailWithAttachment(
        'unterlagen.zip',
        zipOf({ 'a.txt': Buffer.from('Akte A\n'), 'b.txt': Buffer.from('Akte B\n') }),
        'application/zip',
      ),
      mailWithAttachment(
        'bescheid.docx',
        docx,
        'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
      ),
    ]) {
      const envelope = await received(raw);
      const [passed, ...rest] = envelopesOf(await scanEnvelope(narrow, envelope, handlerContext()));
      assert.equal(rest.length, 0);
      assert.equal(passed?.verdicts.scan?.status, 'clean');
      assert.deepEqual(passed?.blob, envelope.blob);
    }
  });
  it('needs none of this with the shipped clamd (MaxFileSize = MaxScanSize), which finds EICAR itself, also where this stage does not look: a zip in a .tar.gz or a .zip.gz', async () => {
    const inTarGz = gzipSync(tarOf('daten.zip', paddedEicar));
    for (const [name, bytes] of [
      ['daten.zip', paddedEicar],
      ['paket.tar.gz', inTarGz],
      ['daten.zip.gz', gzipSync(paddedEicar)],
    ] as const) {
      const raw = mailWithAttachment(name, bytes, 'application/octet-stream');
      const { row } = await expectQuarantined(await received(raw), 'infected');
      assert.match(row.finding, /Eicar/i, name);
    }
  });
});

describe('notices', () => {
  it('tells postmaster@ each recipient domain about inbound mail, each about its own recipients only', async () => {
    const envelope = await received(mailWithAttachment('eicar.com', EICAR), 'inbound', {
      recipients: ['a@behoerde.example', 'geheim@amt.land.example', 'b@behoerde.example'],
    });
    const notices = envelopesOf(await scanEnvelope(deps, envelope, handlerContext()));
    assert.deepEqual(
      notices.map((n) => n.recipients),
      [['postmaster@behoerde.example'], ['postmaster@amt.land.example']],
      'not the (forgeable) outside sender, and one notice per agency domain',
    );
    const [stadt, land] = await Promise.all(notices.map((n) => blobStore.readAll(n.blob.ref)));
    assert.ok(stadt?.includes('a@behoerde.example') && stadt.includes('b@behoerde.example'));
    assert.ok(!stadt?.includes('geheim@amt.land.example'), "another agency's (Bcc) recipient is not named");
    assert.ok(land?.includes('geheim@amt.land.example') && !land.includes('a@behoerde.example'));
    const again = envelopesOf(await scanEnvelope(deps, { ...envelope, attempt: 1 }, handlerContext({ attempt: 1 })));
    assert.deepEqual(again, notices, 'a redelivery publishes the same notices again');
  });

  it('tells the configured address about inbound mail when one is set', async () => {
    const envelope = await received(mailWithAttachment('eicar.com', EICAR), 'inbound');
    const { notice } = await expectQuarantined(envelope, 'infected', {
      ...deps,
      inboundNoticeTo: 'virus@behoerde.example',
    });
    assert.deepEqual(notice?.recipients, ['virus@behoerde.example']);
  });

  it("tells an agency's postmaster about a stranger's flood of infected mail the first few times an hour, then only records it", async () => {
    // A stranger (any MAIL FROM, one network) sends infected mail to an agency: one notice each would flood its
    // postmaster in the gateway's name. The first notices of the hour go out, the last of them saying so; every
    // message is still quarantined, traced and listed.
    const start = new Date('2026-03-02T10:00:00Z');
    const capped = (minutes: number): ScanDeps => ({
      ...deps,
      inboundNoticesPerHour: 3,
      now: () => new Date(start.getTime() + minutes * 60_000),
    });
    const flood = async (minutes: number, ip: string, sender: string) => {
      const envelope = await received(mailWithAttachment('eicar.com', EICAR), 'inbound', {
        mailFrom: sender,
        recipients: ['poststelle@flut.example'],
        client: { listener: 'inbound', ip, helo: 'spam', tls: false },
      });
      const notices = envelopesOf(await scanEnvelope(capped(minutes), envelope, handlerContext()));
      return { envelope, notices };
    };
    const sent: Envelope[] = [];
    const withheld: Envelope[] = [];
    for (let i = 0; i < 6; i++) {
      // Each from another address of the same /24, and another sender address.
      const { envelope, notices } = await flood(i, `198.51.100.${i + 7}`, `spam${i}@forged${i}.example`);
      (notices.length > 0 ? sent : withheld).push(envelope);
      assert.ok(notices.every((n) => n.recipients[0] === 'postmaster@flut.example'));
    }
    assert.equal(sent.length, 3, 'the first three notices of the hour');
    assert.equal(withheld.length, 3);
    for (const envelope of withheld) {
      await quarantineRow(envelope.id);
      const trace = await getTrace(db.pool, envelope.id);
      assert.ok(trace?.recipients.every((r) => r.state === 'quarantined'));
      const event = trace?.events.find((e) => e.event === 'message.quarantined');
      assert.deepEqual((event?.data as { noticesWithheld?: string[] })?.noticesWithheld, ['postmaster@flut.example']);
    }
    const notices = await db.pool.query<{ notice_envelope: Envelope[] }>(
      'select notice_envelope from quarantine where message_id = $1',
      [sent[2]?.id],
    );
    const last = await blobStore.readAll(notices.rows[0]?.notice_envelope[0]?.blob.ref ?? '');
    assert.match(last.toString('latin1'), /keine weitere Mitteilung/);
    assert.match(last.toString('latin1'), /no further notice/);

    // Another network is counted on its own; the hour after, the first network's mail is told again.
    assert.equal((await flood(10, '203.0.113.9', 'x@forged.example')).notices.length, 1);
    assert.equal((await flood(65, '198.51.100.200', 'y@forged.example')).notices.length, 1);
  });

  it("tells an agency's postmaster about a botnet's infected mail from many networks no more often an hour than the overall limit", async () => {
    // Each network stays under its own limit (SMGW_INBOUND_VIRUS_NOTICES_PER_HOUR); the overall one
    // (SMGW_INBOUND_VIRUS_NOTICES_PER_HOUR_TOTAL) holds the postmaster's hour to four notices, the last saying so.
    const start = new Date('2026-03-02T10:00:00Z');
    const capped = (minutes: number): ScanDeps => ({
      ...deps,
      inboundNoticesPerHour: 3,
      inboundNoticesPerHourTotal: 4,
      now: () => new Date(start.getTime() + minutes * 60_000),
    });
    const flood = async (minutes: number, ip: string) => {
      const envelope = await received(mailWithAttachment('eicar.com', EICAR), 'inbound', {
        mailFrom: `bot@net${minutes}.example`,
        recipients: ['poststelle@botnetz.example'],
        client: { listener: 'inbound', ip, helo: 'bot', tls: false },
      });
      const notices = envelopesOf(await scanEnvelope(capped(minutes), envelope, handlerContext()));
      return { envelope, notices };
    };
    const sent: Envelope[] = [];
    const withheld: Envelope[] = [];
    for (let i = 0; i < 7; i++) {
      // Each from another /24.
      const { envelope, notices } = await flood(i, `198.51.${i + 10}.7`);
      (notices.length > 0 ? sent : withheld).push(envelope);
    }
    assert.equal(sent.length, 4, 'the first four notices of the hour, over all networks');
    assert.equal(withheld.length, 3);
    for (const envelope of withheld) {
      await quarantineRow(envelope.id);
      const trace = await getTrace(db.pool, envelope.id);
      assert.ok(trace?.recipients.every((r) => r.state === 'quarantined'));
      const event = trace?.events.find((e) => e.event === 'message.quarantined');
      assert.deepEqual((event?.data as { noticesWithheld?: string[] })?.noticesWithheld, [
        'postmaster@botnetz.example',
      ]);
    }
    const noticeText = async (envelope: Envelope | undefined) => {
      const rows = await db.pool.query<{ notice_envelope: Envelope[] }>(
        'select notice_envelope from quarantine where message_id = $1',
        [envelope?.id],
      );
      return (await blobStore.readAll(rows.rows[0]?.notice_envelope[0]?.blob.ref ?? '')).toString('latin1');
    };
    assert.doesNotMatch(await noticeText(sent[2]), /keine weitere Mitteilung/);
    const last = await noticeText(sent[3]);
    assert.match(last, /aus allen Netzen/);
    assert.match(last, /from all networks/);
    // The hour after, the postmaster is told again.
    assert.equal((await flood(65, '198.51.30.7')).notices.length, 1);
  });

  it('tells nobody about a message with a null sender, and still ends it', async () => {
    const envelope = await received(mailWithAttachment('eicar.com', EICAR), 'internal', { mailFrom: '' });
    const outcome = await scanEnvelope(deps, envelope, handlerContext());
    assert.deepEqual(outcome, { kind: 'next', envelopes: [] });
    await quarantineRow(envelope.id);
  });
});

describe('redelivery', () => {
  it('keeps one quarantine entry and publishes the same notice again', async () => {
    const envelope = await received(mailWithAttachment('eicar.com', EICAR));
    const [first] = envelopesOf(await scanEnvelope(deps, envelope, handlerContext()));
    const [again] = envelopesOf(await scanEnvelope(deps, { ...envelope, attempt: 1 }, handlerContext({ attempt: 1 })));
    assert.ok(first);
    assert.deepEqual(again, first);
    await quarantineRow(envelope.id);
    const trace = await getTrace(db.pool, envelope.id);
    assert.equal(trace?.events.filter((e) => e.event === 'message.quarantined').length, 1);
  });

  it('records both halves of a split message (internal and outbound) as two releasable entries and one notice', async () => {
    const { internal, outbound } = await splitInfected();
    const first = envelopesOf(await scanEnvelope(deps, internal, handlerContext()));
    const second = envelopesOf(await scanEnvelope(deps, outbound, handlerContext()));
    assert.equal(first.length, 1, 'the first half makes the notice');
    assert.deepEqual(second, [], 'the sender is told once');
    const entries = await db.pool.query('select direction from quarantine where message_id = $1 order by direction', [
      internal.id,
    ]);
    assert.deepEqual(
      entries.rows.map((r) => r.direction),
      ['internal', 'outbound'],
    );
    const trace = await getTrace(db.pool, internal.id);
    assert.deepEqual(
      trace?.recipients.map((r) => r.state),
      ['quarantined', 'quarantined'],
    );
    assert.equal(trace?.events.filter((e) => e.event === 'message.quarantined').length, 2);
  });

  it('records both groups of an inbound message encrypt split by decryption (two blobs, one direction): every recipient quarantined', async () => {
    // Encrypt passes one group on decrypted and the other as received (not decrypted): one id, one direction,
    // two blobs. A stranger can make both infected; the second group was left pending, never quarantined.
    const decrypted = await received(mailWithAttachment('eicar.com', EICAR), 'inbound', {
      recipients: ['opened@behoerde.example'],
    });
    const closed = await blobStore.put(Readable.from([mailWithAttachment('eicar2.com', EICAR)]), {
      messageId: decrypted.id,
    });
    const notDecrypted: Envelope = { ...decrypted, blob: closed, recipients: ['closed@behoerde.example'] };
    await recordMessage(db.pool, notDecrypted);
    await scanEnvelope(deps, decrypted, handlerContext());
    await scanEnvelope(deps, notDecrypted, handlerContext());
    const entries = await db.pool.query('select envelope from quarantine where message_id = $1', [decrypted.id]);
    assert.equal(entries.rowCount, 2, 'one entry per envelope');
    const trace = await getTrace(db.pool, decrypted.id);
    assert.deepEqual(trace?.recipients.map((r) => [r.address, r.state]).sort(), [
      ['closed@behoerde.example', 'quarantined'],
      ['opened@behoerde.example', 'quarantined'],
    ]);
    assert.equal(trace?.events.filter((e) => e.event === 'message.quarantined').length, 2);
  });
});

describe('both halves of a split message at the same time', () => {
  it("tells the sender once: the second half sees the first one's notice and publishes none", async () => {
    const { internal, outbound } = await splitInfected();
    // Both make their notice before either records its entry: the first half's notice is written only once the
    // second half wrote its own (it had found no sibling notice then) or was done.
    let secondWroteItsNotice!: () => void;
    const gate = new Promise<void>((resolve) => {
      secondWroteItsNotice = resolve;
    });
    const waitingStore: BlobStore = {
      ...blobStore,
      put: async (...args: Parameters<BlobStore['put']>) => {
        await gate;
        return blobStore.put(...args);
      },
    };
    const signallingStore: BlobStore = {
      ...blobStore,
      put: async (...args: Parameters<BlobStore['put']>) => {
        const put = await blobStore.put(...args);
        secondWroteItsNotice();
        return put;
      },
    };
    const first = scanEnvelope({ ...deps, blobStore: waitingStore }, internal, handlerContext());
    const second = scanEnvelope({ ...deps, blobStore: signallingStore }, outbound, handlerContext()).finally(() =>
      secondWroteItsNotice(),
    );
    const notices = [...envelopesOf(await first), ...envelopesOf(await second)];
    assert.equal(notices.length, 1, `published notices: ${notices.map((n) => n.id).join(', ')}`);
    const entries = await db.pool.query(
      'select direction, notice_envelope is not null as has_notice from quarantine where message_id = $1 order by direction',
      [internal.id],
    );
    assert.deepEqual(
      entries.rows.map((r) => [r.direction, r.has_notice]).filter(([, has]) => has).length,
      1,
      'one entry holds the notice',
    );
    const trace = await getTrace(db.pool, internal.id);
    const noticeIdsOf = (data: unknown) =>
      (data as { noticeMessageIds?: string[] } | undefined)?.noticeMessageIds ?? [];
    const naming = trace?.events.filter((e) => e.event === 'message.quarantined' && noticeIdsOf(e.data).length > 0);
    assert.equal(naming?.length, 1);
    assert.deepEqual(noticeIdsOf(naming?.[0]?.data), [notices[0]?.id]);
  });
});

describe('when clamd gives no verdict', () => {
  it('retries with CLAMD_UNREACHABLE and counts it when nothing listens', async () => {
    const envelope = await received(textMail('hallo'));
    const port = await freePort();
    const fresh = { ...depsFor(`tcp://127.0.0.1:${port}`), metrics: scanMetrics(createRegistry('scan-test-2')) };
    const outcome = await scanEnvelope(fresh, envelope, handlerContext());
    assert.equal(outcome.kind, 'retry');
    assert.equal(outcome.kind === 'retry' ? outcome.code : '', 'CLAMD_UNREACHABLE');
    const counted = await fresh.metrics.clamdErrors.get();
    assert.deepEqual(
      counted.values.map((v) => [v.labels.code, v.value]),
      [['CLAMD_UNREACHABLE', 1]],
    );
    assert.equal((await db.pool.query('select 1 from quarantine where message_id = $1', [envelope.id])).rowCount, 0);
  });
});
