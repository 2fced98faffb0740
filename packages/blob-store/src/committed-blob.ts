import type { Pool } from '@smgw/db';
import type { BlobRef } from '@smgw/envelope';
import { BlobStorageError } from './errors.ts';

export interface CommittedBlob {
  id: string;
  sha256: string;
  size: number;
}

/** The committed blob with this SHA-256, if any. Rows still 'writing' have no sha256 yet, so they never match. */
export async function findCommittedBlob(pool: Pool, sha256: string): Promise<CommittedBlob | undefined> {
  let rows: { id: string; sha256: string; size: string }[];
  try {
    ({ rows } = await pool.query(`select id, sha256, size from blobs where sha256 = $1 and state = 'committed'`, [
      sha256,
    ]));
  } catch (err) {
    throw new BlobStorageError(`cannot look up blob ${sha256}: ${(err as Error).message}`, { cause: err });
  }
  const row = rows[0];
  // bigint comes back as a string; blobs are far below 2^53 bytes.
  return row ? { id: row.id, sha256: row.sha256, size: Number(row.size) } : undefined;
}

export function toBlobRef(blob: { sha256: string; size: number }): BlobRef {
  return { ref: blob.sha256, sha256: blob.sha256, size: blob.size };
}
