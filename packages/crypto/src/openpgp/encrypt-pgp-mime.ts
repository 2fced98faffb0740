// Outbound OpenPGP: the MIME entity encrypted (and optionally signed) as one RFC 3156 PGP/MIME message for all
// recipient keys. The content always streams through openpgp, so memory does not grow with the message size
// (figures in README.md).
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web';
import * as openpgp from 'openpgp';
import { describeError, PgpError } from './errors.ts';
import { formatOuterHeaders, type OuterHeaders } from './outer-headers.ts';
import { type ArmoredPrivateKey, fingerprintOf, unlockPrivateKey } from './private-keys.ts';

export interface EncryptPgpMimeInput {
  /** The complete MIME entity to protect (its headers and body); encrypted byte for byte. */
  content: Buffer | Readable;
  /** Armored public keys; one message is encrypted to all of them. */
  recipientKeys: string[];
  /** Sign before encrypting (one-pass signature inside the encrypted data, RFC 3156 §6.2). */
  signingKey?: ArmoredPrivateKey;
  headers: OuterHeaders;
  /** Time for key validity checks and the signature (default: now). */
  now?: Date;
}

// The MIME entity is often already compressed (attachments), and compression before encryption leaks through
// lengths; RFC 3156 does not need it.
const ENCRYPT_CONFIG: openpgp.PartialConfig = {
  preferredCompressionAlgorithm: openpgp.enums.compression.uncompressed,
};

/**
 * Encrypts `content` for every recipient key and returns the complete PGP/MIME message (outer headers included) as a
 * stream with CRLF line ends. Key problems reject the promise (PGP_NO_RECIPIENTS, PGP_RECIPIENT_KEY_UNUSABLE,
 * PGP_SIGNING_KEY_UNUSABLE, PGP_INVALID_HEADER) before any byte is produced; a failure while streaming (e.g. the
 * content stream fails) ends the returned stream with a PGP_ENCRYPT_FAILED error.
 */
export async function encryptPgpMime(input: EncryptPgpMimeInput): Promise<Readable> {
  const now = input.now ?? new Date();
  const outerHeaders = formatOuterHeaders(input.headers);
  if (input.recipientKeys.length === 0) throw new PgpError('PGP_NO_RECIPIENTS', 'no recipient key given');
  const encryptionKeys = await Promise.all(input.recipientKeys.map((armored) => readRecipientKey(armored, now)));
  const signingKeys = input.signingKey ? [await readSigningKey(input.signingKey, now)] : [];

  let armored: NodeWebReadableStream<string>;
  try {
    // Always streamed, a Buffer too: openpgp then holds a few chunks at a time instead of several copies of the
    // whole message (measured: 5 MiB as one Uint8Array peaked at ~85 MiB, streamed at ~8 MiB whatever the size).
    const source = Buffer.isBuffer(input.content) ? Readable.from(chunksOf(input.content)) : input.content;
    const binary = Readable.toWeb(source) as NodeWebReadableStream<Uint8Array>;
    const message = await openpgp.createMessage({ binary, date: now });
    armored = await openpgp.encrypt({
      message,
      encryptionKeys,
      signingKeys,
      format: 'armored',
      date: now,
      config: ENCRYPT_CONFIG,
    });
  } catch (error) {
    throw new PgpError('PGP_ENCRYPT_FAILED', `openpgp could not encrypt: ${describeError(error)}`, { cause: error });
  }

  const boundary = `smgw-pgp-${randomBytes(16).toString('hex')}`;
  return Readable.from(pgpMimeParts(outerHeaders, boundary, armored), { objectMode: false });
}

async function* pgpMimeParts(
  outerHeaders: string,
  boundary: string,
  armored: NodeWebReadableStream<string>,
): AsyncGenerator<Buffer> {
  yield Buffer.from(
    `${outerHeaders}MIME-Version: 1.0\r\n` +
      `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";\r\n boundary="${boundary}"\r\n` +
      '\r\n' +
      'This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n' +
      `--${boundary}\r\n` +
      'Content-Type: application/pgp-encrypted\r\n' +
      'Content-Description: PGP/MIME version identification\r\n' +
      '\r\n' +
      'Version: 1\r\n' +
      '\r\n' +
      `--${boundary}\r\n` +
      'Content-Type: application/octet-stream; name="encrypted.asc"\r\n' +
      'Content-Description: OpenPGP encrypted message\r\n' +
      'Content-Disposition: inline; filename="encrypted.asc"\r\n' +
      '\r\n',
  );
  try {
    for await (const chunk of armored) yield toCrlf(chunk);
  } catch (error) {
    throw new PgpError('PGP_ENCRYPT_FAILED', `encryption failed while streaming: ${describeError(error)}`, {
      cause: error,
    });
  }
  yield Buffer.from(`\r\n--${boundary}--\r\n`);
}

const CHUNK_BYTES = 64 * 1024;

// Views on the Buffer's memory, not copies (openpgp only reads them).
function* chunksOf(content: Buffer): Generator<Uint8Array> {
  for (let offset = 0; offset < content.length; offset += CHUNK_BYTES) {
    const end = Math.min(offset + CHUNK_BYTES, content.length);
    yield new Uint8Array(content.buffer, content.byteOffset + offset, end - offset);
  }
}

// openpgp armors with bare LF and never emits CR, so every LF becomes CRLF (mail needs CRLF; ingest refuses bare LF).
function toCrlf(text: string): Buffer {
  return Buffer.from(text.replaceAll('\n', '\r\n'), 'latin1');
}

async function readRecipientKey(armored: string, now: Date): Promise<openpgp.PublicKey> {
  let key: openpgp.Key;
  try {
    key = await openpgp.readKey({ armoredKey: armored });
  } catch (error) {
    throw new PgpError('PGP_RECIPIENT_KEY_UNUSABLE', `not a readable OpenPGP key: ${describeError(error)}`, {
      cause: error,
    });
  }
  const publicKey = key.isPrivate() ? key.toPublic() : key;
  try {
    // The same check openpgp.encrypt makes (expiry, revocation, minRSABits), but with the fingerprint in the error.
    await publicKey.getEncryptionKey(undefined, now);
  } catch (error) {
    throw new PgpError(
      'PGP_RECIPIENT_KEY_UNUSABLE',
      `key ${fingerprintOf(publicKey)} cannot encrypt: ${describeError(error)}`,
      { cause: error },
    );
  }
  return publicKey;
}

async function readSigningKey(given: ArmoredPrivateKey, now: Date): Promise<openpgp.PrivateKey> {
  const key = await unlockPrivateKey(given, 'PGP_SIGNING_KEY_UNUSABLE');
  try {
    await key.getSigningKey(undefined, now);
  } catch (error) {
    throw new PgpError('PGP_SIGNING_KEY_UNUSABLE', `key ${fingerprintOf(key)} cannot sign: ${describeError(error)}`, {
      cause: error,
    });
  }
  return key;
}
