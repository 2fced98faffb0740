// Marking an entry released. What a release does besides (the recipients' state, the trace, publishing the stored
// envelope to its next stage) is the admin API's, in the same transaction.
import type { Pool, PoolClient } from '@smgw/db';
import { ENTRY_COLUMNS, type EntryRow, type QuarantineEntry, toEntry } from './entry-row.ts';

type Queryable = Pool | PoolClient;

export interface QuarantineRelease {
  id: string;
  /** Who releases it. */
  operator: string;
  reason?: string | undefined;
  at: Date;
}

export interface ReleasedQuarantineEntry {
  entry: QuarantineEntry;
  /** The envelope as it reached scan, as stored (unvalidated): the release continues from it. */
  storedEnvelope: unknown;
}

/**
 * Marks the entry released if it is still open; undefined when it is not (unknown, or released already). Inside the
 * caller's transaction the row stays locked until commit or rollback, so of concurrent releases exactly one gets it.
 */
export async function markQuarantineReleased(
  db: Queryable,
  release: QuarantineRelease,
): Promise<ReleasedQuarantineEntry | undefined> {
  const updated = await db.query<EntryRow & { envelope: unknown }>(
    `update quarantine set released_at = $2, released_by = $3, release_reason = $4
     where id = $1 and released_at is null
     returning ${ENTRY_COLUMNS}, envelope`,
    [release.id, release.at, release.operator, release.reason ?? null],
  );
  const row = updated.rows[0];
  return row ? { entry: toEntry(row), storedEnvelope: row.envelope } : undefined;
}
