// Inbound decryption runs in worker threads under a limit of their CPU time (SMGW_DECRYPT_TIME_LIMIT_SECONDS). A
// stranger can send PGP/MIME to an agency key whose encrypted content is written in 1-byte partial lengths: openpgp
// reads it at about 1 s of CPU per MB, and nothing outside the encryption shows it. Before, such a message held an
// encrypt consumer for that long per recipient key and layer and went on decrypted; now it goes on as one the gateway
// cannot open, once.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { startDecryptionWorkers } from '@smgw/crypto';
import { CRASHING_DECRYPTION_WORKER, encryptWithTinyPartials } from '@smgw/crypto/testing';
import { type Envelope, newMessageId } from '@smgw/envelope';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { recordMessage } from '@smgw/trace';
import { DECRYPTION_TIME_LIMIT_CODE } from '../src/decrypt-inbound.ts';
import { type EncryptDeps, encryptEnvelope } from '../src/encrypt-envelope.ts';
import { createGpgHome, encryptDeps, type GpgHome, handlerContext, insertAgencyKey, testEnvelope } from './fixtures.ts';

const AGENCY = 'poststelle@behoerde.example';
const SECRET = 'Aktenzeichen 4711: nur fuer die Poststelle';
const MiB = 1024 * 1024;

