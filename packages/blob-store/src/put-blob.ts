import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Pool } from '@smgw/db';
import type { BlobRef } from '@smgw/envelope';
import { findCommittedBlob, toBlobRef } from './committed-blob.ts';
import { BlobSourceError, BlobStorageError, BlobTooLargeError } from './errors.ts';

export interface PutBlobOptions {
  chunkBytes: number;
  maxBytes?: number | undefined;
}

const UNIQUE_VIOLATION = '23505';

/**
 * Streams `source` into blob_chunks, one awaited autocommit insert per chunk, so a slow sender pins no pool
 * connection and memory stays at about one chunk (the source is only read when the previous chunk is stored).
 * The blob becomes visible in one statement at the end; identical content already committed wins and our rows go.
 * On any failure our rows are deleted (best effort; the reaper purges what a crash leaves in state 'writing').
 */
export async function putBlob(
  pool: Pool,
  source: Readable | AsyncIterable<Uint8Array>,
  options: PutBlobOptions,
): Promise<BlobRef> {
  const { chunkBytes, maxBytes } = options;
  const id = randomUUID();
  try {
    await storage(`cannot start blob ${id}`, () => pool.query('insert into blobs (id) values ($1)', [id]));
  } catch (err) {
    stopSource(source);
    throw err;
  }
  try {
    const { sha256, size } = await writeChunks(pool, id, source, chunkBytes, maxBytes);
    return await commitBlob(pool, id, sha256, size);
  } catch (err) {
    await pool.query('delete from blobs where id = $1', [id]).catch(() => {});
    throw err;
  }
}

async function writeChunks(
  pool: Pool,
  id: string,
  source: Readable | AsyncIterable<Uint8Array>,
  chunkBytes: number,
  maxBytes: number | undefined,
): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  const iterator = source[Symbol.asyncIterator]();
  // One buffer, reused: each insert is awaited, so pg has sent the bytes before we overwrite them.
  const chunk = Buffer.alloc(chunkBytes);
  let filled = 0;
  let seq = 0;
  let size = 0;
  const insertChunk = (data: Buffer) => {
    const at = seq++;
    return storage(`cannot store chunk ${at} of blob ${id}`, () =>
      pool.query('insert into blob_chunks (blob_id, seq, data) values ($1, $2, $3)', [id, at, data]),
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
      hash.update(piece);
      let offset = 0;
      while (offset < piece.byteLength) {
        const n = Math.min(chunkBytes - filled, piece.byteLength - offset);
        chunk.set(piece.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
        if (filled === chunkBytes) {
          await insertChunk(chunk);
          filled = 0;
        }
      }
    }
    if (filled > 0) await insertChunk(chunk.subarray(0, filled));
  } catch (err) {
    // Stop reading at once: the rest of an oversized or failed upload is of no use.
    await Promise.resolve(iterator.return?.()).catch(() => {});
    stopSource(source);
    throw err;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Makes the blob visible, or, if the same content is already committed, drops ours and answers with that one. */
async function commitBlob(pool: Pool, id: string, sha256: string, size: number): Promise<BlobRef> {
  const existing = await findCommittedBlob(pool, sha256);
  if (existing) return dropDuplicate(pool, id, existing);
  try {
    const { rowCount } = await pool.query(
      `update blobs set state = 'committed', sha256 = $2, size = $3, committed_at = now()
        where id = $1 and state = 'writing'`,
      [id, sha256, size],
    );
    if (rowCount !== 1) {
      throw new BlobStorageError(`blob ${id} vanished before its commit (purged as an abandoned write?)`);
    }
    return toBlobRef({ sha256, size });
  } catch (err) {
    if (err instanceof BlobStorageError) throw err;
    // A concurrent put of the same content committed first: the unique index on sha256 decides the race.
    if ((err as { code?: unknown }).code === UNIQUE_VIOLATION) {
      const winner = await findCommittedBlob(pool, sha256);
      if (winner) return dropDuplicate(pool, id, winner);
    }
    throw new BlobStorageError(`cannot commit blob ${id}: ${(err as Error).message}`, { cause: err });
  }
}

async function dropDuplicate(pool: Pool, id: string, existing: { sha256: string; size: number }): Promise<BlobRef> {
  // The content is already durable, so a failed delete does no harm: the reaper removes the 'writing' leftover.
  await pool.query('delete from blobs where id = $1', [id]).catch(() => {});
  return toBlobRef(existing);
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
