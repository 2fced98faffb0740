// Listing and showing quarantine entries (the admin API). The message content is never read here.
import type { Pool, PoolClient } from '@smgw/db';
import { ENTRY_COLUMNS, type EntryRow, type QuarantineEntry, toEntry } from './entry-row.ts';

export type { QuarantineEntry } from './entry-row.ts';

type Queryable = Pool | PoolClient;

export const QUARANTINE_STATES = ['open', 'released', 'all'] as const;
export type QuarantineState = (typeof QUARANTINE_STATES)[number];

export interface QuarantineFilter {
  state: QuarantineState;
  direction?: string | undefined;
  /** Newest first; at most this many. */
  limit: number;
  /** Only entries with an id (ULID: time-ordered) below this one: the cursor of the next page. */
  before?: string | undefined;
}

/** Quarantine entries, newest first, filtered by state (default: open ones) and direction, one page at a time. */
export async function listQuarantine(db: Queryable, filter: QuarantineFilter): Promise<QuarantineEntry[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.state === 'open') where.push('released_at is null');
  if (filter.state === 'released') where.push('released_at is not null');
  if (filter.direction) {
    params.push(filter.direction);
    where.push(`direction = $${params.length}`);
  }
  if (filter.before) {
    params.push(filter.before);
    where.push(`id < $${params.length}`);
  }
  params.push(filter.limit);
  const result = await db.query<EntryRow>(
    `select ${ENTRY_COLUMNS} from quarantine ${where.length ? `where ${where.join(' and ')}` : ''}
     order by id desc limit $${params.length}`,
    params,
  );
  return result.rows.map(toEntry);
}

export async function getQuarantineEntry(db: Queryable, id: string): Promise<QuarantineEntry | undefined> {
  const result = await db.query<EntryRow>(`select ${ENTRY_COLUMNS} from quarantine where id = $1`, [id]);
  const row = result.rows[0];
  return row ? toEntry(row) : undefined;
}
