// Retention: entries past expires_at are deleted in small batches, each its own short transaction, so a purge never
// holds many row locks for long.
import { type Pool, withTransaction } from '@smgw/db';
import { recordEventBatch } from '@smgw/trace';

export interface QuarantinePurge {
  /** Entries deleted. */
  deleted: number;
  /**
   * Distinct blob digests of the deleted entries. The blobs themselves stay: they belong to their message, and
   * @smgw/blob-store's purgeFinishedMessageBlobs / collectUnreferencedBlobs remove them once nothing needs them.
   */
  blobSha256s: string[];
}

/**
 * Deletes every quarantine entry with `expires_at <= now`, `batch` rows per transaction, and records a
 * `quarantine.purged` event on each message's trace. Rows locked by a release in progress are skipped and purged
 * on a later run. Safe to run from several replicas at once.
 */
export async function purgeExpiredQuarantine(pool: Pool, now: Date, batch: number): Promise<QuarantinePurge> {
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be a positive whole number: ${batch}`);
  let deleted = 0;
  const blobs = new Set<string>();
  for (;;) {
    const rows = await withTransaction(pool, async (client) => {
      const purged = await client.query<{ id: string; message_id: string; blob_sha256: string }>(
        `delete from quarantine where id in (
           select id from quarantine where expires_at <= $1 order by expires_at limit $2 for update skip locked
         ) returning id, message_id, blob_sha256`,
        [now, batch],
      );
      await recordEventBatch(
        client,
        purged.rows.map((row) => ({
          messageId: row.message_id,
          stage: 'lifecycle',
          event: 'quarantine.purged',
          outcome: 'purged',
          data: { quarantineId: row.id },
          at: now,
        })),
      );
      return purged.rows;
    });
    deleted += rows.length;
    for (const row of rows) blobs.add(row.blob_sha256);
    if (rows.length < batch) return { deleted, blobSha256s: [...blobs] };
  }
}
