import type { Pool } from '@smgw/db';
import type { BlobRef } from '@smgw/envelope';
import { BlobStorageError } from './errors.ts';

export interface CommittedBlob {
  /** The blob's random id, which is its reference. */
  id: string;
  /** Keyed digest of the content (blob-cipher.ts), never a plain hash. */
  digest: string;
  size: number;
  kekId: string;
  wrappedKey: Buffer;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether `ref` can be a blob reference at all (references from before encryption at rest were SHA-256 hex). */
export const isBlobRef = (ref: string): boolean => UUID.test(ref);

/** The committed blob with this reference, if any. Rows still 'writing' never match. */
export async function findCommittedBlob(pool: Pool, ref: string): Promise<CommittedBlob | undefined> {
  if (!isBlobRef(ref)) return undefined;
  let rows: { id: string; digest: string; size: string; kek_id: string; wrapped_key: Buffer }[];
  try {
    ({ rows } = await pool.query(
      `select id, digest, size, kek_id, wrapped_key from blobs where id = $1 and state = 'committed'`,
      [ref],
    ));
  } catch (err) {
    throw new BlobStorageError(`cannot look up blob ${ref}: ${(err as Error).message}`, { cause: err });
  }
  const row = rows[0];
  // bigint comes back as a string; blobs are far below 2^53 bytes.
  return row
    ? { id: row.id, digest: row.digest, size: Number(row.size), kekId: row.kek_id, wrappedKey: row.wrapped_key }
    : undefined;
}

export function toBlobRef(blob: { id: string; digest: string; size: number }): BlobRef {
  return { ref: blob.id, sha256: blob.digest, size: blob.size };
}
