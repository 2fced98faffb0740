// What encryptPgpMime produces, the real gpg opens: PGP/MIME structure, exact entity back, several recipients,
// signatures gpg verifies, a 5 MB message streamed through.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { simpleParser } from 'mailparser';
import * as openpgp from 'openpgp';
import { encryptPgpMime, type OuterHeaders, PgpError } from '../src/openpgp/index.ts';
import { createGpgHome, type GpgHome, sampleEntity } from './openpgp-gpg.ts';

const headers: OuterHeaders = {
  from: 'Bauamt <bauamt@stadt.example.gov>',
  to: 'buerger@example.net',
  subject: 'Ihr Antrag – Bescheid',
  date: new Date('2026-11-28T08:00:00Z'),
  messageId: '01JDX0000TEST@gateway.example.gov',
};

/** The encrypted.asc part of a PGP/MIME message, after checking the RFC 3156 structure. */
async function encryptedPart(message: Buffer): Promise<Buffer> {
  assert.ok(!/(?<!\r)\n/.test(message.toString('latin1')), 'every line ends in CRLF');
  const parsed = await simpleParser(message);
  const contentType = parsed.headers.get('content-type') as { value: string; params: Record<string, string> };
  assert.equal(contentType.value, 'multipart/encrypted');
  assert.equal(contentType.params.protocol, 'application/pgp-encrypted');
  assert.equal(parsed.subject, headers.subject);
  assert.equal(parsed.messageId, `<${headers.messageId}>`);
  const [control, data] = parsed.attachments;
  assert.equal(control?.contentType, 'application/pgp-encrypted');
  assert.equal(control?.content.toString().trim(), 'Version: 1');
  assert.equal(data?.contentType, 'application/octet-stream');
  assert.equal(data?.filename, 'encrypted.asc');
  assert.equal(data?.contentDisposition, 'inline');
  return data.content;
}

async function gpgDecrypt(gpg: GpgHome, armored: Buffer) {
  const result = await gpg.run(['--decrypt'], armored);
  assert.equal(result.code, 0, result.stderr);
  return result;
}

