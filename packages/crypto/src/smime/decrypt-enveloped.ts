// Inbound S/MIME decryption: EnvelopedData and AuthEnvelopedData addressed to a key we hold.
// The message is buffered whole (inbound size is bounded by SMGW_MAX_MESSAGE_BYTES before it gets here); the
// decrypted entity is returned as bytes.
import { createDecipheriv, createPrivateKey, createPublicKey, KeyObject } from 'node:crypto';
import type { Readable } from 'node:stream';
import { findHeaderEnd, headerValue, parseHeaderFields } from '@smgw/mime';
import {
  type BerNode,
  expectUniversal,
  isContext,
  isUniversal,
  octetsOf,
  oidOf,
  readBer,
  smallIntegerOf,
  UNIVERSAL_OCTET_STRING,
  UNIVERSAL_SEQUENCE,
  UNIVERSAL_SET,
} from './ber-reader.ts';
import { type CertificateInput, certificateIdentity } from './certificate.ts';
import { SmimeError } from './errors.ts';
import { CONTENT_CIPHER_BY_OID, type ContentCipherSpec, ID_AUTH_ENVELOPED_DATA, ID_ENVELOPED_DATA } from './oids.ts';
import { openRecipientInfos, type RecipientKey } from './recipient-info.ts';

export interface DecryptionKey {
  readonly certificate: CertificateInput;
  /** A node KeyObject, or PEM (PKCS#8 or traditional) / DER PKCS#8 bytes. */
  readonly privateKey: KeyObject | string | Uint8Array;
}

export interface DecryptEnvelopedOptions {
  /** The application/pkcs7-mime entity (headers and base64 body), its body alone, PEM, or DER/BER bytes. */
  readonly message: Readable | AsyncIterable<Uint8Array> | Uint8Array | string;
  readonly keys: readonly DecryptionKey[];
  /** Refuse (SMIME_TOO_LARGE) a message longer than this; the decryption holds the whole message in memory. */
  readonly maxBytes?: number;
}

function malformed(message: string, cause?: unknown): SmimeError {
  return new SmimeError('SMIME_MALFORMED', message, cause === undefined ? undefined : { cause });
}

function tooLarge(maxBytes: number): SmimeError {
  return new SmimeError('SMIME_TOO_LARGE', `message longer than ${maxBytes} bytes`);
}

async function collect(message: DecryptEnvelopedOptions['message'], maxBytes: number): Promise<Buffer> {
  if (typeof message === 'string' || message instanceof Uint8Array) {
    const bytes =
      typeof message === 'string'
        ? Buffer.from(message, 'latin1')
        : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
    if (bytes.length > maxBytes) throw tooLarge(maxBytes);
    return bytes;
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of message as AsyncIterable<Uint8Array | string>) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : Buffer.from(chunk);
    total += bytes.length;
    if (total > maxBytes) {
      if ('destroy' in message && typeof message.destroy === 'function') message.destroy();
      throw tooLarge(maxBytes);
    }
    chunks.push(bytes);
  }
  return Buffer.concat(chunks);
}

const PEM_CMS = /-----BEGIN (?:CMS|PKCS7)-----([A-Za-z0-9+/=\s]*)-----END (?:CMS|PKCS7)-----/;
const BASE64_TEXT = /^[A-Za-z0-9+/=\s]+$/;
const HEADER_LINE = /^[!-9;-~]+:/;

/** The CMS bytes inside whatever form the message came in. */
export function cmsBytesOf(message: Buffer): Buffer {
  if (message[0] === 0x30) return message;
  const text = message.toString('latin1');
  const pem = PEM_CMS.exec(text);
  if (pem) return Buffer.from(pem[1] ?? '', 'base64');
  if (HEADER_LINE.test(text)) {
    const end = findHeaderEnd(message);
    if (!end) throw malformed('MIME entity without a body');
    const fields = parseHeaderFields(text.slice(0, end.headerLength));
    const contentType = headerValue(fields, 'content-type') ?? '';
    if (!/^application\/(x-)?pkcs7-mime\b/i.test(contentType)) {
      throw new SmimeError('SMIME_NOT_ENVELOPED', `not an S/MIME encrypted entity (Content-Type: ${contentType})`);
    }
    const body = message.subarray(end.bodyStart);
    const encoding = (headerValue(fields, 'content-transfer-encoding') ?? '').toLowerCase();
    if (encoding === 'base64') return Buffer.from(body.toString('latin1'), 'base64');
    return body;
  }
  if (BASE64_TEXT.test(text)) return Buffer.from(text, 'base64');
  throw malformed('neither a MIME entity, PEM, base64 nor DER');
}

