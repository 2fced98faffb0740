// The claim check: raw RFC 5322 messages in PostgreSQL, chunked, streamed in and out, encrypted at rest.
// A 50 MB message never sits whole in memory: put and open hold a few chunks at a time.
// Each blob has its own data key, wrapped under a key-encryption key of the key store (outside the database);
// retiring that KEK once its blobs are purged makes them unreadable, also from an older database dump.
import type { Readable } from 'node:stream';
import type { BlobRef } from '@smgw/envelope';
import type { FoundBlob } from './committed-blob.ts';
import type { StagedBlob, StagedRow } from './put-blob.ts';

export type { BlobRef, StagedBlob, StagedRow };

export interface BlobStore {
  /**
   * Streams `source` into the store, encrypted. Resolves once the blob is committed (durable) with its reference:
   * ref = a new random id (equal content put twice is two blobs), sha256 = keyed digest of the content (opaque),
   * size. `messageId` is the message the blob belongs to: it is kept while that message is unfinished or referred
   * to (purge-blobs.ts). Rejects, leaving nothing visible, if the source errors (BlobSourceError), exceeds
   * `maxBytes` (BlobTooLargeError), the database fails (BlobStorageError) or the key store does (BlobKeyError).
   * On rejection a stream source is destroyed: the rest of it is not read.
   */
  put(
    source: Readable | AsyncIterable<Uint8Array>,
    options: { messageId: string; maxBytes?: number },
  ): Promise<BlobRef>;
  /**
   * Like put, but with SMGW_BLOB_DIR the blob comes back with its rows still to commit: the caller commits `rows`
   * with its own rows in one statement, then publish() (discard() if that fails). In the database store the blob is
   * committed here and `rows` is empty.
   */
  stage(
    source: Readable | AsyncIterable<Uint8Array>,
    options: { messageId: string; maxBytes?: number },
  ): Promise<StagedBlob>;
  /**
   * A stream of the blob's bytes, read a few chunks at a time, each authenticated before it is pushed. Errors with
   * BlobNotFoundError if absent, BlobStorageError if the database fails, BlobKeyError if its key is retired or the
   * key store fails, BlobCorruptError if a chunk does not authenticate or the blob is cut short: an error, never an
   * end, so whoever pipes it on aborts. With `found` (its row looked up by another statement, committedBlobColumn),
   * the row is not read again.
   */
  open(ref: string, found?: FoundBlob): Readable;
  /** Size and digest, or undefined if there is no such committed blob. */
  stat(ref: string): Promise<BlobRef | undefined>;
  /** Reads the whole blob into memory: only for small blobs (tests, DSN headers). */
  readAll(ref: string): Promise<Buffer>;
}

export { type BlobFiles, blobDirectorySpace, blobFilePath, blobFiles } from './blob-files.ts';
export * from './blob-store.ts';
export { committedBlobColumn, committedBlobParameter, type FoundBlob, foundBlob } from './committed-blob.ts';
export * from './errors.ts';
export * from './folder-key-store.ts';
export * from './key-store.ts';
export { CHUNKS_PER_READ } from './open-blob.ts';
export * from './purge-abandoned-writes.ts';
export * from './purge-blobs.ts';
export * from './read-once.ts';
export { SMALL_BLOB_BYTES } from './small-blob.ts';
