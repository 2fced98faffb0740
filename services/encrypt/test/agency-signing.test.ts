// Signing before encryption, per agency: what the gateway signs and encrypts, openssl (cms -decrypt, then cms -verify)
// and gpg (--decrypt) open and verify as signed by the agency's key; an agency without signing, or without a key of
// the form, sends encrypted but unsigned copies, and the trace says why.
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { type Envelope, newMessageId } from '@smgw/envelope';
import { addAgencyKey, agencyKeyAad, createAgency, putAgencyAddress } from '@smgw/key-directory';
import { sealSecret } from '@smgw/secrets';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { getTrace, recordMessage } from '@smgw/trace';
import { readWholeUpTo } from '../src/encrypt-copies.ts';
import { type EncryptDeps, encryptEnvelope } from '../src/encrypt-envelope.ts';
import {
  createGpgHome,
  createTestPki,
  encryptDeps,
  type GpgHome,
  handlerContext,
  INNER_ENTITY,
  insertCertificate,
  insertPgpKey,
  insertTrustAnchor,
  MASTER_KEY,
  outboundMail,
  type TestCa,
  type TestCertificate,
  type TestPki,
  testEnvelope,
} from './fixtures.ts';

const SMIME_RECIPIENT = 'smime@buerger.example';
const PGP_RECIPIENT = 'pgp@buerger.example';