function importPrivateKey(input: string | Uint8Array): KeyObject {
  const bytes = Buffer.from(input);
  if (bytes[0] === 0x30) return createPrivateKey({ key: bytes, format: 'der', type: 'pkcs8' });
  return createPrivateKey({ key: bytes.toString('latin1'), format: 'pem' });
}

function recipientKeysOf(keys: readonly DecryptionKey[]): RecipientKey[] {
  return keys.map(({ certificate, privateKey }) => {
    let key: KeyObject;
    try {
      key = privateKey instanceof KeyObject ? privateKey : importPrivateKey(privateKey);
    } catch (cause) {
      throw new SmimeError('SMIME_INVALID_KEY', 'private key cannot be read', { cause });
    }
    if (key.type !== 'private') throw new SmimeError('SMIME_INVALID_KEY', 'not a private key');
    const identity = certificateIdentity(certificate);
    const spki = (k: KeyObject) => k.export({ format: 'der', type: 'spki' });
    if (!spki(createPublicKey(key)).equals(spki(identity.publicKey))) {
      throw new SmimeError('SMIME_INVALID_KEY', 'private key does not belong to the certificate');
    }
    return { identity, privateKey: key };
  });
}

interface ContentEncryption {
  readonly spec: ContentCipherSpec;
  readonly iv: Buffer;
  readonly icvLength: number;
}

function contentEncryptionOf(algorithm: BerNode | undefined): ContentEncryption {
  const seq = expectUniversal(algorithm, UNIVERSAL_SEQUENCE, 'contentEncryptionAlgorithm');
  const algorithmOid = oidOf(seq.children[0], 'contentEncryptionAlgorithm');
  const spec = CONTENT_CIPHER_BY_OID[algorithmOid];
  if (!spec) throw new SmimeError('SMIME_UNSUPPORTED_ALGORITHM', `content encryption algorithm ${algorithmOid}`);
  if (spec.mode === 'cbc') {
    const iv = octetsOf(expectUniversal(seq.children[1], UNIVERSAL_OCTET_STRING, 'IV'), 'IV');
    if (iv.length !== (spec.cipher.startsWith('des') ? 8 : 16)) throw malformed('IV of the wrong length');
    return { spec, iv, icvLength: 0 };
  }
  // RFC 5084 GCMParameters ::= SEQUENCE { aes-nonce OCTET STRING, aes-ICVlen INTEGER DEFAULT 12 }
  const params = expectUniversal(seq.children[1], UNIVERSAL_SEQUENCE, 'GCMParameters');
  const iv = octetsOf(expectUniversal(params.children[0], UNIVERSAL_OCTET_STRING, 'GCM nonce'), 'GCM nonce');
  const icvLength = params.children[1] ? smallIntegerOf(params.children[1], 'GCM ICV length') : 12;
  if (iv.length === 0 || iv.length > 64 || icvLength < 12 || icvLength > 16) throw malformed('bad GCMParameters');
  return { spec, iv, icvLength };
}

