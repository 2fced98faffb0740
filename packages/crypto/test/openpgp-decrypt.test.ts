// What the real gpg encrypts to agency keys, decryptPgpMime opens, as PGP/MIME and as inline PGP, with signature
// information when gpg signed; broken, foreign and unsupported input gives typed errors, never a crash.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { simpleParser } from 'mailparser';
import * as openpgp from 'openpgp';
import { decryptPgpMime } from '../src/openpgp/index.ts';
import { createGpgHome, type GpgHome, sampleEntity, wrapAsInline, wrapAsPgpMime } from './openpgp-gpg.ts';

describe('decryptPgpMime with gpg as the sender', () => {
  let gpg: GpgHome;
  let curveAgency: { armored: string; fingerprint: string };
  let rsaAgency: { armored: string; fingerprint: string };
  let protectedAgency: { armored: string; fingerprint: string };
  let senderFingerprint: string;
  let senderPublic: string;

  async function gpgEncrypt(args: string[], input: Buffer | string): Promise<string> {
    const result = await gpg.run(['--armor', '--encrypt', ...args], input);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.toString('utf8');
  }

  before(async () => {
    gpg = await createGpgHome();
    const curve = await openpgp.generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ name: 'Bauamt', email: 'bauamt@stadt.example.gov' }],
      format: 'armored',
    });
    curveAgency = {
      armored: curve.privateKey,
      fingerprint: (await openpgp.readKey({ armoredKey: curve.publicKey })).getFingerprint().toUpperCase(),
    };
    await gpg.importKey(curve.publicKey);

    const rsaFingerprint = await gpg.generateKey({
      kind: 'rsa3072',
      name: 'Finanzamt',
      email: 'finanzamt@stadt.example.gov',
    });
    rsaAgency = { armored: await gpg.exportSecret(rsaFingerprint), fingerprint: rsaFingerprint };

    const locked = await openpgp.generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ email: 'locked@stadt.example.gov' }],
      passphrase: 'correct horse',
      format: 'armored',
    });
    protectedAgency = {
      armored: locked.privateKey,
      fingerprint: (await openpgp.readKey({ armoredKey: locked.publicKey })).getFingerprint().toUpperCase(),
    };
    await gpg.importKey(locked.publicKey);

    senderFingerprint = await gpg.generateKey({ kind: 'cv25519', name: 'Bürgerin', email: 'sender@example.net' });
    senderPublic = await gpg.exportPublic(senderFingerprint);
  });

  after(async () => {
    await gpg?.close();
  });

  it('opens PGP/MIME that gpg encrypted to our Curve25519 key and gives back the exact entity', async () => {
    const entity = sampleEntity();
    const armored = await gpgEncrypt(['-r', curveAgency.fingerprint], entity);
    const result = await decryptPgpMime({
      message: wrapAsPgpMime(armored),
      privateKeys: [{ armored: curveAgency.armored }],
    });
    assert.equal(result.format, 'pgp-mime');
    assert.deepEqual(result.entity, entity);
    assert.equal(result.signed, false);
    assert.deepEqual(result.signatures, []);
    assert.equal(result.decryptedWith, curveAgency.fingerprint);
  });

  it('opens PGP/MIME encrypted to a gpg-made RSA 3072 key, choosing it among several keys, from a stream', async () => {
    const entity = sampleEntity('RSA\r\n');
    const armored = await gpgEncrypt(['-r', rsaAgency.fingerprint], entity);
    const result = await decryptPgpMime({
      message: Readable.from([wrapAsPgpMime(armored)]),
      privateKeys: [{ armored: curveAgency.armored }, { armored: rsaAgency.armored }],
    });
    assert.deepEqual(result.entity, entity);
    assert.equal(result.decryptedWith, rsaAgency.fingerprint);
  });

  it('reports a valid signature when gpg signed and encrypted and the sender key is given', async () => {
    const entity = sampleEntity('signed\r\n');
    const armored = await gpgEncrypt(['--sign', '-u', senderFingerprint, '-r', curveAgency.fingerprint], entity);
    const result = await decryptPgpMime({
      message: wrapAsPgpMime(armored),
      privateKeys: [{ armored: curveAgency.armored }],
      verificationKeys: [senderPublic],
    });
    assert.deepEqual(result.entity, entity);
    assert.equal(result.signed, true);
    assert.equal(result.signatures.length, 1);
    assert.equal(result.signatures[0]?.status, 'valid');
    assert.equal(result.signatures[0]?.fingerprint, senderFingerprint);
    assert.ok(result.signatures[0]?.created instanceof Date);
  });

  it('reports a signature by an unknown key without refusing the message', async () => {
    const entity = sampleEntity('signed, key unknown\r\n');
    const armored = await gpgEncrypt(['--sign', '-u', senderFingerprint, '-r', curveAgency.fingerprint], entity);
    const result = await decryptPgpMime({
      message: wrapAsPgpMime(armored),
      privateKeys: [{ armored: curveAgency.armored }],
    });
    assert.deepEqual(result.entity, entity);
    assert.equal(result.signed, true);
    assert.equal(result.signatures[0]?.status, 'unknown-key');
    assert.equal(result.signatures[0]?.keyId, senderFingerprint.slice(-16));
  });

  it('reports a signature as invalid when the signer key has since been revoked', async () => {
    const revokedLater = await gpg.generateKey({ kind: 'cv25519', name: 'Alt', email: 'alt@example.net' });
    const entity = sampleEntity('signed by a key revoked afterwards\r\n');
    const armored = await gpgEncrypt(['--sign', '-u', revokedLater, '-r', curveAgency.fingerprint], entity);
    await gpg.importKey(await gpg.revocationCertificate(revokedLater));
    const result = await decryptPgpMime({
      message: wrapAsPgpMime(armored),
      privateKeys: [{ armored: curveAgency.armored }],
      verificationKeys: [await gpg.exportPublic(revokedLater)],
    });
    assert.deepEqual(result.entity, entity);
    assert.equal(result.signatures[0]?.status, 'invalid');
    assert.equal(result.signatures[0]?.fingerprint, revokedLater);
    assert.ok(result.signatures[0]?.detail);
  });

  it('opens a message for a hidden recipient (gpg --throw-keyids) and refuses it without the key', async () => {
    const entity = sampleEntity('hidden\r\n');
    const message = wrapAsPgpMime(await gpgEncrypt(['--throw-keyids', '-r', curveAgency.fingerprint], entity));
    const result = await decryptPgpMime({
      message,
      privateKeys: [{ armored: rsaAgency.armored }, { armored: curveAgency.armored }],
    });
    assert.deepEqual(result.entity, entity);
    assert.equal(result.decryptedWith, curveAgency.fingerprint);
    await assert.rejects(decryptPgpMime({ message, privateKeys: [{ armored: rsaAgency.armored }] }), {
      code: 'PGP_NO_MATCHING_KEY',
    });
  });

  it('opens inline PGP in a text/plain body and returns it as a text/plain entity', async () => {
    const text = 'Guten Tag,\nhier meine Unterlagen.\n';
    const armored = await gpgEncrypt(['--sign', '-u', senderFingerprint, '-r', rsaAgency.fingerprint], text);
    const result = await decryptPgpMime({
      message: wrapAsInline(armored),
      privateKeys: [{ armored: rsaAgency.armored }],
      verificationKeys: [senderPublic],
    });
    assert.equal(result.format, 'inline');
    assert.equal(result.plaintext.toString('utf8'), text);
    assert.equal(result.signatures[0]?.status, 'valid');
    const parsed = await simpleParser(result.entity);
    assert.equal(parsed.text, text);
  });

  it('opens a message for a passphrase-protected key and refuses a wrong passphrase', async () => {
    const entity = sampleEntity('protected\r\n');
    const message = wrapAsPgpMime(await gpgEncrypt(['-r', protectedAgency.fingerprint], entity));
    const result = await decryptPgpMime({
      message,
      privateKeys: [{ armored: protectedAgency.armored, passphrase: 'correct horse' }],
    });
    assert.deepEqual(result.entity, entity);
    await assert.rejects(
      decryptPgpMime({ message, privateKeys: [{ armored: protectedAgency.armored, passphrase: 'wrong' }] }),
      { code: 'PGP_PRIVATE_KEY_UNUSABLE' },
    );
  });

  it('answers PGP_NO_MATCHING_KEY for a message encrypted to someone else', async () => {
    const armored = await gpgEncrypt(['-r', rsaAgency.fingerprint], sampleEntity());
    await assert.rejects(
      decryptPgpMime({ message: wrapAsPgpMime(armored), privateKeys: [{ armored: curveAgency.armored }] }),
      { code: 'PGP_NO_MATCHING_KEY' },
    );
  });

  it('answers PGP_DECRYPT_FAILED when the ciphertext was tampered with', async () => {
    const binary = await gpg.run(['--encrypt', '-r', curveAgency.fingerprint], sampleEntity());
    const tampered = Buffer.from(binary.stdout);
    tampered[tampered.length - 3] = (tampered[tampered.length - 3] ?? 0) ^ 0x01;
    const armored = openpgp.armor(openpgp.enums.armor.message, new Uint8Array(tampered));
    await assert.rejects(
      decryptPgpMime({ message: wrapAsPgpMime(armored), privateKeys: [{ armored: curveAgency.armored }] }),
      { code: 'PGP_DECRYPT_FAILED' },
    );
  });

  it('answers PGP_UNSUPPORTED for a message encrypted to a password only', async () => {
    const result = await gpg.run(
      ['--armor', '--symmetric', '--pinentry-mode', 'loopback', '--passphrase', 'secret'],
      sampleEntity(),
    );
    assert.equal(result.code, 0, result.stderr);
    await assert.rejects(
      decryptPgpMime({
        message: wrapAsPgpMime(result.stdout.toString()),
        privateKeys: [{ armored: curveAgency.armored }],
      }),
      { code: 'PGP_UNSUPPORTED' },
    );
  });

  it('answers PGP_UNSUPPORTED for multipart/encrypted of another protocol', async () => {
    const message = wrapAsPgpMime('-----BEGIN PGP MESSAGE-----\n\n-----END PGP MESSAGE-----\n')
      .toString()
      .replace('application/pgp-encrypted";', 'application/x-unknown-encrypted";');
    await assert.rejects(decryptPgpMime({ message: Buffer.from(message), privateKeys: [] }), {
      code: 'PGP_UNSUPPORTED',
    });
  });

  it('answers PGP_MALFORMED for garbage inside the armor and for truncated armor', async () => {
    const garbage = '-----BEGIN PGP MESSAGE-----\n\nbm90IGFuIG9wZW5wZ3AgbWVzc2FnZQ==\n-----END PGP MESSAGE-----\n';
    await assert.rejects(
      decryptPgpMime({ message: wrapAsPgpMime(garbage), privateKeys: [{ armored: curveAgency.armored }] }),
      { code: 'PGP_MALFORMED' },
    );
    const armored = await gpgEncrypt(['-r', curveAgency.fingerprint], sampleEntity());
    const cut = armored.slice(0, Math.floor(armored.length / 2));
    await assert.rejects(
      decryptPgpMime({ message: wrapAsPgpMime(cut), privateKeys: [{ armored: curveAgency.armored }] }),
      { code: 'PGP_MALFORMED' },
    );
    const lines = armored.split('\n');
    const shortened = [...lines.slice(0, 3), ...lines.slice(-3)].join('\n');
    await assert.rejects(
      decryptPgpMime({ message: wrapAsInline(shortened), privateKeys: [{ armored: curveAgency.armored }] }),
      { code: 'PGP_MALFORMED' },
    );
  });

  it('answers PGP_NOT_ENCRYPTED for plain mail and for random bytes', async () => {
    const plain = Buffer.from('From: a@example.net\r\nSubject: hi\r\n\r\nHello\r\n');
    await assert.rejects(decryptPgpMime({ message: plain, privateKeys: [] }), { code: 'PGP_NOT_ENCRYPTED' });
    const random = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256));
    await assert.rejects(decryptPgpMime({ message: random, privateKeys: [] }), { code: 'PGP_NOT_ENCRYPTED' });
  });

  it('answers PGP_PRIVATE_KEY_UNUSABLE when a configured private key is not a key', async () => {
    const armored = await gpgEncrypt(['-r', curveAgency.fingerprint], sampleEntity());
    await assert.rejects(decryptPgpMime({ message: wrapAsPgpMime(armored), privateKeys: [{ armored: 'junk' }] }), {
      code: 'PGP_PRIVATE_KEY_UNUSABLE',
    });
  });
});
