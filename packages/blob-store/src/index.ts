// The claim check: raw RFC 5322 messages in PostgreSQL, chunked, streamed in and out, addressed by SHA-256.
// A 50 MB message never sits whole in memory: put and open hold a few chunks at a time.
import type { Readable } from 'node:stream';
import type { BlobRef } from '@smgw/envelope';

export type { BlobRef };

export interface BlobStore {
  /**
   * Streams `source` into the store. Resolves once the blob is committed (durable) with its reference
   * (ref = sha256 hex; identical content is stored once). Rejects, leaving nothing visible, if the source errors
   * (BlobSourceError), exceeds `maxBytes` (BlobTooLargeError), or the database fails (BlobStorageError).
   * On rejection a stream source is destroyed: the rest of it is not read.
   */
  put(source: Readable | AsyncIterable<Uint8Array>, options?: { maxBytes?: number }): Promise<BlobRef>;
  /**
   * A stream of the blob's bytes, read a few chunks at a time. Errors with BlobNotFoundError if absent,
   * BlobStorageError if the database fails, BlobCorruptError if the bytes do not match the recorded size/SHA-256.
   */
  open(ref: string): Readable;
  /** Size and hash, or undefined if there is no such committed blob. */
  stat(ref: string): Promise<BlobRef | undefined>;
  /** Reads the whole blob into memory: only for small blobs (tests, DSN headers). */
  readAll(ref: string): Promise<Buffer>;
}

export * from './blob-store.ts';
export * from './errors.ts';
export { CHUNKS_PER_READ } from './open-blob.ts';
export * from './purge-abandoned-writes.ts';