function decryptContent(
  encryption: ContentEncryption,
  cek: Buffer,
  ciphertext: Buffer,
  mac: Buffer | undefined,
  aad: Buffer | undefined,
): Buffer {
  // With PKCS#1 v1.5 implicit rejection a wrong key gives a random "CEK": its length or the padding betrays it.
  if (cek.length !== encryption.spec.keyLength)
    throw new SmimeError('SMIME_DECRYPT_FAILED', 'content key has the wrong length');
  try {
    if (encryption.spec.mode === 'gcm') {
      if (!mac || mac.length !== encryption.icvLength)
        throw malformed('AuthEnvelopedData mac missing or of the wrong length');
      const decipher = createDecipheriv(encryption.spec.cipher as 'aes-256-gcm', cek, encryption.iv, {
        authTagLength: encryption.icvLength,
      });
      decipher.setAuthTag(mac);
      if (aad) decipher.setAAD(aad);
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    }
    const decipher = createDecipheriv(encryption.spec.cipher, cek, encryption.iv);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch (cause) {
    if (cause instanceof SmimeError) throw cause;
    throw new SmimeError('SMIME_DECRYPT_FAILED', 'content decryption failed (wrong key or damaged message)', { cause });
  } finally {
    cek.fill(0);
  }
}

/** An opened (Auth)EnvelopedData: its content, and whether anything vouches that it is the content that was sent. */
export interface OpenedEnvelope {
  readonly entity: Buffer;
  /**
   * AuthEnvelopedData (AES-GCM): the content is the one encrypted. EnvelopedData (AES-CBC, 3DES) has no integrity:
   * whoever holds the ciphertext can change blocks of it, and chosen text comes out (EFAIL's CBC gadgets).
   */
  readonly authenticated: boolean;
}

/** Opens a parsed (Auth)EnvelopedData. */
function openEnvelope(contentType: string, envelope: BerNode, keys: readonly RecipientKey[]): OpenedEnvelope {
  const fields = envelope.children;
  let index = 1; // after version
  if (isContext(fields[index], 0)) index++; // originatorInfo
  const recipientInfos = expectUniversal(fields[index++], UNIVERSAL_SET, 'recipientInfos');
  const encryptedContentInfo = expectUniversal(fields[index++], UNIVERSAL_SEQUENCE, 'encryptedContentInfo');
  let mac: Buffer | undefined;
  let aad: Buffer | undefined;
  if (contentType === ID_AUTH_ENVELOPED_DATA) {
    const authAttrs = isContext(fields[index], 1) ? fields[index++] : undefined;
    // RFC 5083 §2.2: the AAD is the DER of authAttrs with the SET OF tag instead of the [1] IMPLICIT tag.
    if (authAttrs) aad = Buffer.concat([Buffer.from([0x31]), authAttrs.raw.subarray(1)]);
    mac = octetsOf(expectUniversal(fields[index], UNIVERSAL_OCTET_STRING, 'mac'), 'mac');
  }
  const encryption = contentEncryptionOf(encryptedContentInfo.children[1]);
  if ((encryption.spec.mode === 'gcm') !== (contentType === ID_AUTH_ENVELOPED_DATA)) {
    throw new SmimeError('SMIME_UNSUPPORTED_ALGORITHM', 'content cipher does not fit the content type');
  }
  const encryptedContent = encryptedContentInfo.children[2];
  if (!isContext(encryptedContent, 0)) throw malformed('encryptedContent missing (detached content is not supported)');
  const ciphertext = octetsOf(encryptedContent, 'encryptedContent');
  const cek = openRecipientInfos(recipientInfos, keys);
  const entity = decryptContent(encryption, cek, ciphertext, mac, aad);
  return { entity, authenticated: encryption.spec.mode === 'gcm' };
}

/**
 * Decrypts an S/MIME EnvelopedData or AuthEnvelopedData message with the first of our keys it is addressed to and
 * returns the inner MIME entity. Errors are SmimeError: SMIME_NO_MATCHING_RECIPIENT, SMIME_DECRYPT_FAILED,
 * SMIME_UNSUPPORTED_ALGORITHM, SMIME_MALFORMED, SMIME_NOT_ENVELOPED, SMIME_INVALID_KEY, SMIME_TOO_LARGE.
 */
export async function decryptEnveloped(options: DecryptEnvelopedOptions): Promise<Buffer> {
  return (await openEnveloped(options)).entity;
}

/** decryptEnveloped, saying also whether the content cipher vouches for the content (AuthEnvelopedData). */
export async function openEnveloped(options: DecryptEnvelopedOptions): Promise<OpenedEnvelope> {
  const keys = recipientKeysOf(options.keys);
  const cms = cmsBytesOf(await collect(options.message, options.maxBytes ?? Number.POSITIVE_INFINITY));
  // The content type first: what the content holds is read only for (auth)enveloped data.
  const contentInfo = readBer(cms, 1);
  if (!isUniversal(contentInfo, UNIVERSAL_SEQUENCE)) throw malformed('ContentInfo is not a SEQUENCE');
  const contentType = oidOf(contentInfo.children[0], 'contentType');
  if (contentType !== ID_ENVELOPED_DATA && contentType !== ID_AUTH_ENVELOPED_DATA) {
    throw new SmimeError('SMIME_NOT_ENVELOPED', `content type ${contentType} is not (auth)enveloped data`);
  }
  const explicit = contentInfo.children[1];
  if (!isContext(explicit, 0)) throw malformed('ContentInfo without content');
  const envelope = expectUniversal(readBer(explicit.raw).children[0], UNIVERSAL_SEQUENCE, 'EnvelopedData');
  return openEnvelope(contentType, envelope, keys);
}
