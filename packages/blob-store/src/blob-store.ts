import type { Pool } from '@smgw/db';
import { prepareBlobDirectory } from './blob-files.ts';
import { findCommittedBlob, toBlobRef } from './committed-blob.ts';
import type { BlobStore } from './index.ts';
import type { KeyStore } from './key-store.ts';
import { openBlob } from './open-blob.ts';
import { putBlob, stageBlob } from './put-blob.ts';
import { SMALL_BLOB_BYTES } from './small-blob.ts';

export const DEFAULT_CHUNK_BYTES = 256 * 1024;
/** pg sends a whole parameter in one message; far bigger chunks would only cost memory. */
const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

export interface BlobStoreOptions {
  /** Where the key-encryption keys are (createFolderKeyStore). */
  keyStore: KeyStore;
  chunkBytes?: number;
  /**
   * SMGW_BLOB_DIR: new blobs over SMALL_BLOB_BYTES keep their chunks in files there instead of PostgreSQL
   * (blob-files.ts). Blobs are read from wherever their row says, so blobs written before a switch stay readable
   * (those in files only with a folder).
   */
  directory?: string | undefined;
  /** With a directory, blobs of at most this many bytes stay in PostgreSQL all the same (default SMALL_BLOB_BYTES; 0: none). */
  smallBlobBytes?: number;
}

export function createBlobStore(pool: Pool, options: BlobStoreOptions): BlobStore {
  const { keyStore, directory } = options;
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const smallBlobBytes = options.smallBlobBytes ?? SMALL_BLOB_BYTES;
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > MAX_CHUNK_BYTES) {
    throw new RangeError(`chunkBytes must be an integer from 1 to ${MAX_CHUNK_BYTES}, got ${chunkBytes}`);
  }
  if (!Number.isInteger(smallBlobBytes) || smallBlobBytes < 0) {
    throw new RangeError(`smallBlobBytes must be a non-negative integer, got ${smallBlobBytes}`);
  }
  if (directory !== undefined) prepareBlobDirectory(directory);
  return {
    put(source, putOptions) {
      const invalid = invalidPutOptions(putOptions);
      if (invalid) return Promise.reject(invalid);
      return putBlob(pool, keyStore, source, { ...putOptions, chunkBytes, directory, smallBlobBytes });
    },
    stage(source, stageOptions) {
      const invalid = invalidPutOptions(stageOptions);
      if (invalid) return Promise.reject(invalid);
      return stageBlob(pool, keyStore, source, { ...stageOptions, chunkBytes, directory, smallBlobBytes });
    },
    open(ref, found) {
      return openBlob(pool, keyStore, ref, directory, found);
    },
    async stat(ref) {
      const blob = await findCommittedBlob(pool, ref);
      return blob ? toBlobRef(blob) : undefined;
    },
    readAll(ref) {
      return wholeOf(openBlob(pool, keyStore, ref, directory));
    },
  };
}

/** Why put's or stage's options cannot be used, or undefined. */
function invalidPutOptions(options: { messageId: string; maxBytes?: number | undefined }): RangeError | undefined {
  const { maxBytes, messageId } = options;
  if (maxBytes !== undefined && !(maxBytes >= 0)) {
    return new RangeError(`maxBytes must be a non-negative number, got ${maxBytes}`);
  }
  if (!messageId) return new RangeError('a blob needs the id of the message it belongs to');
  return undefined;
}

/** The whole stream: its one chunk as it is, or the chunks joined (stream/consumers' buffer() copies even one). */
async function wholeOf(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}