describe('inbound decryption under a time limit', { timeout: 180_000 }, () => {
  let db: TestDatabase;
  let blobStore: BlobStore;
  let gpg: GpgHome;
  let fingerprint: string;
  let publicArmored: string;
  const counted: string[] = [];

  before(async () => {
    [db, gpg] = await Promise.all([createTestDatabase(), createGpgHome()]);
    blobStore = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    fingerprint = await gpg.generateKey(AGENCY);
    publicArmored = await gpg.exportPublic(fingerprint);
    await insertAgencyKey(db.pool, AGENCY, {
      kind: 'pgp',
      fingerprint,
      publicArmored,
      secretArmored: await gpg.exportSecret(fingerprint),
    });
  });
  after(async () => {
    await gpg?.close();
    await db?.drop();
  });

  const deps = (overrides: Partial<EncryptDeps> = {}): EncryptDeps =>
    encryptDeps(db.pool, blobStore, {
      maxMessageBytes: 10 * MiB,
      metrics: {
        inbound: { inc: ({ result }) => void counted.push(result) },
        recipients: { inc: () => {} },
      },
      ...overrides,
    });

  function pgpMime(armored: string, subject = 'Antrag'): Buffer {
    const boundary = 'time-limit-boundary';
    return Buffer.from(
      `From: fremder@example.org\r\nTo: ${AGENCY}\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\n` +
        `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"\r\n\r\n` +
        `--${boundary}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n` +
        `--${boundary}\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n` +
        `${armored.replace(/\r?\n/g, '\r\n')}\r\n--${boundary}--\r\n`,
    );
  }
  const entity = (text: string) => Buffer.from(`Content-Type: text/plain; charset=utf-8\r\n\r\n${text}\r\n`);
  /** A MiB of content in 1-byte partial lengths: about 3 s of CPU here. */
  const slowMessage = async () =>
    pgpMime(await encryptWithTinyPartials(publicArmored, entity(`${SECRET}\r\n${'x'.repeat(MiB)}`)));
  async function normalMessage(text: string, subject?: string): Promise<Buffer> {
    const encrypted = await gpg.gpg(['--armor', '--encrypt', '--recipient', fingerprint], entity(text));
    assert.equal(encrypted.code, 0, encrypted.stderr);
    return pgpMime(encrypted.stdout.toString('latin1'), subject);
  }

  async function arrive(raw: Buffer): Promise<Envelope> {
    const id = newMessageId();
    const blob = await blobStore.put(Readable.from([raw]), { messageId: id });
    const envelope = testEnvelope(blob, 'inbound', { id, recipients: [AGENCY] });
    await recordMessage(db.pool, envelope);
    return envelope;
  }
  async function handle(envelope: Envelope, overrides: Partial<EncryptDeps> = {}, redelivered = false) {
    const outcome = await encryptEnvelope(deps(overrides), envelope, handlerContext({ redelivered }));
    assert.equal(outcome.kind, 'next', JSON.stringify(outcome));
    return outcome.kind === 'next' ? outcome.envelopes : [];
  }
  const events = async (id: string) =>
    (
      await db.pool.query<{ event: string; code: string | null; reason: string | null }>(
        `select event, code, reason from message_events where message_id = $1 and stage = 'encrypt' order by id`,
        [id],
      )
    ).rows;

  it('passes content in 1-byte partial lengths on as it came, marked, once its decryption is over the limit', async () => {
    const raw = await slowMessage();
    const envelope = await arrive(raw);
    counted.length = 0;
    const [child, ...others] = await handle(envelope, { decryptionCpuLimitMs: 100 });
    assert.ok(child);
    assert.equal(others.length, 0);
    assert.deepEqual(child.recipients, [AGENCY]);
    assert.equal(child.verdicts.crypto?.status, 'not-decrypted');
    assert.match(String(child.verdicts.crypto?.detail), new RegExp(`^${DECRYPTION_TIME_LIMIT_CODE}: `));
    const passed = await blobStore.readAll(child.blob.ref);
    assert.match(
      passed.toString('latin1'),
      new RegExp(`^X-SMGW-Decryption: failed; reason=${DECRYPTION_TIME_LIMIT_CODE}\r\n`),
    );
    // The ciphertext as it came (behind the header), nothing decrypted.
    const body = raw.subarray(raw.indexOf('\r\n\r\n') + 4);
    assert.ok(passed.subarray(passed.length - body.length).equals(body));
    assert.ok(!passed.includes(SECRET));
    const recorded = await events(envelope.id);
    assert.deepEqual(
      recorded.map((e) => [e.event, e.code]),
      [['message.not-decrypted', DECRYPTION_TIME_LIMIT_CODE]],
    );
    assert.match(String(recorded[0]?.reason), /0\.1 s of CPU \(SMGW_DECRYPT_TIME_LIMIT_SECONDS\)/);
    assert.deepEqual(counted, ['time-limit']);

    // A redelivery goes on with the same blob, without a second decryption (and its time) or a retry.
    const [again] = await handle(envelope, { decryptionCpuLimitMs: 100 }, true);
    assert.equal(again?.blob.ref, child.blob.ref);
    assert.equal((await events(envelope.id)).length, 1);
  });

  it('decrypts a normal PGP/MIME message through the worker, also right after a worker was stopped', async () => {
    await handle(await arrive(await slowMessage()), { decryptionCpuLimitMs: 100 });
    const envelope = await arrive(await normalMessage(SECRET));
    counted.length = 0;
    const [child] = await handle(envelope);
    assert.equal(child?.verdicts.crypto?.status, 'decrypted');
    const opened = (await blobStore.readAll(child.blob.ref)).toString('utf8');
    assert.match(opened, /^X-SMGW-Decrypted: pgp\r$/m);
    assert.ok(opened.includes(SECRET));
    assert.deepEqual(counted, ['decrypted']);
  });

  it('retries, and loses nothing, when the decryption worker itself crashes', async () => {
    const crashing = startDecryptionWorkers({ size: 1, workerUrl: CRASHING_DECRYPTION_WORKER });
    try {
      // The crashing worker dies on the word in the message's header.
      const envelope = await arrive(await normalMessage(SECRET, 'CRASH'));
      const outcome = await encryptEnvelope(deps({ decryptionWorkers: crashing }), envelope, handlerContext());
      assert.equal(outcome.kind, 'retry', JSON.stringify(outcome));
      assert.equal(outcome.kind === 'retry' ? outcome.code : '', 'DECRYPTION_WORKER_FAILED');
      assert.deepEqual(await events(envelope.id), []);
    } finally {
      await crashing.close();
    }
  });
});
