import { buffer } from 'node:stream/consumers';
import type { Pool } from '@smgw/db';
import { findCommittedBlob, toBlobRef } from './committed-blob.ts';
import type { BlobStore } from './index.ts';
import { openBlob } from './open-blob.ts';
import { putBlob } from './put-blob.ts';

export const DEFAULT_CHUNK_BYTES = 256 * 1024;
/** pg sends a whole parameter in one message; far bigger chunks would only cost memory. */
const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

export function createBlobStore(pool: Pool, options: { chunkBytes?: number } = {}): BlobStore {
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > MAX_CHUNK_BYTES) {
    throw new RangeError(`chunkBytes must be an integer from 1 to ${MAX_CHUNK_BYTES}, got ${chunkBytes}`);
  }
  return {
    put(source, putOptions = {}) {
      const { maxBytes } = putOptions;
      if (maxBytes !== undefined && !(maxBytes >= 0)) {
        return Promise.reject(new RangeError(`maxBytes must be a non-negative number, got ${maxBytes}`));
      }
      return putBlob(pool, source, { chunkBytes, maxBytes });
    },
    open(ref) {
      return openBlob(pool, ref);
    },
    async stat(ref) {
      const blob = await findCommittedBlob(pool, ref);
      return blob ? toBlobRef(blob) : undefined;
    },
    readAll(ref) {
      return buffer(openBlob(pool, ref));
    },
  };
}
