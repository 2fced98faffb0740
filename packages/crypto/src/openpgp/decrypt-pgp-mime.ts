// Inbound OpenPGP: opens PGP/MIME (RFC 3156) and inline PGP (an armored block in a text/plain body) with the
// agency's private keys. Only authenticated plaintext is returned (openpgp checks the MDC before handing out data
// that was not streamed); signatures are reported, never a reason to refuse.
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { simpleParser } from 'mailparser';
import * as openpgp from 'openpgp';
import { describeError, PgpError } from './errors.ts';
import { type ArmoredPrivateKey, fingerprintOf, unlockPrivateKey } from './private-keys.ts';

export interface DecryptPgpMimeInput {
  /** The whole received message (headers and body). */
  message: Buffer | Readable;
  /** The agency's private keys; the message may be encrypted to any of them. */
  privateKeys: ArmoredPrivateKey[];
  /** Armored public keys to check signatures with (e.g. the sender's approved key); optional. */
  verificationKeys?: string[];
  /** Time for key validity and signature checks (default: now). */
  now?: Date;
  /**
   * Largest decrypted entity accepted (the caller's SMGW_MAX_MESSAGE_BYTES; default DEFAULT_MAX_DECRYPTED_BYTES).
   * Compressed data is inflated only up to it: a few MB of ciphertext can inflate to many GB.
   */
  maxBytes?: number;
}

/**
 * Session-key packets for our keys (their key id, or the wildcard one of a hidden recipient) that are tried. Each is
 * a private-key operation, and each distinct session key one decryption of the whole data, held in memory; an honest
 * message names each of our keys once, and hides a handful of recipients at most.
 */
export const MAX_SESSION_KEYS_TRIED = 8;

/**
 * OpenPGP packets a message may hold in all (a session-key packet per recipient key, the encrypted data, markers and
 * padding), counted before openpgp reads them: openpgp takes ~50 µs to read a session-key packet and ~0.3 ms to look
 * for our key in it (20,000 of them, 2.7 MB: 22 s), and a 50 MB message holds 380,000 of them, or 16 million padding
 * packets.
 */
export const MAX_SESSION_KEY_PACKETS = 1000;

/** SMGW_MAX_MESSAGE_BYTES's default. */
export const DEFAULT_MAX_DECRYPTED_BYTES = 50 * 1024 * 1024;

export type PgpSignatureStatus = 'valid' | 'invalid' | 'unknown-key';

export interface PgpSignatureInfo {
  /** Issuer key id of the signature, upper-case hex. */
  keyId: string;
  status: PgpSignatureStatus;
  /** Fingerprint of the verification key that matched the key id, when one was given. */
  fingerprint?: string;
  created?: Date;
  /** Why the signature is not valid. */
  detail?: string;
}

export interface DecryptedPgpMessage {
  /** 'pgp-mime': `entity` is the decrypted MIME entity as sent; 'inline': the decrypted text as a text/plain entity. */
  format: 'pgp-mime' | 'inline';
  entity: Buffer;
  /** The decrypted literal data as it was encrypted (for PGP/MIME the same bytes as `entity`). */
  plaintext: Buffer;
  /** True when the encrypted data carried at least one signature. */
  signed: boolean;
  signatures: PgpSignatureInfo[];
  /** Fingerprint of our private key that opened the message. */
  decryptedWith: string;
}

const BEGIN_MESSAGE = '-----BEGIN PGP MESSAGE-----';
const END_MESSAGE = '-----END PGP MESSAGE-----';
// gpg --throw-keyids writes this key id for a hidden recipient.
const WILDCARD_KEY_ID = '0000000000000000';

type VerificationResult = Awaited<ReturnType<typeof openpgp.decrypt>>['signatures'][number];

/**
 * Decrypts a PGP/MIME or inline-PGP message. Rejects with a PgpError: PGP_NOT_ENCRYPTED, PGP_MALFORMED,
 * PGP_UNSUPPORTED, PGP_PRIVATE_KEY_UNUSABLE, PGP_NO_MATCHING_KEY, PGP_DECRYPT_FAILED, PGP_TOO_LARGE or
 * PGP_TOO_MANY_SESSION_KEYS.
 */
