// S/MIME certificate harvesting from signed inbound mail (openssl cms -sign as the sender), and the cipher choice
// for outbound copies from what recipients announced (openssl cms -decrypt as the recipient).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import type { RevocationFetcher } from '@smgw/crypto';
// The pkijs test signer of @smgw/crypto: openssl cannot write chosen capabilities or id-aa-encrypKeyPref.
import { signWithPkijs } from '@smgw/crypto/testing';
import { type Envelope, newMessageId } from '@smgw/envelope';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { getTrace, recordMessage } from '@smgw/trace';
import { type EncryptDeps, encryptEnvelope } from '../src/encrypt-envelope.ts';
import {
  createTestPki,
  encryptDeps,
  handlerContext,
  INNER_ENTITY,
  insertAgencyKey,
  insertCertificate,
  insertTrustAnchor,
  outboundMail,
  startCrlServer,
  type TestCa,
  type TestCertificate,
  type TestPki,
  testEnvelope,
  testLogger,
} from './fixtures.ts';

const SIGNED_ENTITY = Buffer.from(
  'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nMein Antrag, signiert.\r\n',
  'utf8',
);

const crlf = (bytes: Buffer): Buffer => Buffer.from(bytes.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');

describe('S/MIME certificate harvesting and cipher choice', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let blobStore: BlobStore;
  let ca: TestCa;
  let strangerCa: TestCa;
  let crl: { url: string; close(): Promise<void> };
  let crlRequests = 0;
  let agency: TestCertificate;

  before(async () => {
    [db, pki] = await Promise.all([createTestDatabase(), createTestPki()]);
    blobStore = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    ca = await pki.ca('Harvest-CA');
    strangerCa = await pki.ca('Stranger-CA');
    await insertTrustAnchor(db.pool, ca.der);
    crl = await startCrlServer(async () => {
      crlRequests += 1;
      return pki.crl(ca);
    });
    agency = await pki.leaf(ca, 'poststelle@behoerde.example');
    await insertAgencyKey(db.pool, 'poststelle@behoerde.example', { kind: 'smime', certificate: agency });
  });
  after(async () => {
    await crl?.close();
    await pki?.remove();
    await db?.drop();
  });

  const deps = (overrides: Partial<EncryptDeps> = {}): EncryptDeps => encryptDeps(db.pool, blobStore, overrides);

  async function signedBy(signer: TestCertificate, ...extra: string[]): Promise<Buffer> {
    const entityPath = await pki.file('signed-entity.eml', SIGNED_ENTITY);
    return crlf(
      await pki.openssl([
        'cms',
        '-sign',
        '-in',
        entityPath,
        '-signer',
        signer.certPath,
        '-inkey',
        signer.keyPath,
        ...extra,
      ]),
    );
  }

  function withOuterHeader(from: string | undefined, signed: Buffer): Buffer {
    const lines = [
      ...(from ? [`From: ${from}`] : []),
      'To: poststelle@behoerde.example',
      'Subject: Antrag',
      'Date: Mon, 02 Mar 2026 10:00:00 +0100',
      'Message-ID: <antrag-1@buerger.example>',
    ];
    return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n`), signed]);
  }

  async function inbound(message: Buffer, overrides: Partial<Envelope> = {}): Promise<Envelope> {
    const id = overrides.id ?? newMessageId();
    const blob = await blobStore.put(Readable.from([message]), { messageId: id });
    const envelope = testEnvelope(blob, 'inbound', { ...overrides, id });
    await recordMessage(db.pool, envelope);
    return envelope;
  }

  async function certificateRow(fingerprint: string) {
    const { rows } = await db.pool.query<{
      source: string;
      addresses: string[];
      smime_capabilities: { contentCiphers: string[]; oids: string[] } | null;
      replaced_by: string | null;
      last_validation: { ok: boolean } | null;
    }>(
      'select source, addresses, smime_capabilities, replaced_by, last_validation from certificates where fingerprint = $1',
      [fingerprint],
    );
    return rows[0];
  }

  async function eventsOf(envelope: Envelope, name: string) {
    return ((await getTrace(db.pool, envelope.id))?.events ?? []).filter((e) => e.event === name);
  }

  it('harvests the certificate of a validly signed message with its capabilities and records the event', async () => {
    const sender = await pki.leaf(ca, 'anna@buerger.example');
    const message = withOuterHeader('Anna Bürgerin <anna@buerger.example>', await signedBy(sender));
    const envelope = await inbound(message);
    const outcome = await encryptEnvelope(deps(), envelope, handlerContext());
    assert.equal(outcome.kind, 'next');
    const row = await certificateRow(sender.fingerprint);
    assert.ok(row, 'certificate stored');
    assert.equal(row.source, 'harvested');
    assert.deepEqual(row.addresses, ['anna@buerger.example']);
    assert.equal(row.replaced_by, null);
    assert.equal(row.last_validation?.ok, true);
    assert.deepEqual(row.smime_capabilities?.contentCiphers.slice(0, 3), ['aes-256-cbc', 'aes-192-cbc', 'aes-128-cbc']);
    const [event] = await eventsOf(envelope, 'certificate.harvested');
    assert.ok(event, 'certificate.harvested recorded');
    assert.equal(event.code, 'ENCRYPT_CERTIFICATE_HARVESTED');
    assert.equal((event.data as { fingerprint: string }).fingerprint, sender.fingerprint);
  });

  it("stores a harvested certificate for the sender's address only, never for the others it names", async () => {
    const sender = await pki.leaf(ca, 'mehrfach@buerger.example', {
      moreAddresses: ['poststelle@behoerde.example', 'nachbar@buerger.example'],
    });
    const envelope = await inbound(withOuterHeader('mehrfach@buerger.example', await signedBy(sender)));
    assert.equal((await encryptEnvelope(deps(), envelope, handlerContext())).kind, 'next');
    assert.deepEqual((await certificateRow(sender.fingerprint))?.addresses, ['mehrfach@buerger.example']);
  });

  it('uses the envelope sender when the message has no From field', async () => {
    const sender = await pki.leaf(ca, 'ohne-from@buerger.example');
    const envelope = await inbound(withOuterHeader(undefined, await signedBy(sender)), {
      mailFrom: 'ohne-from@buerger.example',
    });
    assert.equal((await encryptEnvelope(deps(), envelope, handlerContext())).kind, 'next');
    assert.equal((await certificateRow(sender.fingerprint))?.source, 'harvested');
  });

  it('harvests nothing from a tampered message, and the message goes on', async () => {
    const sender = await pki.leaf(ca, 'tamper@buerger.example');
    const signed = (await signedBy(sender)).toString('latin1').replace('signiert', 'gefälscht');
    const envelope = await inbound(withOuterHeader('tamper@buerger.example', Buffer.from(signed, 'latin1')));
    assert.equal((await handle(envelope)).kind, 'next');
    assert.equal(await certificateRow(sender.fingerprint), undefined);
    assert.deepEqual(await eventsOf(envelope, 'certificate.harvested'), []);
  });

  it('harvests nothing when the certificate is not for the From address', async () => {
    const sender = await pki.leaf(ca, 'echt@buerger.example');
    const envelope = await inbound(withOuterHeader('andere@buerger.example', await signedBy(sender)));
    assert.equal((await handle(envelope)).kind, 'next');
    assert.equal(await certificateRow(sender.fingerprint), undefined);
  });

  it('harvests nothing signed with SHA-1', async () => {
    const sender = await pki.leaf(ca, 'sha1@buerger.example');
    const envelope = await inbound(withOuterHeader('sha1@buerger.example', await signedBy(sender, '-md', 'sha1')));
    assert.equal((await handle(envelope)).kind, 'next');
    assert.equal(await certificateRow(sender.fingerprint), undefined);
  });

  it("fetches no revocation for a stranger's certificate, but does for one that chains to our anchor", async () => {
    const stranger = await pki.leaf(strangerCa, 'fremd@buerger.example', { crlUrl: crl.url });
    const before = crlRequests;
    const envelope = await inbound(withOuterHeader('fremd@buerger.example', await signedBy(stranger)));
    assert.equal((await handle(envelope, { revocationMode: 'require' })).kind, 'next');
    assert.equal(await certificateRow(stranger.fingerprint), undefined);
    assert.equal(crlRequests, before, 'no CRL fetched for an untrusted path');

    const known = await pki.leaf(ca, 'bekannt@buerger.example', { crlUrl: crl.url });
    const second = await inbound(withOuterHeader('bekannt@buerger.example', await signedBy(known)));
    assert.equal((await handle(second, { revocationMode: 'require' })).kind, 'next');
    assert.ok(crlRequests > before, 'the CRL of a validated path is fetched');
    assert.equal((await certificateRow(known.fingerprint))?.source, 'harvested');
  });

  it('fetches nothing for, and stores nothing of, certificates in the bag that are not on the validated path', async () => {
    let baitRequests = 0;
    const bait = await startCrlServer(async () => {
      baitRequests += 1;
      return pki.crl(strangerCa);
    });
    try {
      // A stranger's certificates ride along in the signature's bag, their CRL on a listener the fetcher may reach.
      const extra = await pki.leaf(strangerCa, 'beifang@buerger.example', { crlUrl: bait.url });
      const extraPath = await pki.file(
        'bag.pem',
        `${readFileSync(extra.certPath, 'utf8')}${readFileSync(strangerCa.certPath, 'utf8')}`,
      );
      const sender = await pki.leaf(ca, 'mitbeutel@buerger.example', { crlUrl: crl.url });
      const message = withOuterHeader('mitbeutel@buerger.example', await signedBy(sender, '-certfile', extraPath));
      const envelope = await inbound(message);
      assert.equal((await handle(envelope, { revocationMode: 'require' })).kind, 'next');
      assert.equal((await certificateRow(sender.fingerprint))?.source, 'harvested');
      assert.equal(baitRequests, 0, 'no request to a URL of a certificate off the path');
      const stored = await db.pool.query<{ intermediates: Buffer[] }>(
        'select intermediates from certificates where fingerprint = $1',
        [sender.fingerprint],
      );
      assert.deepEqual(stored.rows[0]?.intermediates, [], 'only the path is kept: the leaf under the anchor itself');
    } finally {
      await bait.close();
    }
  });

  it('does not harvest a revoked certificate', async () => {
    const revoked = await pki.leaf(ca, 'widerrufen@buerger.example', { crlUrl: crl.url });
    await pki.revoke(ca, revoked);
    const envelope = await inbound(withOuterHeader('widerrufen@buerger.example', await signedBy(revoked)));
    assert.equal((await handle(envelope, { revocationMode: 'require' })).kind, 'next');
    assert.equal(await certificateRow(revoked.fingerprint), undefined);
  });

  it('lets a renewed certificate replace the older one for the same address', async () => {
    const old = await pki.leaf(ca, 'erneuert@buerger.example');
    await insertCertificate(db.pool, old);
    const renewed = await pki.leaf(ca, 'erneuert@buerger.example');
    const envelope = await inbound(withOuterHeader('erneuert@buerger.example', await signedBy(renewed)));
    assert.equal((await handle(envelope)).kind, 'next');
    assert.equal((await certificateRow(renewed.fingerprint))?.replaced_by, null);
    assert.equal((await certificateRow(old.fingerprint))?.replaced_by, renewed.fingerprint);
    const [event] = await eventsOf(envelope, 'certificate.harvested');
    assert.ok(event, 'certificate.harvested recorded');
    assert.deepEqual((event.data as { replaced: string[] }).replaced, [old.fingerprint]);
  });

  it('harvests from the decrypted entity of signed-then-encrypted mail', async () => {
    const sender = await pki.leaf(ca, 'geheim@buerger.example');
    const signed = await signedBy(sender);
    const signedPath = await pki.file('signed.eml', signed);
    const agencyCertPath = agency.certPath;
    const encrypted = crlf(await pki.openssl(['cms', '-encrypt', '-in', signedPath, '-aes256', agencyCertPath]));
    const envelope = await inbound(withOuterHeader('geheim@buerger.example', encrypted));
    const outcome = await handle(envelope);
    assert.equal(outcome.kind, 'next');
    assert.equal(outcome.kind === 'next' && outcome.envelopes[0]?.verdicts.crypto?.status, 'decrypted');
    assert.equal((await certificateRow(sender.fingerprint))?.source, 'harvested');
  });

  it('never fails the message when harvesting fails (ENCRYPT_HARVEST_FAILED is only logged)', async () => {
    const sender = await pki.leaf(ca, 'kaputt@buerger.example', { crlUrl: crl.url });
    const failing: RevocationFetcher = {
      fetchFor: async () => {
        throw Object.assign(new Error('fetcher exploded'), { code: 'TEST_FETCHER_BROKEN' });
      },
    } as unknown as RevocationFetcher;
    const envelope = await inbound(withOuterHeader('kaputt@buerger.example', await signedBy(sender)));
    // The test logger with its warn() spied on (what the handler logs is the only trace of the failure).
    const warnings: unknown[] = [];
    const log: typeof testLogger = Object.create(testLogger);
    log.warn = ((fields: unknown) => {
      warnings.push(fields);
    }) as typeof testLogger.warn;
    const outcome = await handle(envelope, { revocationMode: 'require', fetcher: failing }, log);
    assert.equal(outcome.kind, 'next');
    assert.ok(
      warnings.some((w) => (w as { code?: string; cause?: string }).code === 'ENCRYPT_HARVEST_FAILED'),
      'the failure is logged',
    );
    assert.equal(await certificateRow(sender.fingerprint), undefined);
  });

  // --- outbound cipher choice ----------------------------------------------------------------------------------

  async function recipientWith(address: string, capabilities: unknown): Promise<TestCertificate> {
    const certificate = await pki.leaf(ca, address, { key: 'rsa-3072' });
    await insertCertificate(db.pool, certificate);
    await db.pool.query('update certificates set smime_capabilities = $2 where fingerprint = $1', [
      certificate.fingerprint,
      capabilities === null ? null : JSON.stringify(capabilities),
    ]);
    return certificate;
  }

  async function encryptTo(recipients: string[]) {
    const id = newMessageId();
    const blob = await blobStore.put(Readable.from([outboundMail(recipients)]), { messageId: id });
    const envelope = testEnvelope(blob, 'outbound', { id, recipients });
    await recordMessage(db.pool, envelope);
    const outcome = await encryptEnvelope(deps(), envelope, handlerContext());
    assert.equal(outcome.kind, 'next');
    const child = outcome.kind === 'next' ? outcome.envelopes[0] : undefined;
    assert.ok(child);
    return { envelope, message: await blobStore.readAll(child.blob.ref) };
  }

  async function openWith(certificate: TestCertificate, message: Buffer): Promise<Buffer> {
    const path = await pki.file(`out-${certificate.fingerprint.slice(0, 8)}.eml`, message);
    return pki.openssl(['cms', '-decrypt', '-in', path, '-recip', certificate.certPath, '-inkey', certificate.keyPath]);
  }

  async function structureOf(message: Buffer): Promise<string> {
    const path = await pki.file(
      `structure-${createHash('sha256').update(message).digest('hex').slice(0, 8)}.eml`,
      message,
    );
    return (await pki.openssl(['cms', '-cmsout', '-print', '-in', path])).toString('latin1');
  }

  const GCM_AND_OAEP = {
    contentCiphers: ['aes-256-gcm', 'aes-256-cbc'],
    keyTransport: 'rsa-oaep',
    oids: ['2.16.840.1.101.3.4.1.46', '2.16.840.1.101.3.4.1.42', '1.2.840.113549.1.1.7'],
  };

  it('writes AuthEnvelopedData AES-256-GCM with RSA-OAEP for a recipient that announced both, and openssl opens it', async () => {
    const recipient = await recipientWith('modern@mail.example', GCM_AND_OAEP);
    const { envelope, message } = await encryptTo(['modern@mail.example']);
    assert.match(message.toString('latin1'), /smime-type=authEnveloped-data/);
    const structure = await structureOf(message);
    assert.match(structure, /rsaesOaep/);
    assert.match(structure, /aes-256-gcm|id-aes256-GCM/);
    assert.deepEqual(await openWith(recipient, message), INNER_ENTITY);
    const [event] = await eventsOf(envelope, 'recipient.encrypted');
    assert.deepEqual(event?.data, {
      form: 'smime',
      fingerprint: recipient.fingerprint,
      signed: false,
      contentCipher: 'aes-256-gcm',
      keyTransport: 'rsa-oaep-sha256',
    });
  });

  it('harvests the encryption certificate a trusted signer names, with GCM and OAEP, and the next copy uses them', async () => {
    const signing = await pki.leaf(ca, 'zwei-zert@buerger.example');
    const encryption = await pki.leaf(ca, 'zwei-zert@buerger.example', { key: 'rsa-3072' });
    const signed = await signWithPkijs({
      content: SIGNED_ENTITY,
      signerCertificate: signing.der,
      signerKeyPem: signing.keyPem,
      capabilityOids: GCM_AND_OAEP.oids,
      encryptionCertificate: encryption.der,
    });
    const envelope = await inbound(withOuterHeader('zwei-zert@buerger.example', signed));
    assert.equal((await handle(envelope)).kind, 'next');
    assert.equal(await certificateRow(signing.fingerprint), undefined, 'the signing certificate is not for encryption');
    const row = await certificateRow(encryption.fingerprint);
    assert.equal(row?.source, 'harvested');
    assert.deepEqual(row?.smime_capabilities, GCM_AND_OAEP);

    const { message } = await encryptTo(['zwei-zert@buerger.example']);
    assert.match(message.toString('latin1'), /smime-type=authEnveloped-data/);
    assert.match(await structureOf(message), /rsaesOaep/);
    assert.deepEqual(await openWith(encryption, message), INNER_ENTITY);
  });

  it('harvests nothing when the signer is untrusted, even if the encryption certificate it names is trusted', async () => {
    const stranger = await pki.leaf(strangerCa, 'unterschoben@buerger.example');
    const encryption = await pki.leaf(ca, 'unterschoben@buerger.example');
    const signed = await signWithPkijs({
      content: SIGNED_ENTITY,
      signerCertificate: stranger.der,
      signerKeyPem: stranger.keyPem,
      capabilityOids: GCM_AND_OAEP.oids,
      encryptionCertificate: encryption.der,
    });
    const envelope = await inbound(withOuterHeader('unterschoben@buerger.example', signed));
    assert.equal((await handle(envelope)).kind, 'next');
    assert.equal(await certificateRow(encryption.fingerprint), undefined);
    assert.equal(await certificateRow(stranger.fingerprint), undefined);
  });

  it('writes EnvelopedData AES-256-CBC with PKCS#1 v1.5 for a recipient that announced nothing', async () => {
    const recipient = await recipientWith('classic@mail.example', null);
    const { envelope, message } = await encryptTo(['classic@mail.example']);
    assert.match(message.toString('latin1'), /smime-type=enveloped-data/);
    const structure = await structureOf(message);
    assert.match(structure, /rsaEncryption/);
    assert.doesNotMatch(structure, /rsaesOaep/);
    assert.match(structure, /aes-256-cbc/);
    assert.deepEqual(await openWith(recipient, message), INNER_ENTITY);
    const [event] = await eventsOf(envelope, 'recipient.encrypted');
    assert.deepEqual(event?.data, {
      form: 'smime',
      fingerprint: recipient.fingerprint,
      signed: false,
      contentCipher: 'aes-256-cbc',
      keyTransport: 'rsa-pkcs1v15',
    });
  });

  it('shares one AES-256-CBC copy when not every recipient announced GCM, keeping OAEP for the one that did', async () => {
    const modern = await recipientWith('modern2@mail.example', GCM_AND_OAEP);
    const classic = await recipientWith('classic2@mail.example', { contentCiphers: ['aes-256-cbc'], oids: [] });
    const { envelope, message } = await encryptTo(['modern2@mail.example', 'classic2@mail.example']);
    assert.match(message.toString('latin1'), /smime-type=enveloped-data/);
    const structure = await structureOf(message);
    assert.match(structure, /rsaesOaep/);
    assert.match(structure, /rsaEncryption/);
    assert.deepEqual(await openWith(modern, message), INNER_ENTITY);
    assert.deepEqual(await openWith(classic, message), INNER_ENTITY);
    const ciphers = (await eventsOf(envelope, 'recipient.encrypted')).map((e) => e.data);
    assert.deepEqual(
      ciphers.map((d) => (d as { keyTransport: string; contentCipher: string }).contentCipher),
      ['aes-256-cbc', 'aes-256-cbc'],
    );
    assert.deepEqual(
      ciphers.map((d) => (d as { keyTransport: string }).keyTransport),
      ['rsa-oaep-sha256', 'rsa-pkcs1v15'],
    );
  });

  function handle(envelope: Envelope, overrides: Partial<EncryptDeps> = {}, log = testLogger) {
    return encryptEnvelope(deps(overrides), envelope, handlerContext({ log }));
  }
});
