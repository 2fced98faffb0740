// Outbound S/MIME encryption (RFC 8551) as a stream: the CMS structure around the content (ContentInfo →
// EnvelopedData or AuthEnvelopedData, one RecipientInfo per recipient) is built with asn1js, while the content
// itself flows through node:crypto into an indefinite-length encryptedContent of OCTET STRING segments and is
// base64-encoded on the fly. Memory per message is a few segments, whatever the size of the message.
import { createCipheriv } from 'node:crypto';
import { Readable } from 'node:stream';
import { Base64LineWriter } from '../base64-lines.ts';
import { pooledRandomBytes } from '../random-pool.ts';
import { encodeDer, integer, oid } from './asn1-build.ts';
import { type CertificateIdentity, type CertificateInput, certificateIdentity } from './certificate.ts';
import { derFrame, derHeader, TAG_OCTET_STRING, TAG_SEQUENCE, TAG_SET } from './der-frame.ts';
import { SmimeError } from './errors.ts';
import { ID_AES256_CBC, ID_AES256_GCM, ID_AUTH_ENVELOPED_DATA, ID_DATA, ID_ENVELOPED_DATA } from './oids.ts';
import { type KeyTransport, keyAgreeRecipientInfo, keyTransRecipientInfo } from './recipient-info.ts';

export type ContentCipher = 'aes-256-cbc' | 'aes-256-gcm';

export interface EncryptRecipient {
  /** The recipient's certificate (DER or PEM): RSA gets key transport, EC gets ECDH key agreement. */
  readonly certificate: CertificateInput;
  /** RSA only. PKCS#1 v1.5 by default for the widest client support; OAEP where the recipient announces it. */
  readonly keyTransport?: KeyTransport;
}

/** Outer header fields of the S/MIME message, as [name, value] pairs in order; values already RFC 2047-encoded. */
export type SmimeHeaders = ReadonlyArray<readonly [string, string]> | Readonly<Record<string, string>>;

export interface EncryptEnvelopedOptions {
  /** The MIME entity to encrypt (headers and body), as a stream or bytes. */
  readonly content: Readable | AsyncIterable<Uint8Array> | Uint8Array;
  readonly recipients: readonly EncryptRecipient[];
  /** AES-256-CBC (EnvelopedData, the default) or AES-256-GCM (AuthEnvelopedData, RFC 5083/5084). */
  readonly contentCipher?: ContentCipher;
  /** From, To, Subject, Date, Message-ID, …; MIME-Version is always written as `1.0` (a given one is replaced). */
  readonly headers?: SmimeHeaders;
}

/** Encrypted content is written in OCTET STRING segments of at most this many bytes. */
const SEGMENT_BYTES = 64 * 1024;
const GCM_NONCE_BYTES = 12; // RFC 5084 recommends 12
const GCM_ICV_BYTES = 16;
const CEK_BYTES = 32;

const INDEFINITE_SEQUENCE = Buffer.from([0x30, 0x80]);
const INDEFINITE_CONTEXT_0 = Buffer.from([0xa0, 0x80]);
const END_OF_CONTENTS = Buffer.from([0x00, 0x00]);
const EMPTY = Buffer.alloc(0);
const OWN_HEADERS = new Set([
  'content-type',
  'content-transfer-encoding',
  'content-disposition',
  'content-description',
]);
const HEADER_NAME = /^[!-9;-~]+$/;
// No CR/LF (header injection) and nothing outside printable ASCII/tab: values arrive already encoded.
const HEADER_VALUE_FORBIDDEN = /[^\t\x20-\x7e]/;

/**
 * The top-level fields that describe an S/MIME encrypted body, as the gateway writes them: for its own copies and for
 * mail that passes through already encrypted (checkWholeMessageEncrypted), so both leave with the same fields.
 */
export function smimeContentFields(smimeType: 'enveloped-data' | 'authEnveloped-data'): Array<[string, string]> {
  return [
    ['Content-Type', `application/pkcs7-mime; smime-type=${smimeType}; name=smime.p7m`],
    ['Content-Transfer-Encoding', 'base64'],
    ['Content-Disposition', 'attachment; filename=smime.p7m'],
    ['Content-Description', 'S/MIME Encrypted Message'],
  ];
}

/** The fields this module owns, and the empty line that ends the header. */
const ownFields = (smimeType: 'enveloped-data' | 'authEnveloped-data'): string =>
  [...smimeContentFields(smimeType).map(([name, value]) => `${name}: ${value}`), '', ''].join('\r\n');
const ENVELOPED_FIELDS = ownFields('enveloped-data');
const AUTH_ENVELOPED_FIELDS = ownFields('authEnveloped-data');