describe('signing with the agency key before encryption', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let gpg: GpgHome;
  let blobStore: BlobStore;
  let ca: TestCa;
  let recipientCertificate: TestCertificate;
  let agencyCertificate: TestCertificate;
  let agencyPgpFingerprint: string;
  /** The head of the signing agency: a second address with keys of its own. */
  let headCertificate: TestCertificate;
  let headPgpFingerprint: string;

  before(async () => {
    [db, pki, gpg] = await Promise.all([createTestDatabase(), createTestPki(), createGpgHome()]);
    blobStore = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    ca = await pki.ca('Signing-Test-CA');
    await insertTrustAnchor(db.pool, ca.der);
    recipientCertificate = await pki.leaf(ca, SMIME_RECIPIENT);
    await insertCertificate(db.pool, recipientCertificate);
    await insertPgpKey(db.pool, await gpg.exportPublic(await gpg.generateKey(PGP_RECIPIENT)), 'approved');

    // The signing agency's keys, sealed the way the admin API seals an upload (agency-routes.ts).
    agencyCertificate = await pki.leaf(ca, 'clerk@signiert.example');
    agencyPgpFingerprint = await gpg.generateKey('clerk@signiert.example');
    const signing = await agency('Signierendes Amt', 'signiert.example', true, 'clerk@signiert.example');
    assert.ok(signing);
    const pkcs8 = createPrivateKey(agencyCertificate.keyPem).export({ format: 'der', type: 'pkcs8' });
    await storeKey('clerk@signiert.example', 'smime', agencyCertificate.fingerprint, pkcs8, {
      certificate: agencyCertificate.der,
    });
    await storeKey(
      'clerk@signiert.example',
      'pgp',
      agencyPgpFingerprint,
      Buffer.from(await gpg.exportSecret(agencyPgpFingerprint)),
      { publicArmored: await gpg.exportPublic(agencyPgpFingerprint) },
    );
    // A second address of the signing agency, with its own keys.
    headCertificate = await pki.leaf(ca, 'leitung@signiert.example');
    headPgpFingerprint = await gpg.generateKey('leitung@signiert.example');
    assert.equal(
      (
        await putAgencyAddress(db.pool, {
          agencyId: signing,
          address: 'leitung@signiert.example',
          verifySignatures: false,
        })
      ).kind,
      'created',
    );
    await storeKey(
      'leitung@signiert.example',
      'smime',
      headCertificate.fingerprint,
      createPrivateKey(headCertificate.keyPem).export({ format: 'der', type: 'pkcs8' }),
      { certificate: headCertificate.der },
    );
    await storeKey(
      'leitung@signiert.example',
      'pgp',
      headPgpFingerprint,
      Buffer.from(await gpg.exportSecret(headPgpFingerprint)),
      { publicArmored: await gpg.exportPublic(headPgpFingerprint) },
    );
    // The same keys' kind held by an agency that does not sign.
    await agency('Nicht signierendes Amt', 'unsigniert.example', false, 'clerk@unsigniert.example');
    const unsignedCertificate = await pki.leaf(ca, 'clerk@unsigniert.example');
    await storeKey(
      'clerk@unsigniert.example',
      'smime',
      unsignedCertificate.fingerprint,
      createPrivateKey(unsignedCertificate.keyPem).export({ format: 'der', type: 'pkcs8' }),
      { certificate: unsignedCertificate.der },
    );
    // Signing on, but no key for the sender.
    await agency('Amt ohne Schluessel', 'ohne-schluessel.example', true, 'clerk@ohne-schluessel.example');
    // Signing on, and the OpenPGP key held is only a public key: openpgp refuses to sign with it.
    await agency('Amt mit kaputtem Schluessel', 'kaputt.example', true, 'clerk@kaputt.example');
    const publicOnly = await gpg.generateKey('clerk@kaputt.example');
    const publicArmored = await gpg.exportPublic(publicOnly);
    await storeKey('clerk@kaputt.example', 'pgp', publicOnly, Buffer.from(publicArmored), { publicArmored });
  });
  after(async () => {
    await gpg?.close();
    await pki?.remove();
    await db?.drop();
  });

  async function agency(name: string, domain: string, signOutbound: boolean, address: string): Promise<string> {
    const created = await createAgency(db.pool, { name, domains: [domain], signOutbound, now: new Date() });
    assert.equal(created.kind, 'created');
    const id = created.kind === 'created' ? created.id : '';
    assert.equal((await putAgencyAddress(db.pool, { agencyId: id, address, verifySignatures: false })).kind, 'created');
    return id;
  }

  async function storeKey(
    address: string,
    kind: 'smime' | 'pgp',
    fingerprint: string,
    secret: Buffer,
    publicPart: { certificate?: Buffer; publicArmored?: string },
  ): Promise<void> {
    await addAgencyKey(db.pool, {
      address,
      kind,
      fingerprint,
      certificate: publicPart.certificate ?? null,
      publicArmored: publicPart.publicArmored ?? null,
      privateKeySealed: sealSecret(MASTER_KEY, secret, { aad: agencyKeyAad(address, fingerprint) }),
      now: new Date(),
    });
  }

  const deps = (overrides: Partial<EncryptDeps> = {}): EncryptDeps =>
    encryptDeps(
      db.pool,
      blobStore,
      {
        internalDomains: ['signiert.example', 'unsigniert.example', 'ohne-schluessel.example', 'kaputt.example'],
        ...overrides,
      },
      1000,
    );

  /**
   * Encrypts one message by `author` (the From address ingest checked; also the envelope sender unless `envelope`
   * says otherwise) to an S/MIME and a PGP recipient; the two copies by form.
   */
  async function send(
    author: string,
    overrides: Partial<EncryptDeps> = {},
    appendToBody = Buffer.alloc(0),
    envelopeOverrides: Partial<Envelope> = {},
  ): Promise<{ envelope: Envelope; smime: Buffer; pgp: Buffer }> {
    const recipients = [SMIME_RECIPIENT, PGP_RECIPIENT];
    const id = newMessageId();
    const blob = await blobStore.put(Readable.from([outboundMail(recipients), appendToBody]), { messageId: id });
    const envelope = testEnvelope(blob, 'outbound', {
      id,
      recipients,
      mailFrom: author,
      author,
      ...envelopeOverrides,
    });
    await recordMessage(db.pool, envelope);
    const outcome = await encryptEnvelope(deps(overrides), envelope, handlerContext());
    assert.equal(outcome.kind, 'next', JSON.stringify(outcome));
    const children = outcome.kind === 'next' ? outcome.envelopes : [];
    const copy = async (form: string) => {
      const child = children.find((c) => c.verdicts.crypto?.form === form);
      assert.ok(child, `a ${form} copy`);
      return blobStore.readAll(child.blob.ref);
    };
    return { envelope, smime: await copy('smime'), pgp: await copy('pgp') };
  }

  async function opensslDecrypt(message: Buffer): Promise<Buffer> {
    const file = await pki.file(`in-${Date.now()}-${Math.random()}.eml`, message);
    return pki.openssl([
      'cms',
      '-decrypt',
      '-in',
      file,
      '-recip',
      recipientCertificate.certPath,
      '-inkey',
      recipientCertificate.keyPath,
    ]);
  }

  async function gpgDecrypt(message: Buffer): Promise<{ stdout: Buffer; status: string }> {
    const armored = /-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/.exec(message.toString('latin1'));
    assert.ok(armored, 'an armored PGP message');
    const decrypted = await gpg.gpg(['--decrypt'], armored[0]);
    assert.equal(decrypted.code, 0, decrypted.stderr);
    return { stdout: decrypted.stdout, status: decrypted.stderr };
  }

  async function encryptEvents(id: string) {
    const trace = await getTrace(db.pool, id);
    return trace?.events.filter((e) => e.stage === 'encrypt') ?? [];
  }

  /** openssl cms -verify of the decrypted S/MIME copy: the verified content and the signer's certificate (DER). */
  async function opensslVerify(envelope: Envelope, smime: Buffer): Promise<{ content: Buffer; signer: Buffer }> {
    const signed = await opensslDecrypt(smime);
    const signedFile = await pki.file(`${envelope.id}.signed.eml`, signed);
    const signerFile = `${envelope.id}.signer.pem`;
    const content = await pki.openssl([
      ...['cms', '-verify', '-in', signedFile, '-CAfile', ca.certPath],
      ...['-purpose', 'any', '-signer', signerFile],
    ]);
    return { content, signer: await pki.openssl(['x509', '-in', signerFile, '-outform', 'DER']) };
  }

  it('signs the S/MIME copy with the agency certificate: openssl decrypts, then verifies, and gets the original entity', async () => {
    const { envelope, smime } = await send('clerk@signiert.example');
    const signed = await opensslDecrypt(smime);
    assert.match(
      signed.toString('latin1'),
      /^Content-Type: multipart\/signed; protocol="application\/pkcs7-signature"/,
    );

    const { content: verified, signer } = await opensslVerify(envelope, smime);
    assert.ok(verified.equals(INNER_ENTITY), 'the verified content is the original entity');
    assert.ok(signer.equals(agencyCertificate.der), 'signed by the agency certificate');

    const events = await encryptEvents(envelope.id);
    const smimeEvent = events.find((e) => e.recipient === SMIME_RECIPIENT);
    assert.equal(smimeEvent?.event, 'recipient.encrypted');
    assert.equal((smimeEvent?.data as { signed?: boolean } | undefined)?.signed, true);
    assert.ok(!events.some((e) => e.event === 'message.not-signed'));
  });

  it('signs the PGP copy with the agency key: gpg reports a good signature from it', async () => {
    const { envelope, pgp } = await send('clerk@signiert.example');
    const { stdout, status } = await gpgDecrypt(pgp);
    assert.ok(stdout.equals(INNER_ENTITY), 'gpg gives back the original entity');
    assert.match(status, /\[GNUPG:\] GOODSIG [0-9A-F]+ clerk@signiert\.example/);
    assert.match(status, new RegExp(`\\[GNUPG:\\] VALIDSIG ${agencyPgpFingerprint} `));
    const events = await encryptEvents(envelope.id);
    const pgpEvent = events.find((e) => e.recipient === PGP_RECIPIENT);
    assert.equal((pgpEvent?.data as { signed?: boolean } | undefined)?.signed, true);
  });

  it('does not sign when the sender agency has signing off, although it holds a key', async () => {
    const { envelope, smime, pgp } = await send('clerk@unsigniert.example');
    assert.ok((await opensslDecrypt(smime)).equals(INNER_ENTITY), 'the S/MIME copy is the entity, not signed');
    const { stdout, status } = await gpgDecrypt(pgp);
    assert.ok(stdout.equals(INNER_ENTITY));
    assert.doesNotMatch(status, /SIG_ID|GOODSIG|NEWSIG/);
    const events = await encryptEvents(envelope.id);
    for (const recipient of [SMIME_RECIPIENT, PGP_RECIPIENT]) {
      const event = events.find((e) => e.recipient === recipient);
      assert.equal((event?.data as { signed?: boolean } | undefined)?.signed, false, recipient);
    }
    assert.ok(!events.some((e) => e.event === 'message.not-signed'), 'signing off is no reason to report');
  });

  it('sends unsigned, still encrypted, copies when signing is on but the sender has no key, and says why', async () => {
    const { envelope, smime, pgp } = await send('clerk@ohne-schluessel.example');
    assert.ok(!smime.includes(Buffer.from('anbei Ihr Bescheid')), 'no plaintext outside');
    assert.ok((await opensslDecrypt(smime)).equals(INNER_ENTITY));
    assert.ok((await gpgDecrypt(pgp)).stdout.equals(INNER_ENTITY));

    const events = await encryptEvents(envelope.id);
    const notSigned = events.filter((e) => e.event === 'message.not-signed');
    assert.deepEqual(notSigned.map((e) => [(e.data as { form?: string } | undefined)?.form, e.code]).sort(), [
      ['pgp', 'ENCRYPT_NO_SIGNING_KEY'],
      ['smime', 'ENCRYPT_NO_SIGNING_KEY'],
    ]);
    assert.match(notSigned[0]?.reason ?? '', /clerk@ohne-schluessel\.example/);
    for (const recipient of [SMIME_RECIPIENT, PGP_RECIPIENT]) {
      const event = events.find((e) => e.recipient === recipient);
      assert.equal(event?.event, 'recipient.encrypted');
      assert.equal((event?.data as { signed?: boolean } | undefined)?.signed, false, recipient);
    }
  });

  it('sends unsigned copies, and says why, when the agency keys do not unseal under the master key', async () => {
    const { envelope, smime, pgp } = await send('clerk@signiert.example', { masterKey: Buffer.alloc(32, 9) });
    assert.ok((await opensslDecrypt(smime)).equals(INNER_ENTITY), 'the S/MIME copy is encrypted, not signed');
    assert.ok((await gpgDecrypt(pgp)).stdout.equals(INNER_ENTITY));
    const notSigned = (await encryptEvents(envelope.id)).filter((e) => e.event === 'message.not-signed');
    assert.deepEqual(notSigned.map((e) => e.code).sort(), ['SECRET_WRONG_MASTER_KEY', 'SECRET_WRONG_MASTER_KEY']);
  });

  it('sends the OpenPGP copy unsigned, and says why, when openpgp refuses the agency key', async () => {
    const { envelope, pgp } = await send('clerk@kaputt.example');
    const { stdout, status } = await gpgDecrypt(pgp);
    assert.ok(stdout.equals(INNER_ENTITY), 'the whole entity, although the signed attempt was refused first');
    assert.doesNotMatch(status, /SIG_ID|GOODSIG|NEWSIG/);
    const events = await encryptEvents(envelope.id);
    const notSigned = events.filter((e) => e.event === 'message.not-signed');
    assert.deepEqual(notSigned.map((e) => [(e.data as { form?: string } | undefined)?.form, e.code]).sort(), [
      ['pgp', 'PGP_SIGNING_KEY_UNUSABLE'],
      ['smime', 'ENCRYPT_NO_SIGNING_KEY'],
    ]);
    const pgpEvent = events.find((e) => e.recipient === PGP_RECIPIENT);
    assert.equal((pgpEvent?.data as { signed?: boolean } | undefined)?.signed, false);
  });

  it("signs with the key of the From address ingest checked, not with the envelope sender's: openssl and gpg name the head", async () => {
    const { envelope, smime, pgp } = await send('leitung@signiert.example', {}, Buffer.alloc(0), {
      mailFrom: 'clerk@signiert.example',
    });
    const { content, signer } = await opensslVerify(envelope, smime);
    assert.ok(content.equals(INNER_ENTITY));
    assert.ok(signer.equals(headCertificate.der), 'signed by the certificate of the From address');
    assert.ok(!signer.equals(agencyCertificate.der));
    const { status } = await gpgDecrypt(pgp);
    assert.match(status, new RegExp(`\\[GNUPG:\\] VALIDSIG ${headPgpFingerprint} `));
    assert.doesNotMatch(status, new RegExp(agencyPgpFingerprint));
  });

  it("never falls back to the envelope sender's key when the envelope names no checked author, and says why", async () => {
    const { envelope, smime, pgp } = await send('clerk@signiert.example', {}, Buffer.alloc(0), { author: undefined });
    assert.ok((await opensslDecrypt(smime)).equals(INNER_ENTITY), 'encrypted, not signed');
    assert.doesNotMatch((await gpgDecrypt(pgp)).status, /SIG_ID|GOODSIG|NEWSIG/);
    const notSigned = (await encryptEvents(envelope.id)).filter((e) => e.event === 'message.not-signed');
    assert.deepEqual(
      notSigned.map((e) => e.code),
      ['ENCRYPT_NO_CHECKED_AUTHOR', 'ENCRYPT_NO_CHECKED_AUTHOR'],
    );
  });

  it('sends an S/MIME copy too large to sign encrypted but unsigned, whole, and says why', async () => {
    const padding = Buffer.from('Eine lange Anlage.\r\n'.repeat(4000)); // ~76 KiB: over 1 KiB + the 64 KiB slack
    const { envelope, smime, pgp } = await send('clerk@signiert.example', { maxMessageBytes: 1024 }, padding);
    const opened = await opensslDecrypt(smime);
    assert.ok(opened.equals(Buffer.concat([INNER_ENTITY, padding])), 'the whole entity, not signed');
    assert.ok((await gpgDecrypt(pgp)).stdout.equals(Buffer.concat([INNER_ENTITY, padding])), 'OpenPGP streams');
    const events = await encryptEvents(envelope.id);
    const notSigned = events.filter((e) => e.event === 'message.not-signed');
    assert.deepEqual(
      notSigned.map((e) => [(e.data as { form?: string } | undefined)?.form, e.code]),
      [['smime', 'ENCRYPT_TOO_LARGE_TO_SIGN']],
    );
    const pgpEvent = events.find((e) => e.recipient === PGP_RECIPIENT);
    assert.equal((pgpEvent?.data as { signed?: boolean } | undefined)?.signed, true, 'the OpenPGP copy is signed');
  });
});

describe('readWholeUpTo', () => {
  const chunks = ['first ', 'second ', 'third'].map((c) => Buffer.from(c));

  it('gives the whole stream when it is not longer than the limit', async () => {
    const read = await readWholeUpTo(Readable.from(chunks), 18);
    assert.ok('whole' in read);
    assert.equal(read.whole.toString(), 'first second third');
  });

  it('gives a longer stream back whole, what was read first and then the rest, so nothing is read twice', async () => {
    const read = await readWholeUpTo(Readable.from(chunks), 8);
    assert.ok('tooLarge' in read);
    const again: Buffer[] = [];
    for await (const chunk of read.tooLarge) again.push(chunk as Buffer);
    assert.equal(Buffer.concat(again).toString(), 'first second third');
  });
});
