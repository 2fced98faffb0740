// Failures of S/MIME encryption and decryption are typed SmimeErrors with stable codes, never crashes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { createBase64LineEncoder } from '../src/base64-lines.ts';
import { cmsBytesOf } from '../src/smime/decrypt-enveloped.ts';
import { decryptEnveloped, encryptEnveloped, SmimeError, type SmimeErrorCode } from '../src/smime/index.ts';
import { createOpensslWorkspace, type OpensslWorkspace, type TestIdentity } from './smime-openssl.ts';

const entity = Buffer.from('Content-Type: text/plain\r\n\r\nvertraulich\r\n');

const rejectsWith = async (promise: Promise<unknown>, code: SmimeErrorCode) =>
  assert.rejects(promise, (error: unknown) => error instanceof SmimeError && error.code === code);
const throwsWith = (fn: () => unknown, code: SmimeErrorCode) =>
  assert.throws(fn, (error: unknown) => error instanceof SmimeError && error.code === code);

describe('S/MIME errors and robustness', () => {
  let ws: OpensslWorkspace;
  let rsa: TestIdentity;
  let otherRsa: TestIdentity;
  let ec: TestIdentity;
  const keysOf = (id: TestIdentity) => [{ certificate: id.certificatePem, privateKey: id.keyPem }];

  before(async () => {
    ws = await createOpensslWorkspace();
    rsa = await ws.identity('rsa-2048', 'ours');
    otherRsa = await ws.identity('rsa-2048', 'theirs');
    ec = await ws.identity('p-256', 'ours-ec');
  });
  after(async () => {
    await ws.remove();
  });

  const encryptFor = async (id: TestIdentity, contentCipher: 'aes-256-cbc' | 'aes-256-gcm' = 'aes-256-cbc') =>
    buffer(encryptEnveloped({ content: entity, recipients: [{ certificate: id.certificatePem }], contentCipher }));

  it('round-trips its own messages for RSA and EC recipients, with CBC and GCM', async () => {
    for (const contentCipher of ['aes-256-cbc', 'aes-256-gcm'] as const) {
      const message = await buffer(
        encryptEnveloped({
          content: Readable.from([entity.subarray(0, 5), entity.subarray(5)]),
          recipients: [
            { certificate: rsa.certificatePem, keyTransport: 'rsa-oaep-sha256' },
            { certificate: ec.certificatePem },
          ],
          contentCipher,
        }),
      );
      assert.deepEqual(await decryptEnveloped({ message, keys: keysOf(rsa) }), entity);
      assert.deepEqual(await decryptEnveloped({ message, keys: keysOf(ec) }), entity);
    }
  });

  it('answers SMIME_NO_MATCHING_RECIPIENT when the message is for someone else', async () => {
    await rejectsWith(
      decryptEnveloped({ message: await encryptFor(otherRsa), keys: keysOf(rsa) }),
      'SMIME_NO_MATCHING_RECIPIENT',
    );
    await rejectsWith(
      decryptEnveloped({ message: await encryptFor(ec), keys: keysOf(rsa) }),
      'SMIME_NO_MATCHING_RECIPIENT',
    );
  });

  it('answers SMIME_MALFORMED for empty input, garbage and every truncation of a message', async () => {
    await rejectsWith(decryptEnveloped({ message: Buffer.alloc(0), keys: keysOf(rsa) }), 'SMIME_MALFORMED');
    await rejectsWith(decryptEnveloped({ message: 'kein S/MIME ¿', keys: keysOf(rsa) }), 'SMIME_MALFORMED');
    await rejectsWith(
      decryptEnveloped({
        message: Buffer.concat([Buffer.from([0x30, 0x84, 0xff, 0xff]), randomBytes(64)]),
        keys: keysOf(rsa),
      }),
      'SMIME_MALFORMED',
    );
    const der = cmsBytesOf(await encryptFor(rsa));
    for (let length = 0; length < der.length; length += 7) {
      await rejectsWith(decryptEnveloped({ message: der.subarray(0, length), keys: keysOf(rsa) }), 'SMIME_MALFORMED');
    }
  });

  it('never throws anything but an SmimeError for corrupted messages', async () => {
    for (const contentCipher of ['aes-256-cbc', 'aes-256-gcm'] as const) {
      const der = cmsBytesOf(await encryptFor(ec, contentCipher));
      for (let at = 0; at < der.length; at += 3) {
        const corrupted = Buffer.from(der);
        corrupted[at] = (corrupted[at] as number) ^ (1 + (at % 255));
        try {
          await decryptEnveloped({ message: corrupted, keys: keysOf(ec) });
        } catch (error) {
          assert.ok(error instanceof SmimeError, `byte ${at}: ${String(error)}`);
        }
      }
    }
  });

  it('answers SMIME_DECRYPT_FAILED when AES-GCM authentication fails', async () => {
    const der = cmsBytesOf(await encryptFor(rsa, 'aes-256-gcm'));
    // The mac is the last OCTET STRING before the five end-of-contents markers.
    const tampered = Buffer.from(der);
    const macByte = tampered.length - 11;
    tampered[macByte] = (tampered[macByte] as number) ^ 1;
    await rejectsWith(decryptEnveloped({ message: tampered, keys: keysOf(rsa) }), 'SMIME_DECRYPT_FAILED');
  });

  it('answers SMIME_NOT_ENVELOPED for other MIME entities and other CMS content types', async () => {
    await rejectsWith(decryptEnveloped({ message: entity, keys: keysOf(rsa) }), 'SMIME_NOT_ENVELOPED');
    const data = await ws.openssl([
      'cms',
      '-data_create',
      '-in',
      await ws.file('plain.txt', entity),
      '-outform',
      'DER',
    ]);
    await rejectsWith(decryptEnveloped({ message: data, keys: keysOf(rsa) }), 'SMIME_NOT_ENVELOPED');
  });

  it('answers SMIME_TOO_LARGE for a message over maxBytes, as bytes or as a stream', async () => {
    const message = await encryptFor(rsa);
    await rejectsWith(decryptEnveloped({ message, keys: keysOf(rsa), maxBytes: 100 }), 'SMIME_TOO_LARGE');
    const stream = Readable.from([message.subarray(0, 80), message.subarray(80)]);
    await rejectsWith(decryptEnveloped({ message: stream, keys: keysOf(rsa), maxBytes: 100 }), 'SMIME_TOO_LARGE');
    assert.deepEqual(await decryptEnveloped({ message, keys: keysOf(rsa), maxBytes: message.length }), entity);
  });

  it('answers SMIME_INVALID_KEY for a private key that does not belong to its certificate', async () => {
    const message = await encryptFor(rsa);
    await rejectsWith(
      decryptEnveloped({ message, keys: [{ certificate: rsa.certificatePem, privateKey: otherRsa.keyPem }] }),
      'SMIME_INVALID_KEY',
    );
    await rejectsWith(
      decryptEnveloped({ message, keys: [{ certificate: rsa.certificatePem, privateKey: 'not a key' }] }),
      'SMIME_INVALID_KEY',
    );
  });

  it('refuses header injection and headers the encryption sets itself', () => {
    const recipients = [{ certificate: rsa.certificatePem }];
    throwsWith(
      () => encryptEnveloped({ content: entity, recipients, headers: { Subject: 'x\r\nBcc: spy@evil.example' } }),
      'SMIME_INVALID_HEADER',
    );
    throwsWith(
      () => encryptEnveloped({ content: entity, recipients, headers: { 'Bad Name': 'x' } }),
      'SMIME_INVALID_HEADER',
    );
    throwsWith(
      () => encryptEnveloped({ content: entity, recipients, headers: [['Content-Type', 'text/plain']] }),
      'SMIME_INVALID_HEADER',
    );
  });

  it('refuses no recipients, unreadable certificates and unknown ciphers before producing anything', () => {
    throwsWith(() => encryptEnveloped({ content: entity, recipients: [] }), 'SMIME_INVALID_RECIPIENT');
    throwsWith(
      () => encryptEnveloped({ content: entity, recipients: [{ certificate: 'junk' }] }),
      'SMIME_INVALID_RECIPIENT',
    );
    throwsWith(
      () =>
        encryptEnveloped({
          content: entity,
          recipients: [{ certificate: rsa.certificatePem }],
          contentCipher: 'des-ede3-cbc' as 'aes-256-cbc',
        }),
      'SMIME_UNSUPPORTED_ALGORITHM',
    );
  });

  it('passes an error of the content stream on as an error of the output stream', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('blob store went away'));
      },
    });
    await assert.rejects(
      buffer(encryptEnveloped({ content: failing, recipients: [{ certificate: rsa.certificatePem }] })),
      {
        message: 'blob store went away',
      },
    );
  });

  it('encodes base64 lines identically however the input is chunked', () => {
    const data = randomBytes(1000);
    const expected = (data.toString('base64').match(/.{1,76}/g) ?? []).map((line) => `${line}\r\n`).join('');
    for (const step of [1, 5, 56, 57, 58, 200, 1000]) {
      const encoder = createBase64LineEncoder();
      const parts: Buffer[] = [];
      for (let at = 0; at < data.length; at += step) parts.push(encoder.push(data.subarray(at, at + step)));
      parts.push(encoder.end());
      assert.equal(Buffer.concat(parts).toString('latin1'), expected, `chunks of ${step}`);
    }
  });
});
