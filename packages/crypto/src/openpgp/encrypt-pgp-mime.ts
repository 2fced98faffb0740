// Outbound OpenPGP: the MIME entity encrypted (and optionally signed) as one RFC 3156 PGP/MIME message for all
// recipient keys. Without a signing key (the common case) and with recipient keys that openpgp would give SEIPDv1 with
// AES-256 anyway, the fast path writes the message itself with node:crypto (seipd-v1-writer.ts, armor-writer.ts) and
// takes only the session key packets from openpgp; everything else goes through openpgp. Either way the content
// streams, so memory does not grow with the message size (figures in README.md).
import { Readable } from 'node:stream';
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web';
import { toCrlf } from '@smgw/mime';
import * as openpgp from 'openpgp';
import { pooledRandomBytes } from '../random-pool.ts';
import { MessageArmorWriter } from './armor-writer.ts';
import { describeError, PgpError } from './errors.ts';
import { formatOuterHeaders, type OuterHeaders } from './outer-headers.ts';
import { type ArmoredPrivateKey, fingerprintOf, unlockPrivateKey } from './private-keys.ts';
import { type RecipientKey, readRecipientKey, takesSeipdV1Aes256 } from './recipient-keys.ts';
import { SeipdV1Writer } from './seipd-v1-writer.ts';
import { sessionKeyPacket, writesNatively } from './session-key-packets.ts';

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

const CHUNK_BYTES = 64 * 1024;
const EMPTY = Buffer.alloc(0);
const BOUNDARY_BYTES = 16;
const SESSION_KEY_BYTES = 32;
const PREFIX_BYTES = 18; // one AES block and two repeated octets (RFC 4880 §5.13)

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
  const recipients = await Promise.all(input.recipientKeys.map((armored) => readRecipientKey(armored, now)));
  const encryptionKeys = recipients.map((recipient) => recipient.publicKey);
  const signingKeys = input.signingKey ? [await readSigningKey(input.signingKey, now)] : [];
  // One draw for all random bytes: boundary, session key, prefix of the encrypted data.
  const random = pooledRandomBytes(BOUNDARY_BYTES + SESSION_KEY_BYTES + PREFIX_BYTES);
  const boundary = `smgw-pgp-${random.toString('hex', 0, BOUNDARY_BYTES)}`;

  if (signingKeys.length === 0 && (await allTakeSeipdV1Aes256(encryptionKeys, now))) {
    const sessionKey = random.subarray(BOUNDARY_BYTES, BOUNDARY_BYTES + SESSION_KEY_BYTES);
    let sessionKeyPackets: Buffer;
    let seipd: SeipdV1Writer;
    try {
      seipd = new SeipdV1Writer(sessionKey, now, random.subarray(BOUNDARY_BYTES + SESSION_KEY_BYTES));
      sessionKeyPackets = recipients.every((recipient) => writesNatively(recipient.encryptionKeyPacket))
        ? nativeSessionKeyPackets(recipients, sessionKey)
        : await openpgpSessionKeyPackets(recipients, sessionKey, now);
    } finally {
      random.fill(0); // the cipher holds its own copy of the key; ours is not needed any more
    }
    const head = mimeHead(outerHeaders, boundary);
    const tail = mimeTail(boundary);
    // A Buffer is encrypted by a synchronous generator (no promise per chunk); a stream needs the async one. Object
    // mode: each piece passes as it is (a byte-mode stream would join buffered pieces into a new buffer on read).
    const parts = Buffer.isBuffer(input.content)
      ? pgpMimeFromBuffer(input.content, head, tail, sessionKeyPackets, seipd)
      : pgpMimeFromStream(input.content, head, tail, sessionKeyPackets, seipd);
    return Readable.from(parts, { objectMode: true, highWaterMark: 2 });
  }

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

  return Readable.from(pgpMimeParts(outerHeaders, boundary, crlfLines(armored)), { objectMode: false });
}

/** The PKESK packets for recipients whose keys are all RSA or cv25519, written with node:crypto. */
function nativeSessionKeyPackets(recipients: RecipientKey[], sessionKey: Buffer): Buffer {
  try {
    return Buffer.concat(recipients.map((recipient) => sessionKeyPacket(recipient.encryptionKeyPacket, sessionKey)));
  } catch (error) {
    throw sessionKeyFailure(error);
  }
}