export async function decryptPgpMime(input: DecryptPgpMimeInput): Promise<DecryptedPgpMessage> {
  const now = input.now ?? new Date();
  const maxBytes = input.maxBytes ?? DEFAULT_MAX_DECRYPTED_BYTES;
  const raw = Buffer.isBuffer(input.message) ? input.message : await buffer(input.message);
  const found = await findEncryptedPart(raw);
  const data = await binaryOf(found.data);
  const packets = countPackets(data, MAX_SESSION_KEY_PACKETS + 1);
  if (packets > MAX_SESSION_KEY_PACKETS) {
    throw new PgpError(
      'PGP_TOO_MANY_SESSION_KEYS',
      `the OpenPGP data holds more than ${MAX_SESSION_KEY_PACKETS} packets (session keys, markers, padding)`,
    );
  }
  const message = await readPgpMessage(data);

  const recipientIds = message.getEncryptionKeyIDs();
  if (recipientIds.length === 0) {
    const passwordOnly = message.packets.filterByTag(openpgp.enums.packet.symEncryptedSessionKey).length > 0;
    if (passwordOnly) throw new PgpError('PGP_UNSUPPORTED', 'the message is encrypted to a password only');
    throw new PgpError('PGP_NOT_ENCRYPTED', 'the OpenPGP data is not encrypted to any public key');
  }

  const privateKeys = await Promise.all(
    input.privateKeys.map((given) => unlockPrivateKey(given, 'PGP_PRIVATE_KEY_UNUSABLE')),
  );
  const hiddenRecipient = recipientIds.some((id) => id.toHex() === WILDCARD_KEY_ID);
  const matching = privateKeys.filter((key) =>
    key.getKeys().some((part) => recipientIds.some((id) => id.equals(part.getKeyID()))),
  );
  if (matching.length === 0 && !hiddenRecipient) {
    const ids = recipientIds.map((id) => id.toHex().toUpperCase()).join(', ');
    throw new PgpError('PGP_NO_MATCHING_KEY', `the message is encrypted to key ids ${ids}, none of them ours`);
  }
  // Every session-key packet for one of our keys is tried, and a wildcard one with each of our keys.
  const ourKeyIds = privateKeys.flatMap((key) => key.getKeys().map((part) => part.getKeyID()));
  const tried = recipientIds.filter(
    (id) => id.toHex() === WILDCARD_KEY_ID || ourKeyIds.some((ours) => ours.equals(id)),
  );
  if (tried.length > MAX_SESSION_KEYS_TRIED) {
    throw new PgpError(
      'PGP_TOO_MANY_SESSION_KEYS',
      `${tried.length} session-key packets name our keys or a hidden recipient; at most ${MAX_SESSION_KEYS_TRIED} are tried`,
    );
  }
  const verificationKeys = await readVerificationKeys(input.verificationKeys ?? []);

  // One key at a time, so we know which key opened the message (a hidden recipient may be any of ours).
  const candidates = matching.length > 0 ? matching : privateKeys;
  let opened: { result: Awaited<ReturnType<typeof openpgp.decrypt<Uint8Array>>>; key: openpgp.PrivateKey } | undefined;
  let lastError: unknown = new Error('no private key given');
  for (const [index, key] of candidates.entries()) {
    try {
      // openpgp decrypts packets in place; a further attempt starts from freshly read data.
      const attempt = index === 0 ? message : await readPgpMessage(data);
      const result = await openpgp.decrypt({
        message: withoutForeignSessionKeys(attempt, tried),
        decryptionKeys: key,
        verificationKeys,
        format: 'binary',
        date: now,
        // openpgp stops inflating there (zip, zlib and bzip2 alike), before holding more in memory.
        config: { maxDecompressedMessageSize: maxBytes },
      });
      opened = { result, key };
      break;
    } catch (error) {
      // The key opened it; no other key makes the content smaller.
      if (DECOMPRESSED_TOO_LARGE.test(describeError(error))) throw tooLarge(maxBytes, error);
      lastError = error;
    }
  }
  if (!opened) throw classifyDecryptError(lastError, hiddenRecipient && matching.length === 0);

  const plaintext = Buffer.from(opened.result.data as Uint8Array);
  if (plaintext.length > maxBytes) throw tooLarge(maxBytes);
  const signatures = await Promise.all(opened.result.signatures.map((s) => describeSignature(s, verificationKeys)));
  const decryptedWith = fingerprintOf(opened.key);
  const entity = found.format === 'pgp-mime' ? plaintext : textPlainEntity(plaintext, found.charset);
  if (entity.length > maxBytes) throw tooLarge(maxBytes);
  return {
    format: found.format,
    entity,
    plaintext,
    signed: signatures.length > 0,
    signatures,
    decryptedWith,
  };
}

interface EncryptedPart {
  format: 'pgp-mime' | 'inline';
  /** The armored text, or binary OpenPGP data from a PGP/MIME part. */
  data: string | Uint8Array;
  charset: string;
}

