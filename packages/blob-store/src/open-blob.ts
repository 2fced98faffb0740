import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Pool } from '@smgw/db';
import { type CommittedBlob, findCommittedBlob } from './committed-blob.ts';
import { BlobCorruptError, BlobNotFoundError, BlobStorageError } from './errors.ts';

/** Chunks fetched per query: few enough to bound memory (4 × 256 KiB), enough to keep round trips down. */
export const CHUNKS_PER_READ = 4;

/**
 * A stream of a committed blob's bytes. Chunks are fetched a few at a time in seq order, only when the consumer
 * asks for more, so memory stays bounded and backpressure holds. Each query is its own autocommit statement:
 * a slow reader pins no pool connection. The bytes are checked against the recorded size and SHA-256 before
 * the stream ends; on a mismatch it errors with BlobCorruptError instead of ending.
 */
export function openBlob(pool: Pool, ref: string): Readable {
  let blob: CommittedBlob | undefined;
  let nextSeq = 0;
  let bytesRead = 0;
  let hash: Hash | undefined;
  let fetching = false;

  const fetchMore = async (stream: Readable): Promise<void> => {
    if (!blob) {
      blob = await findCommittedBlob(pool, ref);
      if (!blob) throw new BlobNotFoundError(`no committed blob ${ref}`);
      hash = createHash('sha256');
    }
    let rows: { seq: number; data: Buffer }[];
    try {
      ({ rows } = await pool.query(
        'select seq, data from blob_chunks where blob_id = $1 and seq >= $2 order by seq limit $3',
        [blob.id, nextSeq, CHUNKS_PER_READ],
      ));
    } catch (err) {
      throw new BlobStorageError(`cannot read blob ${ref}: ${(err as Error).message}`, { cause: err });
    }
    if (stream.destroyed) return;
    for (const row of rows) {
      if (row.seq !== nextSeq) throw new BlobCorruptError(`blob ${ref} lacks chunk ${nextSeq}`);
      nextSeq++;
      bytesRead += row.data.byteLength;
      hash?.update(row.data);
      stream.push(row.data);
    }
    if (rows.length < CHUNKS_PER_READ) {
      const sha256 = hash?.digest('hex');
      if (bytesRead !== blob.size || sha256 !== blob.sha256) {
        throw new BlobCorruptError(
          `blob ${ref} reads as ${bytesRead} bytes with sha256 ${sha256}, recorded ${blob.size} bytes`,
        );
      }
      stream.push(null);
    }
  };

  return new Readable({
    read() {
      // read() is called again only after a push; the flag keeps a second query from overlapping anyway.
      if (fetching) return;
      fetching = true;
      fetchMore(this).then(
        () => {
          fetching = false;
        },
        (err: unknown) => {
          fetching = false;
          this.destroy(err as Error);
        },
      );
    },
  });
}
