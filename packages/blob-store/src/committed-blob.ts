import { type Pool, preparedStatement, type QueryConfig } from '@smgw/db';
import type { BlobRef } from '@smgw/envelope';
import { BlobStorageError } from './errors.ts';
import { SMALL_BLOB_BYTES } from './small-blob.ts';

export interface CommittedBlob {
  /** The blob's random id, which is its reference. */
  id: string;
  /** Keyed digest of the content (blob-cipher.ts), never a plain hash. */
  digest: string;
  size: number;
  kekId: string;
  wrappedKey: Buffer;
  /** Where its chunks are: rows of blob_chunks, or a file in SMGW_BLOB_DIR (blob-files.ts). */
  storage: 'database' | 'files';
}

/** One stored chunk: ciphertext and tag (blob-cipher.ts). */
export interface StoredChunk {
  seq: number;
  data: Buffer;
  final: boolean;
}

interface BlobRow {
  id: string;
  digest: string;
  size: string;
  kek_id: string;
  wrapped_key: Buffer;
  storage: 'database' | 'files';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether `ref` can be a blob reference at all (references from before encryption at rest were SHA-256 hex). */
export const isBlobRef = (ref: string): boolean => UUID.test(ref);

/** The committed blob with this reference, if any. Rows still 'writing' never match. */
export async function findCommittedBlob(pool: Pool, ref: string): Promise<CommittedBlob | undefined> {
  if (!isBlobRef(ref)) return undefined;
  const rows = await lookUp<BlobRow>(pool, ref, {
    text: `select id, digest, size, kek_id, wrapped_key, storage from blobs where id = $1 and state = 'committed'`,
    values: [ref],
  });
  return rows[0] && toCommittedBlob(rows[0]);
}

/**
 * A committed blob's row read by another statement, as one of its columns (a round trip saved): the statement adds
 * `committedBlobColumn(n)` to its select list and `committedBlobParameter(ref)` as its parameter $n, and hands the
 * column's value to `foundBlob`, whose result `open` takes. Rows still 'writing' never match. A blob of one chunk of at
 * most SMALL_BLOB_BYTES in the database comes with that chunk, so it reads with no statement of its own.
 */
export function committedBlobColumn(parameter: number): string {
  return `(select jsonb_build_object('id', b.id, 'digest', b.digest, 'size', b.size, 'kek_id', b.kek_id,
             'wrapped_key', encode(b.wrapped_key, 'base64'), 'storage', b.storage,
             'chunk', (select encode(c.data, 'base64') from blob_chunks c
                        where b.storage = 'database' and b.size <= ${SMALL_BLOB_BYTES}
                          and c.blob_id = b.id and c.seq = 0 and c.final))
             from blobs b where b.id = $${parameter}::uuid and b.state = 'committed')`;
}

/** The parameter of committedBlobColumn: the reference, or null (no row) for one that cannot be a blob's. */
export const committedBlobParameter = (ref: string): string | null => (isBlobRef(ref) ? ref : null);

/** A blob's row looked up beforehand: the committed blob, or undefined when there was none. */
export interface FoundBlob {
  ref: string;
  blob: CommittedBlob | undefined;
  /** All its chunks when they came with the row (a small blob in the database), as stored: not yet authenticated. */
  chunks?: StoredChunk[];
}

/** The FoundBlob of a committedBlobColumn value (null: no such committed blob). */
export function foundBlob(ref: string, column: unknown): FoundBlob {
  if (column === null || column === undefined) return { ref, blob: undefined };
  const row = column as Record<string, unknown>;
  const { id, digest, size, kek_id, wrapped_key, storage, chunk } = row;
  if (
    typeof id !== 'string' ||
    id !== ref ||
    typeof digest !== 'string' ||
    typeof size !== 'number' ||
    typeof kek_id !== 'string' ||
    typeof wrapped_key !== 'string' ||
    (storage !== 'database' && storage !== 'files') ||
    (chunk !== undefined && chunk !== null && (typeof chunk !== 'string' || storage !== 'database'))
  ) {
    throw new BlobStorageError(`the looked-up row of blob ${ref} is not a blob row`);
  }
  const blob: CommittedBlob = {
    id,
    digest,
    size,
    kekId: kek_id,
    wrappedKey: Buffer.from(wrapped_key, 'base64'),
    storage,
  };
  if (typeof chunk !== 'string') return { ref, blob };
  // Its one chunk: decrypting it checks that it is this blob's chunk 0 and final (blob-cipher.ts).
  return { ref, blob, chunks: [{ seq: 0, data: Buffer.from(chunk, 'base64'), final: true }] };
}

/**
 * The committed blob with this reference and its first `chunkLimit` chunks in seq order (fewer if it has fewer,
 * none if it has none), in one statement: a blob of a few chunks reads in one round trip. Rows still 'writing' never
 * match. The chunks are as stored: whoever reads them checks their order, authenticity and the final one.
 */
export async function findCommittedBlobWithChunks(
  pool: Pool,
  ref: string,
  chunkLimit: number,
): Promise<{ blob: CommittedBlob; chunks: StoredChunk[] } | undefined> {
  if (!isBlobRef(ref)) return undefined;
  // One row per chunk, the blob's columns repeated (they are small); one row with null chunk columns if it has none.
  const rows = await lookUp<BlobRow & { seq: number | null; data: Buffer | null; final: boolean | null }>(
    pool,
    ref,
    BLOB_WITH_FIRST_CHUNKS([ref, chunkLimit]),
  );
  const [first] = rows;
  if (!first) return undefined;
  const chunks: StoredChunk[] = [];
  for (const { seq, data, final } of rows) {
    if (seq !== null && data !== null && final !== null) chunks.push({ seq, data, final });
  }
  return { blob: toCommittedBlob(first), chunks };
}

const BLOB_WITH_FIRST_CHUNKS = preparedStatement(
  'blob-with-first-chunks',
  `select b.id, b.digest, b.size, b.kek_id, b.wrapped_key, b.storage, c.seq, c.data, c.final
     from blobs b
     left join lateral (
       select seq, data, final from blob_chunks where blob_id = b.id order by seq limit $2
     ) c on true
    where b.id = $1 and b.state = 'committed'
    order by c.seq`,
);

async function lookUp<Row>(pool: Pool, ref: string, query: QueryConfig): Promise<Row[]> {
  try {
    return (await pool.query(query)).rows as Row[];
  } catch (err) {
    throw new BlobStorageError(`cannot look up blob ${ref}: ${(err as Error).message}`, { cause: err });
  }
}

function toCommittedBlob(row: BlobRow): CommittedBlob {
  // bigint comes back as a string; blobs are far below 2^53 bytes.
  return {
    id: row.id,
    digest: row.digest,
    size: Number(row.size),
    kekId: row.kek_id,
    wrappedKey: row.wrapped_key,
    storage: row.storage,
  };
}

export function toBlobRef(blob: { id: string; digest: string; size: number }): BlobRef {
  return { ref: blob.id, sha256: blob.digest, size: blob.size };
}