async function findEncryptedPart(raw: Buffer): Promise<EncryptedPart> {
  let parsed: Awaited<ReturnType<typeof simpleParser>>;
  try {
    parsed = await simpleParser(raw, { skipHtmlToText: true, skipTextLinks: true, skipImageLinks: true });
  } catch (error) {
    throw new PgpError('PGP_MALFORMED', `the message cannot be parsed as MIME: ${describeError(error)}`, {
      cause: error,
    });
  }
  const contentType = parsed.headers.get('content-type') as
    | { value?: string; params?: Record<string, string> }
    | undefined;
  const type = contentType?.value?.toLowerCase();
  if (type === 'multipart/encrypted') {
    const protocol = contentType?.params?.protocol?.toLowerCase();
    if (protocol !== 'application/pgp-encrypted') {
      throw new PgpError('PGP_UNSUPPORTED', `multipart/encrypted with protocol ${protocol ?? '(none)'} is not OpenPGP`);
    }
    const part = parsed.attachments.find((a) => a.contentType.toLowerCase() === 'application/octet-stream');
    if (!part) throw new PgpError('PGP_MALFORMED', 'PGP/MIME without its application/octet-stream part');
    const text = part.content.toString('latin1');
    const armored = extractArmoredBlock(text);
    return { format: 'pgp-mime', data: armored ?? new Uint8Array(part.content), charset: 'utf-8' };
  }
  const text = typeof parsed.text === 'string' ? parsed.text : '';
  const armored = extractArmoredBlock(text);
  if (armored === undefined) {
    throw new PgpError('PGP_NOT_ENCRYPTED', 'neither PGP/MIME nor an inline PGP message block was found');
  }
  const charset = type === 'text/plain' ? (contentType?.params?.charset ?? 'utf-8') : 'utf-8';
  return { format: 'inline', data: armored, charset };
}

/** The armored PGP MESSAGE block in `text`; text around it is dropped (it was never encrypted). */
function extractArmoredBlock(text: string): string | undefined {
  const start = text.indexOf(BEGIN_MESSAGE);
  if (start < 0) return undefined;
  const end = text.indexOf(END_MESSAGE, start);
  if (end < 0) throw new PgpError('PGP_MALFORMED', 'the armored PGP message has no END line (truncated)');
  return text.slice(start, end + END_MESSAGE.length);
}

/** The binary OpenPGP data of an armored block (or the binary data as it is). */
async function binaryOf(data: string | Uint8Array): Promise<Uint8Array> {
  if (typeof data !== 'string') return data;
  let unarmored: Awaited<ReturnType<typeof openpgp.unarmor>>;
  try {
    unarmored = await openpgp.unarmor(data);
  } catch (error) {
    throw new PgpError('PGP_MALFORMED', `the OpenPGP armor cannot be read: ${describeError(error)}`, { cause: error });
  }
  if (unarmored.type !== openpgp.enums.armor.message) throw new PgpError('PGP_MALFORMED', 'the armor is not a message');
  const bytes: unknown = unarmored.data;
  if (!(bytes instanceof Uint8Array)) throw new PgpError('PGP_MALFORMED', 'the armor cannot be read');
  return bytes;
}

/**
 * The OpenPGP packets `data` holds, counted up to `stopAt` by their headers alone (RFC 9580 §4.2; the chunks of a
 * partial-length packet are one packet). Counting stops at a header it cannot read: openpgp refuses the data there.
 */
function countPackets(data: Uint8Array, stopAt: number): number {
  let count = 0;
  let at = 0;
  while (at < data.length && count < stopAt) {
    const first = data[at] as number;
    if ((first & 0x80) === 0) break;
    count++;
    if ((first & 0x40) === 0) {
      // Old format: the length type in the low bits; 3 runs to the end of the data.
      const octets = [1, 2, 4][first & 0x03];
      if (octets === undefined || at + 1 + octets > data.length) break;
      let length = 0;
      for (let i = 1; i <= octets; i++) length = length * 256 + (data[at + i] as number);
      at += 1 + octets + length;
      continue;
    }
    at++;
    for (;;) {
      const length = newFormatLength(data, at);
      if (!length) return count;
      at += length.size + length.length;
      if (!length.partial) break;
    }
  }
  return count;
}

/** A new-format body length at `at` (RFC 9580 §4.2.1); undefined when truncated. */
function newFormatLength(data: Uint8Array, at: number): { size: number; length: number; partial: boolean } | undefined {
  const first = data[at];
  if (first === undefined) return undefined;
  if (first < 192) return { size: 1, length: first, partial: false };
  if (first < 224) {
    const second = data[at + 1];
    return second === undefined ? undefined : { size: 2, length: ((first - 192) << 8) + second + 192, partial: false };
  }
  if (first === 255) {
    if (at + 5 > data.length) return undefined;
    const length =
      (((data[at + 1] as number) << 24) >>> 0) +
      ((data[at + 2] as number) << 16) +
      ((data[at + 3] as number) << 8) +
      (data[at + 4] as number);
    return { size: 5, length, partial: false };
  }
  return { size: 1, length: 2 ** (first & 0x1f), partial: true };
}

