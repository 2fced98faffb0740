import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Pool } from '@smgw/db';
import type { BlobRef } from '@smgw/envelope';
import { type BlobKeys, contentDigest, encryptChunk, type NewBlobKeys, newBlobKeys } from './blob-cipher.ts';
import { toBlobRef } from './committed-blob.ts';
import { BlobKeyError, BlobSourceError, BlobStorageError, BlobTooLargeError } from './errors.ts';
import type { KeyStore } from './key-store.ts';

export interface PutBlobOptions {
  chunkBytes: number;
  maxBytes?: number | undefined;
  /** The message the blob belongs to: its reference for retention and garbage collection. */
  messageId: string;
}

/**
 * Streams `source` into blob_chunks, encrypted chunk by chunk under a new data key (blob-cipher.ts), one awaited
 * autocommit insert per chunk, so a slow sender pins no pool connection and memory stays at about one chunk (the
 * source is only read when the previous chunk is stored). A full chunk is written once more bytes follow it, so the
 * last one written can be marked final. The blob becomes visible in one statement at the end, under a new random
 * id: equal content put twice is two blobs. On any failure our rows are deleted (best effort;
 * purgeAbandonedWrites removes what a crash leaves in state 'writing').
 */
export async function putBlob(
  pool: Pool,
  keyStore: KeyStore,
  source: Readable | AsyncIterable<Uint8Array>,
  options: PutBlobOptions,
): Promise<BlobRef> {
  const { chunkBytes, maxBytes, messageId } = options;
  const id = randomUUID();
  let keys: NewBlobKeys;
  try {
    const kek = await keyStore.current();
    keys = newBlobKeys(kek, id);
    const { wrappedKey } = keys;
    // The row names its KEK from the start: a KEK is retired only when no row, writing or committed, names it.
    await storage(`cannot start blob ${id}`, () =>
      pool.query('insert into blobs (id, message_id, kek_id, wrapped_key) values ($1, $2, $3, $4)', [
        id,
        messageId,
        kek.id,
        wrappedKey,
      ]),
    );
  } catch (err) {
    stopSource(source);
    if (err instanceof BlobStorageError || err instanceof BlobKeyError) throw err;
    throw new BlobKeyError('KEY_STORE_FAILED', `cannot key blob ${id}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const { digest, size } = await writeChunks(pool, id, keys, source, chunkBytes, maxBytes);
    return await commitBlob(pool, id, digest, size);
  } catch (err) {
    await pool.query('delete from blobs where id = $1', [id]).catch(() => {});
    throw err;
  }
}

async function writeChunks(
  pool: Pool,
  id: string,
  keys: BlobKeys,
  source: Readable | AsyncIterable<Uint8Array>,
  chunkBytes: number,
  maxBytes: number | undefined,
): Promise<{ digest: string; size: number }> {
  const digest = contentDigest(keys);
  const iterator = source[Symbol.asyncIterator]();
  // One buffer, reused: each chunk is encrypted into a new buffer before the next bytes are copied in.
  const chunk = Buffer.alloc(chunkBytes);
  let filled = 0;
  let seq = 0;
  let size = 0;
  const insertChunk = (plain: Buffer, final: boolean) => {
    const at = seq++;
    const data = encryptChunk(keys, id, at, final, plain);
    return storage(`cannot store chunk ${at} of blob ${id}`, () =>
      pool.query('insert into blob_chunks (blob_id, seq, data, final) values ($1, $2, $3, $4)', [id, at, data, final]),
    );
  };
  try {
    for (;;) {
      let step: IteratorResult<unknown>;
      try {
        step = await iterator.next();
      } catch (err) {
        throw new BlobSourceError(`the source of blob ${id} failed: ${(err as Error).message}`, { cause: err });
      }
      if (step.done) break;
      const piece = step.value;
      if (!(piece instanceof Uint8Array)) {
        throw new BlobSourceError(`the source of blob ${id} yielded ${typeof piece}, not bytes`);
      }
      size += piece.byteLength;
      if (maxBytes !== undefined && size > maxBytes) {
        throw new BlobTooLargeError(`blob exceeds the limit of ${maxBytes} bytes`);
      }
      digest.update(piece);
      let offset = 0;
      while (offset < piece.byteLength) {
        // A full chunk is not the last one: more bytes are here.
        if (filled === chunkBytes) {
          await insertChunk(chunk, false);
          filled = 0;
        }
        const n = Math.min(chunkBytes - filled, piece.byteLength - offset);
        chunk.set(piece.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
      }
    }
    // Always a final chunk, empty for an empty blob: a blob cut short lacks it and does not read.
    await insertChunk(chunk.subarray(0, filled), true);
  } catch (err) {
    // Stop reading at once: the rest of an oversized or failed upload is of no use.
    await Promise.resolve(iterator.return?.()).catch(() => {});
    stopSource(source);
    throw err;
  }
  return { digest: digest.digest('hex'), size };
}

/** Makes the blob visible. */
async function commitBlob(pool: Pool, id: string, digest: string, size: number): Promise<BlobRef> {
  const { rowCount } = await storage(`cannot commit blob ${id}`, () =>
    pool.query(
      `update blobs set state = 'committed', digest = $2, size = $3, committed_at = now()
        where id = $1 and state = 'writing'`,
      [id, digest, size],
    ),
  );
  if (rowCount !== 1) {
    throw new BlobStorageError(`blob ${id} vanished before its commit (purged as an abandoned write?)`);
  }
  return toBlobRef({ id, digest, size });
}

function stopSource(source: Readable | AsyncIterable<Uint8Array>): void {
  if (source instanceof Readable && !source.destroyed) source.destroy();
}

async function storage<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw new BlobStorageError(`${what}: ${(err as Error).message}`, { cause: err });
  }
}