describe('encryptPgpMime with gpg as the recipient', () => {
  let curveHome: GpgHome;
  let rsaHome: GpgHome;
  let curveKey: string;
  let rsaKey: string;
  let ourSigningKey: { armored: string; fingerprint: string };

  before(async () => {
    curveHome = await createGpgHome();
    rsaHome = await createGpgHome();
    const curveFingerprint = await curveHome.generateKey({
      kind: 'cv25519',
      name: 'Bürger',
      email: 'buerger@example.net',
    });
    curveKey = await curveHome.exportPublic(curveFingerprint);
    const rsaFingerprint = await rsaHome.generateKey({
      kind: 'rsa3072',
      name: 'Kanzlei',
      email: 'kanzlei@example.net',
    });
    rsaKey = await rsaHome.exportPublic(rsaFingerprint);
    const generated = await openpgp.generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ name: 'Bauamt', email: 'bauamt@stadt.example.gov' }],
      format: 'armored',
    });
    const signing = await openpgp.readKey({ armoredKey: generated.publicKey });
    ourSigningKey = { armored: generated.privateKey, fingerprint: signing.getFingerprint().toUpperCase() };
    await curveHome.importKey(generated.publicKey);
  });

  after(async () => {
    await curveHome?.close();
    await rsaHome?.close();
  });

  it('gives a Curve25519 recipient the exact original entity, uncompressed', async () => {
    const entity = sampleEntity();
    const message = await buffer(await encryptPgpMime({ content: entity, recipientKeys: [curveKey], headers }));
    const armored = await encryptedPart(message);
    const result = await gpgDecrypt(curveHome, armored);
    assert.deepEqual(result.stdout, entity);
    const packets = await curveHome.run(['--list-packets'], armored);
    assert.match(packets.stdout.toString(), /:literal data packet:/);
    assert.doesNotMatch(packets.stdout.toString(), /:compressed packet:/);
  });

  it('gives an RSA 3072 recipient the exact original entity', async () => {
    const entity = sampleEntity('RSA body\r\n');
    const message = await buffer(await encryptPgpMime({ content: entity, recipientKeys: [rsaKey], headers }));
    const result = await gpgDecrypt(rsaHome, await encryptedPart(message));
    assert.deepEqual(result.stdout, entity);
  });

  it('encrypts one message that each of two recipients opens with only their own key', async () => {
    const entity = sampleEntity('for both\r\n');
    const message = await buffer(await encryptPgpMime({ content: entity, recipientKeys: [curveKey, rsaKey], headers }));
    const armored = await encryptedPart(message);
    assert.deepEqual((await gpgDecrypt(curveHome, armored)).stdout, entity);
    assert.deepEqual((await gpgDecrypt(rsaHome, armored)).stdout, entity);
  });

  it('signs with our key so that gpg reports a good signature by it', async () => {
    const entity = sampleEntity('signed\r\n');
    const message = await buffer(
      await encryptPgpMime({
        content: entity,
        recipientKeys: [curveKey],
        signingKey: { armored: ourSigningKey.armored },
        headers,
      }),
    );
    const result = await gpgDecrypt(curveHome, await encryptedPart(message));
    assert.deepEqual(result.stdout, entity);
    assert.ok(
      result.status.some((line) => line.startsWith('GOODSIG ')),
      result.stderr,
    );
    assert.ok(
      result.status.some((line) => line.startsWith(`VALIDSIG ${ourSigningKey.fingerprint}`)),
      result.stderr,
    );
  });

  it('streams a 5 MB entity that gpg gives back byte for byte', async () => {
    const entity = Buffer.concat([sampleEntity(''), randomBytes(5 * 1024 * 1024)]);
    const chunks = function* () {
      for (let offset = 0; offset < entity.length; offset += 64 * 1024)
        yield entity.subarray(offset, offset + 64 * 1024);
    };
    const output = await encryptPgpMime({
      content: Readable.from(chunks()),
      recipientKeys: [curveKey, rsaKey],
      headers,
    });
    const armored = await encryptedPart(await buffer(output));
    const result = await gpgDecrypt(rsaHome, armored);
    assert.equal(result.stdout.length, entity.length);
    assert.ok(result.stdout.equals(entity));
  });

  it('refuses to encrypt without a recipient key', async () => {
    await assert.rejects(encryptPgpMime({ content: sampleEntity(), recipientKeys: [], headers }), {
      code: 'PGP_NO_RECIPIENTS',
    });
  });

  it('refuses an expired recipient key, naming its fingerprint', async () => {
    const fingerprint = await curveHome.generateKey({
      kind: 'cv25519',
      name: 'Kurz',
      email: 'kurz@example.net',
      expire: '1d',
    });
    const key = await curveHome.exportPublic(fingerprint);
    const later = new Date(Date.now() + 3 * 24 * 3600 * 1000);
    await assert.rejects(
      encryptPgpMime({ content: sampleEntity(), recipientKeys: [key], headers, now: later }),
      (error: unknown) =>
        error instanceof PgpError && error.code === 'PGP_RECIPIENT_KEY_UNUSABLE' && error.message.includes(fingerprint),
    );
  });

  it('refuses a recipient key that is not a key', async () => {
    await assert.rejects(encryptPgpMime({ content: sampleEntity(), recipientKeys: ['not a key'], headers }), {
      code: 'PGP_RECIPIENT_KEY_UNUSABLE',
    });
  });

  it('refuses a protected signing key without its passphrase', async () => {
    const generated = await openpgp.generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ email: 'locked@stadt.example.gov' }],
      passphrase: 'correct horse',
      format: 'armored',
    });
    await assert.rejects(
      encryptPgpMime({
        content: sampleEntity(),
        recipientKeys: [curveKey],
        signingKey: { armored: generated.privateKey },
        headers,
      }),
      { code: 'PGP_SIGNING_KEY_UNUSABLE' },
    );
    const output = await encryptPgpMime({
      content: sampleEntity(),
      recipientKeys: [curveKey],
      signingKey: { armored: generated.privateKey, passphrase: 'correct horse' },
      headers,
    });
    assert.ok((await buffer(output)).length > 0);
  });

  it('refuses header values that would inject a header line', async () => {
    await assert.rejects(
      encryptPgpMime({
        content: sampleEntity(),
        recipientKeys: [curveKey],
        headers: { ...headers, to: 'a@b\r\nBcc: x@y' },
      }),
      { code: 'PGP_INVALID_HEADER' },
    );
    await assert.rejects(
      encryptPgpMime({ content: sampleEntity(), recipientKeys: [curveKey], headers: { ...headers, subject: 'a\nb' } }),
      { code: 'PGP_INVALID_HEADER' },
    );
  });

  it('ends the output stream with PGP_ENCRYPT_FAILED when the content stream fails', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('blob store went away'));
      },
    });
    const output = await encryptPgpMime({ content: failing, recipientKeys: [curveKey], headers });
    await assert.rejects(buffer(output), { code: 'PGP_ENCRYPT_FAILED' });
  });
});