/**
 * `message` with only the session-key packets in `ours` (those openpgp would try): it looks for our key in every
 * session-key packet of a message, each lookup checking our key's binding signatures again.
 */
function withoutForeignSessionKeys(
  message: openpgp.Message<Uint8Array>,
  ours: readonly openpgp.KeyID[],
): openpgp.Message<Uint8Array> {
  const kept = new openpgp.PacketList<openpgp.AnyPacket>();
  for (const packet of message.packets) {
    // openpgp's types leave out the key id a session-key packet names (getEncryptionKeyIDs reads the same field).
    const named =
      packet instanceof openpgp.PublicKeyEncryptedSessionKeyPacket
        ? (packet as unknown as { publicKeyID: openpgp.KeyID }).publicKeyID
        : undefined;
    if (named && !ours.some((id) => id.equals(named))) continue;
    kept.push(packet);
  }
  return new openpgp.Message(kept);
}

async function readPgpMessage(data: Uint8Array): Promise<openpgp.Message<Uint8Array>> {
  try {
    return await openpgp.readMessage({ binaryMessage: data });
  } catch (error) {
    throw new PgpError('PGP_MALFORMED', `the OpenPGP data cannot be read: ${describeError(error)}`, { cause: error });
  }
}

async function readVerificationKeys(armoredKeys: string[]): Promise<openpgp.PublicKey[]> {
  const keys: openpgp.PublicKey[] = [];
  for (const armored of armoredKeys) {
    try {
      const key = await openpgp.readKey({ armoredKey: armored });
      keys.push(key.isPrivate() ? key.toPublic() : key);
    } catch {
      // An unreadable verification key only means signatures by it show as 'unknown-key'.
    }
  }
  return keys;
}

// openpgp's words when maxDecompressedMessageSize is exceeded ('message size' for zip/zlib, 'size' for bzip2).
const DECOMPRESSED_TOO_LARGE = /Maximum decompressed (message )?size exceeded/;

function tooLarge(maxBytes: number, cause?: unknown): PgpError {
  const message = `the decrypted message is larger than ${maxBytes} bytes`;
  return new PgpError('PGP_TOO_LARGE', message, cause === undefined ? undefined : { cause });
}

function classifyDecryptError(error: unknown, hiddenRecipientOnly: boolean): PgpError {
  const text = describeError(error);
  if (/not authenticated|unsupported|unknown .*algorithm/i.test(text)) {
    return new PgpError('PGP_UNSUPPORTED', `openpgp refuses the message: ${text}`, { cause: error });
  }
  if (hiddenRecipientOnly) {
    return new PgpError('PGP_NO_MATCHING_KEY', `no key opens the message (hidden recipients): ${text}`, {
      cause: error,
    });
  }
  return new PgpError('PGP_DECRYPT_FAILED', `decryption failed: ${text}`, { cause: error });
}

async function describeSignature(
  result: VerificationResult,
  verificationKeys: openpgp.PublicKey[],
): Promise<PgpSignatureInfo> {
  const keyId = result.keyID.toHex().toUpperCase();
  const signer = verificationKeys.find((key) => key.getKeys(result.keyID).length > 0);
  let created: Date | undefined;
  try {
    const packet = (await result.signature).packets[0];
    if (packet?.created) created = packet.created;
  } catch {
    // the signature packet itself is unreadable; the status below says so
  }
  const known = {
    keyId,
    ...(signer ? { fingerprint: fingerprintOf(signer) } : {}),
    ...(created ? { created } : {}),
  };
  try {
    await result.verified;
    return { ...known, status: 'valid' };
  } catch (error) {
    const status: PgpSignatureStatus = signer ? 'invalid' : 'unknown-key';
    return { ...known, status, detail: describeError(error) };
  }
}

/** A text/plain MIME entity around decrypted inline-PGP text, base64 so any bytes and line lengths survive. */
function textPlainEntity(text: Buffer, charset: string): Buffer {
  const safeCharset = /^[A-Za-z0-9._:-]{1,40}$/.test(charset) ? charset : 'utf-8';
  const body = (text.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
  return Buffer.from(
    `Content-Type: text/plain; charset=${safeCharset}\r\nContent-Transfer-Encoding: base64\r\n\r\n${body}\r\n`,
  );
}
