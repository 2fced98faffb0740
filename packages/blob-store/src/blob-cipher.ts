// Encryption of blobs at rest. Each blob gets its own random 32-byte data key, stored only wrapped under the KEK of
// its period (AES-256-GCM, aad = blob id and KEK id). From the data key, HKDF-SHA256 derives two keys:
//   - the chunk key: AES-256-GCM per chunk; nonce = the chunk's index (unique, the key is used by this blob only);
//     aad = blob id, index and whether it is the final chunk. A chunk moved, dropped, swapped in from another blob
//     or a blob cut after any chunk but the final one fails to authenticate or ends without its final chunk.
//   - the digest key: HMAC-SHA256 of the content, the opaque `sha256` of the envelope's BlobRef (equal for equal
//     bytes of one blob, says nothing about the content to whoever lacks the key, and goes with the blob's key).
// Stored chunk = ciphertext | tag(16).
import { createCipheriv, createDecipheriv, createHmac, type Hmac, hkdfSync, randomBytes } from 'node:crypto';
import { BlobCorruptError } from './errors.ts';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const FORMAT = 'smgw-blob-v1';

export interface BlobKeys {
  chunkKey: Buffer;
  digestKey: Buffer;
}

export interface NewBlobKeys extends BlobKeys {
  /** iv(12) | wrapped data key(32) | tag(16): what the blobs row keeps. */
  wrappedKey: Buffer;
}

const wrapAad = (blobId: string, kekId: string) => Buffer.from(`${FORMAT}:key:${blobId}:${kekId}`);

function deriveKeys(dataKey: Buffer): BlobKeys {
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', dataKey, Buffer.alloc(0), `${FORMAT}:${info}`, 32));
  return { chunkKey: derive('chunks'), digestKey: derive('digest') };
}

/** A data key not wrapped yet (wrapDataKey), and the keys derived from it. Wipe `dataKey` once it is wrapped. */
export interface UnwrappedBlobKeys extends BlobKeys {
  dataKey: Buffer;
}

/**
 * A new random data key and the keys derived from it, for a blob that is written before its row: its key is wrapped
 * (wrapDataKey) under the KEK current when the row is made, so no KEK is named only after a long write.
 */
export function newDataKey(): UnwrappedBlobKeys {
  const dataKey = randomBytes(KEY_BYTES);
  return { dataKey, ...deriveKeys(dataKey) };
}

/** iv(12) | `dataKey` of blob `blobId` encrypted under `kek`(32) | tag(16): what the blobs row keeps. */
export function wrapDataKey(kek: { id: string; key: Buffer }, blobId: string, dataKey: Buffer): Buffer {
  const iv = randomBytes(IV_BYTES);
  const wrap = createCipheriv('aes-256-gcm', kek.key, iv);
  wrap.setAAD(wrapAad(blobId, kek.id));
  const wrapped = Buffer.concat([wrap.update(dataKey), wrap.final()]);
  return Buffer.concat([iv, wrapped, wrap.getAuthTag()]);
}

/** A new random data key for blob `blobId`, wrapped under `kek`, and the keys derived from it. */
export function newBlobKeys(kek: { id: string; key: Buffer }, blobId: string): NewBlobKeys {
  const { dataKey, ...keys } = newDataKey();
  try {
    return { wrappedKey: wrapDataKey(kek, blobId, dataKey), ...keys };
  } finally {
    dataKey.fill(0);
  }
}

/** The keys of blob `blobId` from its wrapped data key; BlobCorruptError if it does not unwrap under `kek`. */
export function unwrapBlobKeys(kek: { id: string; key: Buffer }, blobId: string, wrappedKey: Buffer): BlobKeys {
  let dataKey: Buffer | undefined;
  try {
    const unwrap = createDecipheriv('aes-256-gcm', kek.key, wrappedKey.subarray(0, IV_BYTES), {
      authTagLength: TAG_BYTES,
    });
    unwrap.setAAD(wrapAad(blobId, kek.id));
    unwrap.setAuthTag(wrappedKey.subarray(wrappedKey.length - TAG_BYTES));
    dataKey = Buffer.concat([
      unwrap.update(wrappedKey.subarray(IV_BYTES, wrappedKey.length - TAG_BYTES)),
      unwrap.final(),
    ]);
    return deriveKeys(dataKey);
  } catch (cause) {
    throw new BlobCorruptError(`the data key of blob ${blobId} does not unwrap under KEK ${kek.id}`, { cause });
  } finally {
    dataKey?.fill(0);
  }
}

function chunkIv(seq: number): Buffer {
  const iv = Buffer.alloc(IV_BYTES);
  iv.writeUInt32BE(seq, IV_BYTES - 4);
  return iv;
}

const chunkAad = (blobId: string, seq: number, final: boolean) =>
  Buffer.from(`${FORMAT}:chunk:${blobId}:${seq}:${final ? 'final' : 'more'}`);

export function encryptChunk(keys: BlobKeys, blobId: string, seq: number, final: boolean, plain: Buffer): Buffer {
  return Buffer.concat(encryptChunkPieces(keys, blobId, seq, final, plain));
}

/** The stored form of a chunk (ciphertext, then the tag) in pieces, for a writer that takes them as they are. */
export function encryptChunkPieces(
  keys: BlobKeys,
  blobId: string,
  seq: number,
  final: boolean,
  plain: Buffer,
): Buffer[] {
  const cipher = createCipheriv('aes-256-gcm', keys.chunkKey, chunkIv(seq));
  cipher.setAAD(chunkAad(blobId, seq, final));
  const encrypted = cipher.update(plain);
  const rest = cipher.final(); // empty for GCM
  return rest.length === 0 ? [encrypted, cipher.getAuthTag()] : [encrypted, rest, cipher.getAuthTag()];
}

/** The plaintext of one stored chunk, authenticated as a whole before any of it is returned. */
export function decryptChunk(keys: BlobKeys, blobId: string, seq: number, final: boolean, stored: Buffer): Buffer {
  if (stored.length < TAG_BYTES) throw new BlobCorruptError(`chunk ${seq} of blob ${blobId} is too short`);
  try {
    const decipher = createDecipheriv('aes-256-gcm', keys.chunkKey, chunkIv(seq), { authTagLength: TAG_BYTES });
    decipher.setAAD(chunkAad(blobId, seq, final));
    decipher.setAuthTag(stored.subarray(stored.length - TAG_BYTES));
    const plain = decipher.update(stored.subarray(0, stored.length - TAG_BYTES));
    const rest = decipher.final(); // empty for GCM; checks the tag
    return rest.length === 0 ? plain : Buffer.concat([plain, rest]);
  } catch (cause) {
    throw new BlobCorruptError(`chunk ${seq} of blob ${blobId} does not authenticate`, { cause });
  }
}

/** The running keyed digest of a blob's content (the envelope's opaque `sha256`). */
export function contentDigest(keys: BlobKeys): Hmac {
  return createHmac('sha256', keys.digestKey);
}
