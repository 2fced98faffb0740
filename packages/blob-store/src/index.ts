// The claim check: raw RFC 5322 messages in PostgreSQL, chunked, streamed in and out, addressed by SHA-256.
// A 50 MB message never sits whole in memory. INTERFACE ONLY for now: implemented by the blob-store work item.
import type { Readable } from 'node:stream';
import type { Pool } from '@smgw/db';
import type { BlobRef } from '@smgw/envelope';

export type { BlobRef };

export interface BlobStore {
  /**
   * Streams `source` into the store. Resolves once the blob is committed (durable) with its reference
   * (ref = sha256 hex; identical content is stored once). Rejects, leaving nothing visible, if the source errors,
   * exceeds `maxBytes` (BlobTooLargeError), or the database fails.
   */
  put(source: Readable | AsyncIterable<Uint8Array>, options?: { maxBytes?: number }): Promise<BlobRef>;
  /** A stream of the blob's bytes, read a few chunks at a time. Errors with BlobNotFoundError if absent. */
  open(ref: string): Readable;
  /** Size and hash, or undefined if there is no such committed blob. */
  stat(ref: string): Promise<BlobRef | undefined>;
  /** Reads the whole blob into memory: only for small blobs (tests, DSN headers). */
  readAll(ref: string): Promise<Buffer>;
}

export declare function createBlobStore(pool: Pool, options?: { chunkBytes?: number }): BlobStore;

export class BlobTooLargeError extends Error {
  readonly code = 'BLOB_TOO_LARGE';
}
export class BlobNotFoundError extends Error {
  readonly code = 'BLOB_NOT_FOUND';
}
