import { Readable } from 'node:stream';
import { type Pool, preparedStatement } from '@smgw/db';
import { type BlobKeys, decryptChunk, unwrapBlobKeys } from './blob-cipher.ts';
import { readBlobFileChunks } from './blob-files.ts';
import { type CommittedBlob, type FoundBlob, findCommittedBlobWithChunks, type StoredChunk } from './committed-blob.ts';
import { BlobCorruptError, BlobKeyError, BlobNotFoundError, BlobStorageError } from './errors.ts';
import type { KeyStore } from './key-store.ts';

/** Chunks fetched per query: few enough to bound memory (4 × 256 KiB), enough to keep round trips down. */
export const CHUNKS_PER_READ = 4;
const FILE_READ_SLACK_BYTES = 4096;

/**
 * A stream of a committed blob's bytes. Chunks are fetched a few at a time in seq order, only when the consumer
 * asks for more, so memory stays bounded and backpressure holds. The first query fetches the blob's row with its
 * first chunks, so a blob of up to CHUNKS_PER_READ chunks reads in one round trip. Each query is its own autocommit
 * statement: a slow reader pins no pool connection. Every chunk is authenticated whole before its bytes are pushed;
 * the stream ends only after the chunk marked final (and the recorded size matches). Anything else (a chunk changed, missing,
 * moved or from another blob, the final one missing) errors the stream with BlobCorruptError instead of ending it,
 * so a consumer never takes a cut blob for a whole one.
 */
const NEXT_CHUNKS = preparedStatement(
  'blob-next-chunks',
  'select seq, data, final from blob_chunks where blob_id = $1 and seq >= $2 order by seq limit $3',
);

/**
 * A blob whose row says its chunks are in files (blob-files.ts) is read from `directory` (SMGW_BLOB_DIR); without one
 * it fails with BlobStorageError, as when the database fails.
 */
export function openBlob(pool: Pool, keyStore: KeyStore, ref: string, directory?: string, found?: FoundBlob): Readable {
  let blob: CommittedBlob | undefined;
  let keys: BlobKeys | undefined;
  let nextSeq = 0;
  let bytesRead = 0;
  let fetching = false;
  /** Where the next record of a blob in files starts. */
  let filePosition = 0;

  /**
   * The blob's row and its first chunks, in one statement (or the row, then the file's first chunks); with the row
   * looked up beforehand (`found`), only the chunks, unless they came with it.
   */
  const start = async (): Promise<{ blob: CommittedBlob; keys: BlobKeys; chunks: StoredChunk[] }> => {
    const looked =
      found?.ref === ref
        ? found.blob && { blob: found.blob, chunks: found.chunks }
        : await findCommittedBlobWithChunks(pool, ref, CHUNKS_PER_READ);
    if (!looked) throw new BlobNotFoundError(`no committed blob ${ref}`);
    const { blob } = looked;
    const kek = await keyStore.get(blob.kekId);
    if (!kek) throw new BlobKeyError('BLOB_KEY_RETIRED', `the key of blob ${ref} (KEK ${blob.kekId}) is retired`);
    const keys = unwrapBlobKeys(kek, blob.id, blob.wrappedKey);
    const chunks = blob.storage === 'database' && looked.chunks ? looked.chunks : await nextChunks(blob);
    return { blob, keys, chunks };
  };

  const fileChunks = async (of: CommittedBlob): Promise<StoredChunk[]> => {
    if (directory === undefined) {
      throw new BlobStorageError(`blob ${ref} is kept in files, and SMGW_BLOB_DIR is not set here`);
    }
    // What is left, plus room for the records' headers and tags: a small blob is read in one call.
    const expectedBytes = of.size - bytesRead + FILE_READ_SLACK_BYTES;
    const read = await readBlobFileChunks(
      directory,
      of.id,
      { position: filePosition, seq: nextSeq },
      CHUNKS_PER_READ,
      expectedBytes,
    );
    filePosition = read.position;
    return read.chunks;
  };

  const nextChunks = async (of: CommittedBlob): Promise<StoredChunk[]> => {
    if (of.storage === 'files') return fileChunks(of);
    const blobId = of.id;
    try {
      const { rows } = await pool.query(NEXT_CHUNKS([blobId, nextSeq, CHUNKS_PER_READ]));
      return rows;
    } catch (err) {
      throw new BlobStorageError(`cannot read blob ${ref}: ${(err as Error).message}`, { cause: err });
    }
  };

  const fetchMore = async (stream: Readable): Promise<void> => {
    let rows: StoredChunk[];
    if (!blob || !keys) ({ blob, keys, chunks: rows } = await start());
    else rows = await nextChunks(blob);
    if (stream.destroyed) return;
    for (const row of rows) {
      if (row.seq !== nextSeq) throw new BlobCorruptError(`blob ${ref} lacks chunk ${nextSeq}`);
      const plain = decryptChunk(keys, blob.id, row.seq, row.final, row.data);
      nextSeq++;
      bytesRead += plain.byteLength;
      if (row.final) {
        if (bytesRead !== blob.size) {
          throw new BlobCorruptError(`blob ${ref} reads as ${bytesRead} bytes, recorded ${blob.size}`);
        }
        stream.push(plain);
        stream.push(null);
        return;
      }
      stream.push(plain);
    }
    if (rows.length < CHUNKS_PER_READ) throw new BlobCorruptError(`blob ${ref} ends without its final chunk`);
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
