// Inbound decryption in worker threads under a limit of their CPU time. A stranger can encrypt to an agency key
// content whose literal data packet is written in partial lengths of 1 byte: openpgp reads that at about 1 s of CPU
// per MB (11 MB: 9.7 s), and nothing outside the encryption shows it. Such a decryption is stopped at its CPU limit;
// the worker is terminated and replaced, the caller goes on.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import {
  type DecryptionJob,
  DecryptionTimeLimitError,
  DecryptionWorkerError,
  type DecryptionWorkers,
  startDecryptionWorkers,
} from '../src/decryption-workers/decryption-workers.ts';
import { decryptPgpMime, PgpError } from '../src/openpgp/index.ts';
import { SmimeError } from '../src/smime/index.ts';
import { CRASHING_DECRYPTION_WORKER, encryptWithTinyPartials } from '../src/testing/index.ts';
import { sampleEntity, wrapAsPgpMime } from './openpgp-gpg.ts';
import { createOpensslWorkspace, type OpensslWorkspace, type TestIdentity } from './smime-openssl.ts';

const MiB = 1024 * 1024;
/** Far above what a small message needs on a loaded machine, far below what the slow one needs. */
const GENEROUS_MS = 60_000;
const SHORT_MS = 100;

describe('decryption in worker threads', { timeout: 180_000 }, () => {
  let agency: { privateKey: string; publicKey: openpgp.PublicKey; armoredPublicKey: string; fingerprint: string };
  let stranger: openpgp.PublicKey;
  let workers: DecryptionWorkers;
  let ws: OpensslWorkspace;
  let smimeAgency: TestIdentity;

  before(async () => {
    const [generated, other] = await Promise.all(
      ['poststelle@behoerde.example', 'someone@example.org'].map((email) =>
        openpgp.generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email }], format: 'armored' }),
      ),
    );
    assert.ok(generated && other);
    const publicKey = await openpgp.readKey({ armoredKey: generated.publicKey });
    agency = {
      privateKey: generated.privateKey,
      publicKey,
      armoredPublicKey: generated.publicKey,
      fingerprint: publicKey.getFingerprint().toUpperCase(),
    };
    stranger = await openpgp.readKey({ armoredKey: other.publicKey });
    workers = startDecryptionWorkers({ size: 2 });
    ws = await createOpensslWorkspace();
    smimeAgency = await ws.identity('rsa-2048');
  });
  after(async () => {
    await workers?.close();
    await ws?.remove();
  });

  const pgpJob = (): DecryptionJob => ({
    form: 'pgp',
    privateKeys: [{ armored: agency.privateKey }],
    now: new Date(),
    maxBytes: 16 * MiB,
  });
  const encrypted = async (entity: Buffer, to = agency.publicKey) =>
    wrapAsPgpMime(
      await openpgp.encrypt({ message: await openpgp.createMessage({ binary: entity }), encryptionKeys: to }),
    );
  /** Content in 1-byte partial lengths: about 3 s of CPU per MiB here, 30 times the short limit. */
  const slow = async (mib = 1) =>
    wrapAsPgpMime(await encryptWithTinyPartials(agency.armoredPublicKey, sampleEntity('x'.repeat(mib * MiB))));

  it('opens PGP/MIME as decryptPgpMime does in the thread, streamed in chunks', async () => {
    const entity = sampleEntity('Bescheid '.repeat(20_000));
    const message = await encrypted(entity);
    const chunks = Readable.from(Array.from({ length: 8 }, (_, i) => message.subarray(i * 32_768, (i + 1) * 32_768)));
    const opened = await workers.decrypt(chunks, pgpJob(), { remainingCpuMs: GENEROUS_MS });
    assert.deepEqual(opened.entity, entity);
    assert.equal(opened.decryptedWith, agency.fingerprint);
    assert.deepEqual(
      opened.entity,
      (await decryptPgpMime({ message, privateKeys: [{ armored: agency.privateKey }] })).entity,
    );
  });

  it('opens S/MIME from openssl cms -encrypt', async () => {
    const entity = sampleEntity('Antrag auf Akteneinsicht');
    const path = await ws.file('entity.eml', entity);
    const message = await ws.openssl([
      'cms',
      '-encrypt',
      '-aes256',
      '-in',
      path,
      '-recip',
      smimeAgency.certificatePath,
    ]);
    const opened = await workers.decrypt(
      message,
      {
        form: 'smime',
        keys: [{ certificate: smimeAgency.certificatePem, privateKey: smimeAgency.keyPem }],
        maxBytes: MiB,
      },
      { remainingCpuMs: GENEROUS_MS },
    );
    assert.deepEqual(opened.entity, entity);
  });

  it("gives the message's own failure as the PgpError or SmimeError it is, and keeps the worker", async () => {
    await assert.rejects(
      workers.decrypt(await encrypted(sampleEntity(), stranger), pgpJob(), { remainingCpuMs: GENEROUS_MS }),
      (error) => error instanceof PgpError && error.code === 'PGP_NO_MATCHING_KEY',
    );
    await assert.rejects(
      workers.decrypt(
        Buffer.from('not CMS at all'),
        {
          form: 'smime',
          keys: [{ certificate: smimeAgency.certificatePem, privateKey: smimeAgency.keyPem }],
          maxBytes: MiB,
        },
        { remainingCpuMs: GENEROUS_MS },
      ),
      (error) => error instanceof SmimeError && error.code === 'SMIME_MALFORMED',
    );
  });

  it('stops content in 1-byte partial lengths at the time limit, and the next message opens in a new worker', async () => {
    const budget = { remainingCpuMs: SHORT_MS };
    await assert.rejects(workers.decrypt(await slow(), pgpJob(), budget), DecryptionTimeLimitError);
    assert.ok(budget.remainingCpuMs <= 0, `${budget.remainingCpuMs} ms left`);
    // The budget is the message's: its next decryption (another recipient's keys, an inner layer) is not started.
    await assert.rejects(workers.decrypt(await encrypted(sampleEntity()), pgpJob(), budget), DecryptionTimeLimitError);
    const entity = sampleEntity('nach dem Abbruch');
    const opened = await workers.decrypt(await encrypted(entity), pgpJob(), { remainingCpuMs: GENEROUS_MS });
    assert.deepEqual(opened.entity, entity);
  });

  it("takes from the message's budget the CPU its worker thread used, which is at most the decryption's time", async () => {
    const budget = { remainingCpuMs: GENEROUS_MS };
    const message = await slow(0.1);
    const started = performance.now();
    await workers.decrypt(message, pgpJob(), budget);
    const tookMs = performance.now() - started;
    const spentMs = GENEROUS_MS - budget.remainingCpuMs;
    assert.ok(spentMs > 50 && spentMs <= tookMs, `${spentMs} ms of CPU spent in ${tookMs} ms`);
  });

  it('opens the same slow content when the limit allows it: the limit, not the content, stopped it', async () => {
    const entity = sampleEntity('x'.repeat(64 * 1024));
    const message = wrapAsPgpMime(await encryptWithTinyPartials(agency.armoredPublicKey, entity));
    const opened = await workers.decrypt(message, pgpJob(), { remainingCpuMs: GENEROUS_MS });
    assert.deepEqual(opened.entity, entity);
  });

  it('gives a crashed worker as DecryptionWorkerError, and the next decryption works', async () => {
    const crashing = startDecryptionWorkers({ size: 1, workerUrl: CRASHING_DECRYPTION_WORKER });
    try {
      await assert.rejects(
        crashing.decrypt(Buffer.from('CRASH'), pgpJob(), { remainingCpuMs: GENEROUS_MS }),
        (error) => error instanceof DecryptionWorkerError && /exit code 70/.test(error.message),
      );
      const entity = sampleEntity('nach dem Absturz');
      const opened = await crashing.decrypt(await encrypted(entity), pgpJob(), { remainingCpuMs: GENEROUS_MS });
      assert.deepEqual(opened.entity, entity);
    } finally {
      await crashing.close();
    }
  });

  it('lets a decryption wait for a free worker without counting the wait, and closes those waiting', async () => {
    const one = startDecryptionWorkers({ size: 1 });
    try {
      // The second waits 3 s and more (the first's limit, then a new worker): more than its own 2 s.
      const first = one.decrypt(await slow(4), pgpJob(), { remainingCpuMs: 3000 });
      const entity = sampleEntity('wartet');
      const waiting = one.decrypt(await encrypted(entity), pgpJob(), { remainingCpuMs: 2000 });
      await assert.rejects(first, DecryptionTimeLimitError);
      assert.deepEqual((await waiting).entity, entity);
      const [slowMessage, smallMessage] = await Promise.all([slow(), encrypted(entity)]);
      const busy = one.decrypt(slowMessage, pgpJob(), { remainingCpuMs: GENEROUS_MS });
      const queued = one.decrypt(smallMessage, pgpJob(), { remainingCpuMs: GENEROUS_MS });
      const both = Promise.allSettled([busy, queued]);
      await one.close();
      for (const result of await both) {
        assert.ok(result.status === 'rejected' && result.reason instanceof DecryptionWorkerError, String(result));
      }
    } finally {
      await one.close();
    }
  });
});