/** The PKESK packets written by openpgp, for any kind of key it accepts. */
async function openpgpSessionKeyPackets(recipients: RecipientKey[], sessionKey: Buffer, now: Date): Promise<Buffer> {
  try {
    const packets = await openpgp.encryptSessionKey({
      data: sessionKey,
      algorithm: 'aes256',
      encryptionKeys: recipients.map((recipient) => recipient.publicKey),
      format: 'binary',
      date: now,
    });
    return Buffer.from(packets);
  } catch (error) {
    throw sessionKeyFailure(error);
  }
}

function sessionKeyFailure(error: unknown): PgpError {
  return new PgpError('PGP_ENCRYPT_FAILED', `could not encrypt the session key: ${describeError(error)}`, {
    cause: error,
  });
}

async function allTakeSeipdV1Aes256(keys: openpgp.PublicKey[], now: Date): Promise<boolean> {
  const verdicts = await Promise.all(keys.map((key) => takesSeipdV1Aes256(key, now)));
  return verdicts.every(Boolean);
}

/**
 * The PGP/MIME message for a Buffer: the MIME head and the armored session key packets, then the SEIPDv1 packet
 * chunk by chunk, the end of the armor and the MIME tail; one buffer per chunk (one in all for up to 64 KiB).
 */
function* pgpMimeFromBuffer(
  content: Buffer,
  head: Buffer,
  tail: Buffer,
  sessionKeyPackets: Buffer,
  seipd: SeipdV1Writer,
): Generator<Buffer> {
  try {
    const armor = new MessageArmorWriter();
    // What goes in front of the next armored text, until some has been written.
    let lead: { head: Buffer; binary: Buffer[] } | undefined = { head, binary: [sessionKeyPackets] };
    for (let offset = 0; offset < content.length; offset += CHUNK_BYTES) {
      const binary = seipd.write(content.subarray(offset, Math.min(offset + CHUNK_BYTES, content.length)));
      if (binary.length === 0) continue; // the literal packet holds back its last part until the end
      const out = lead ? armor.write([...lead.binary, ...binary], lead.head) : armor.write(binary);
      lead = undefined;
      if (out.length > 0) yield out;
    }
    const binary = seipd.end();
    yield lead ? armor.end([...lead.binary, ...binary], lead.head, tail) : armor.end(binary, EMPTY, tail);
  } catch (error) {
    throw streamingFailure(error);
  }
}

/** The same for a stream of content, as it arrives: the head is sent before the content is read. */
async function* pgpMimeFromStream(
  content: Readable,
  head: Buffer,
  tail: Buffer,
  sessionKeyPackets: Buffer,
  seipd: SeipdV1Writer,
): AsyncGenerator<Buffer> {
  const armor = new MessageArmorWriter();
  yield armor.write([sessionKeyPackets], head);
  try {
    for await (const chunk of content) {
      const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array | string);
      const out = armor.write(seipd.write(bytes));
      if (out.length > 0) yield out;
    }
    yield armor.end(seipd.end(), EMPTY, tail);
  } catch (error) {
    throw streamingFailure(error);
  }
}

// openpgp armors with bare LF and never emits CR, so every LF becomes CRLF (mail needs CRLF; ingest refuses bare LF).
async function* crlfLines(armored: NodeWebReadableStream<string>): AsyncGenerator<Buffer> {
  for await (const chunk of armored) yield Buffer.from(toCrlf(chunk), 'latin1');
}

async function* pgpMimeParts(
  outerHeaders: string,
  boundary: string,
  armored: AsyncIterable<Buffer>,
): AsyncGenerator<Buffer> {
  yield mimeHead(outerHeaders, boundary);
  try {
    for await (const chunk of armored) yield chunk;
  } catch (error) {
    throw streamingFailure(error);
  }
  yield mimeTail(boundary);
}

function mimeHead(outerHeaders: string, boundary: string): Buffer {
  return Buffer.from(
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
}

function mimeTail(boundary: string): Buffer {
  return Buffer.from(`\r\n--${boundary}--\r\n`);
}

function streamingFailure(error: unknown): PgpError {
  return new PgpError('PGP_ENCRYPT_FAILED', `encryption failed while streaming: ${describeError(error)}`, {
    cause: error,
  });
}

// Views on the Buffer's memory, not copies (openpgp only reads them).
function* chunksOf(content: Buffer): Generator<Uint8Array> {
  for (let offset = 0; offset < content.length; offset += CHUNK_BYTES) {
    const end = Math.min(offset + CHUNK_BYTES, content.length);
    yield new Uint8Array(content.buffer, content.byteOffset + offset, end - offset);
  }
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