function headerBlock(headers: SmimeHeaders | undefined, gcm: boolean): Buffer {
  const pairs = headers === undefined ? [] : Array.isArray(headers) ? headers : Object.entries(headers);
  const lines: string[] = [];
  for (const [name, value] of pairs as ReadonlyArray<readonly [string, string]>) {
    if (!HEADER_NAME.test(name))
      throw new SmimeError('SMIME_INVALID_HEADER', `invalid header name ${JSON.stringify(name)}`);
    if (HEADER_VALUE_FORBIDDEN.test(value))
      throw new SmimeError('SMIME_INVALID_HEADER', `invalid characters in ${name}`);
    const lower = name.toLowerCase();
    if (OWN_HEADERS.has(lower)) throw new SmimeError('SMIME_INVALID_HEADER', `${name} is set by the encryption`);
    // Written below as 1.0 whatever is given: a comment in it (`1.0 (Az. 4711)`) is free text outside the encryption.
    if (lower !== 'mime-version') lines.push(`${name}: ${value}`);
  }
  lines.push('MIME-Version: 1.0');
  lines.push(gcm ? AUTH_ENVELOPED_FIELDS : ENVELOPED_FIELDS);
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

// Constant parts of the structure, encoded once with asn1js.
const OID_ENVELOPED_DATA = encodeDer(oid(ID_ENVELOPED_DATA));
const OID_AUTH_ENVELOPED_DATA = encodeDer(oid(ID_AUTH_ENVELOPED_DATA));
const OID_AES256_CBC = encodeDer(oid(ID_AES256_CBC));
const OID_AES256_GCM = encodeDer(oid(ID_AES256_GCM));
const VERSION_0 = encodeDer(integer(0));
const VERSION_2 = encodeDer(integer(2));
const GCM_ICV_LENGTH = encodeDer(integer(GCM_ICV_BYTES));
const ENCRYPTED_CONTENT_INFO_START = Buffer.concat([
  INDEFINITE_SEQUENCE, // EncryptedContentInfo
  encodeDer(oid(ID_DATA)),
]);

interface PreparedRecipient {
  readonly identity: CertificateIdentity;
  readonly keyTransport: KeyTransport;
}

/** The CMS structure up to the first encrypted segment, with its RecipientInfos and a fresh CEK. */
function prepareCms(recipients: readonly PreparedRecipient[], gcm: boolean) {
  const random = pooledRandomBytes(CEK_BYTES + 16); // one draw for key and IV
  const cek = random.subarray(0, CEK_BYTES);
  let allVersionZero = true;
  const recipientInfos = recipients.map(({ identity, keyTransport }) => {
    if (identity.keyType === 'rsa') return keyTransRecipientInfo(identity, cek, keyTransport);
    allVersionZero = false;
    return keyAgreeRecipientInfo(identity, cek);
  });
  const iv = random.subarray(CEK_BYTES, CEK_BYTES + (gcm ? GCM_NONCE_BYTES : 16));
  const contentEncryptionAlgorithm = gcm
    ? derFrame(TAG_SEQUENCE, OID_AES256_GCM, derFrame(TAG_SEQUENCE, derFrame(TAG_OCTET_STRING, iv), GCM_ICV_LENGTH)) // RFC 5084 GCMParameters
    : derFrame(TAG_SEQUENCE, OID_AES256_CBC, derFrame(TAG_OCTET_STRING, iv));
  // RFC 5652 §6.1: version 0 when every RecipientInfo is version 0, else 2; AuthEnvelopedData is always 0.
  const version = gcm || allVersionZero ? VERSION_0 : VERSION_2;
  const prefix = Buffer.concat([
    INDEFINITE_SEQUENCE, // ContentInfo
    gcm ? OID_AUTH_ENVELOPED_DATA : OID_ENVELOPED_DATA,
    INDEFINITE_CONTEXT_0, // [0] EXPLICIT content
    INDEFINITE_SEQUENCE, // EnvelopedData / AuthEnvelopedData
    version,
    derFrame(TAG_SET, ...recipientInfos),
    ENCRYPTED_CONTENT_INFO_START,
    contentEncryptionAlgorithm,
    INDEFINITE_CONTEXT_0, // [0] IMPLICIT encryptedContent, constructed from OCTET STRING segments
  ]);
  const gcmCipher = gcm ? createCipheriv('aes-256-gcm', cek, iv, { authTagLength: GCM_ICV_BYTES }) : undefined;
  const cipher = gcmCipher ?? createCipheriv('aes-256-cbc', cek, iv);
  cek.fill(0);
  return { prefix, cipher, gcmCipher };
}

/** Splits input so that each cipher call and each encoded piece stays small (large strings are slow in V8). */
function* segmentsOf(chunk: Uint8Array | string): Generator<Buffer> {
  const bytes =
    typeof chunk === 'string'
      ? Buffer.from(chunk, 'latin1')
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  for (let at = 0; at < bytes.length; at += SEGMENT_BYTES) yield bytes.subarray(at, at + SEGMENT_BYTES);
}

/**
 * Produces the message piece by piece, each piece one buffer of base64 lines: the header fields and the CMS
 * structure up to the encrypted content go in front of the first piece, the end of the structure into the last.
 */
function createMessageWriter(recipients: readonly PreparedRecipient[], gcm: boolean, headers: Buffer) {
  const { prefix, cipher, gcmCipher } = prepareCms(recipients, gcm);
  const base64 = new Base64LineWriter();
  // What goes in front of the next piece, until a piece has been written.
  let leadText: Buffer | undefined = headers;
  const write = (binary: Buffer[], last: boolean): Buffer => {
    const text = leadText ?? EMPTY;
    if (leadText) {
      binary.unshift(prefix);
      leadText = undefined;
    }
    return base64.write(binary, { head: text, last });
  };
  /** One OCTET STRING segment of encryptedContent for `encrypted` (and `more`, encrypted right after it). */
  const octetString = (encrypted: Buffer, more: Buffer = EMPTY): Buffer[] => {
    const length = encrypted.length + more.length;
    if (length === 0) return [];
    const header = derHeader(TAG_OCTET_STRING, length);
    return more.length === 0 ? [header, encrypted] : [header, encrypted, more];
  };
  return {
    /** The header fields and the CMS structure up to the encrypted content (sent before any content is read). */
    head: (): Buffer => write([], false),
    /** The piece for one content segment; empty while the cipher holds everything back. */
    segment: (plain: Buffer): Buffer => {
      const binary = octetString(cipher.update(plain));
      return binary.length === 0 && leadText === undefined ? EMPTY : write(binary, false);
    },
    /** The last piece: the last content segment if given (with the cipher's final block), and the end. */
    end(plain?: Buffer): Buffer {
      const binary = octetString(plain ? cipher.update(plain) : EMPTY, cipher.final());
      binary.push(END_OF_CONTENTS, END_OF_CONTENTS); // encryptedContent, EncryptedContentInfo
      if (gcmCipher) binary.push(derFrame(TAG_OCTET_STRING, gcmCipher.getAuthTag())); // AuthEnvelopedData.mac
      binary.push(END_OF_CONTENTS, END_OF_CONTENTS, END_OF_CONTENTS); // (Auth)EnvelopedData, [0], ContentInfo
      return write(binary, true);
    },
  };
}

type MessageWriter = ReturnType<typeof createMessageWriter>;

/**
 * Content already in memory: a synchronous iterable (no promise per piece), one piece per segment, the last one
 * with the end of the message (a message of up to one segment is a single buffer).
 */
function* messageFromBytes(content: Uint8Array, writer: MessageWriter): Generator<Buffer> {
  const bytes = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  let at = 0;
  for (; bytes.length - at > SEGMENT_BYTES; at += SEGMENT_BYTES) {
    const piece = writer.segment(bytes.subarray(at, at + SEGMENT_BYTES));
    if (piece.length > 0) yield piece;
  }
  yield writer.end(at < bytes.length ? bytes.subarray(at) : undefined);
}

async function* messageFromStream(
  content: AsyncIterable<Uint8Array | string>,
  writer: MessageWriter,
): AsyncGenerator<Buffer> {
  yield writer.head();
  for await (const chunk of content) {
    for (const segment of segmentsOf(chunk)) {
      const piece = writer.segment(segment);
      if (piece.length > 0) yield piece;
    }
  }
  yield writer.end();
}

/**
 * Encrypts a MIME entity for the given recipients and returns the complete S/MIME message
 * (outer headers, application/pkcs7-mime body in base64) as a stream. Recipient and header errors throw
 * here, synchronously; errors of the content stream surface as the returned stream's 'error'.
 */
export function encryptEnveloped(options: EncryptEnvelopedOptions): Readable {
  // Validate everything that can be validated before the first byte is produced.
  const cipher = options.contentCipher ?? 'aes-256-cbc';
  if (cipher !== 'aes-256-cbc' && cipher !== 'aes-256-gcm') {
    throw new SmimeError('SMIME_UNSUPPORTED_ALGORITHM', `content cipher ${String(cipher)}`);
  }
  if (options.recipients.length === 0) throw new SmimeError('SMIME_INVALID_RECIPIENT', 'no recipients');
  const gcm = cipher === 'aes-256-gcm';
  const headers = headerBlock(options.headers, gcm);
  const recipients = options.recipients.map((recipient) => ({
    identity: certificateIdentity(recipient.certificate),
    keyTransport: recipient.keyTransport ?? 'rsa-pkcs1v15',
  }));
  // Object mode with a small high-water mark: chunks pass through as they are (a byte-mode Readable would copy them
  // into one buffer on read), and at most two encoded segments wait for a slow consumer.
  const writer = createMessageWriter(recipients, gcm, headers);
  const { content } = options;
  const pieces =
    content instanceof Uint8Array
      ? messageFromBytes(content, writer)
      : messageFromStream(content as AsyncIterable<Uint8Array | string>, writer);
  return Readable.from(pieces, { objectMode: true, highWaterMark: 2 });
}
