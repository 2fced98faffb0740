// One stage opening the same small blob several times (deliver checks outbound mail whole, then sends it): the
// blob is read from the database and decrypted once, and every open streams that copy.
import { Readable } from 'node:stream';
import type { BlobRef } from '@smgw/envelope';
import type { BlobStore } from './index.ts';

/**
 * `store`, except that the blob `blob` (when it is at most `maxBytes`) is read once, on its first open or readAll,
 * and kept for the life of the returned store. A failed read fails every open alike (a stream error, never an end).
 */
export function readingOnce(store: BlobStore, blob: BlobRef, maxBytes: number): BlobStore {
  if (blob.size > maxBytes) return store;
  let bytes: Promise<Buffer> | undefined;
  const read = () => {
    bytes ??= store.readAll(blob.ref);
    return bytes;
  };
  return {
    put: (source, options) => store.put(source, options),
    stage: (source, options) => store.stage(source, options),
    stat: (ref) => store.stat(ref),
    open: (ref, found) => (ref === blob.ref ? Readable.from(streamOf(read)) : store.open(ref, found)),
    readAll: (ref) => (ref === blob.ref ? read() : store.readAll(ref)),
  };
}

async function* streamOf(read: () => Promise<Buffer>): AsyncGenerator<Buffer> {
  yield await read();
}
