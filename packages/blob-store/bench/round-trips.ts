// Micro benchmark (a command, not a test) of the blob store against the running PostgreSQL: N puts, then N reads
// (readAll) of a blob of SIZE bytes, C at a time, in a fresh test schema. Reports per put and per read: statements
// sent (every pool.query is counted), wall time, the CPU of this pool's PostgreSQL backends (from /proc: the server
// must run on this machine) and of this process, and the server-wide WAL written and synced meanwhile (pg_stat_wal:
// others' work counts too, and it is flushed about once a second, so only a rough figure).
//   node packages/blob-store/bench/round-trips.ts [--puts 2000] [--concurrency 20] [--size 10240]
//     [--storage extended|external]   storage of blob_chunks.data to set in the schema (default: as migrated)
//     [--store <module>]              another copy of src/blob-store.ts to compare with (e.g. main's, checked out)
//     [--directory <folder>]          contents in files there (SMGW_BLOB_DIR) instead of blob_chunks
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createTestDatabase, uniqueName } from '@smgw/testing';
import pg from 'pg';
import { type BlobStore, type createBlobStore, createFolderKeyStore } from '../src/index.ts';

const { values: args } = parseArgs({
  options: {
    puts: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '20' },
    size: { type: 'string', default: '10240' },
    storage: { type: 'string' },
    store: { type: 'string' },
    directory: { type: 'string' },
  },
});
const N = Number(args.puts);
const C = Number(args.concurrency);
const SIZE = Number(args.size);
const CLOCK_TICKS_PER_S = 100;

const { createBlobStore: create } = (
  args.store ? await import(pathToFileURL(resolve(args.store)).href) : await import('../src/index.ts')
) as { createBlobStore: typeof createBlobStore };

/** CPU seconds (user + system) a process has used so far, or undefined if it is gone. */
function cpuSeconds(pid: number): number | undefined {
  try {
    // The fields after the command name (which is in parentheses and may hold spaces): utime is the 14th field.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return undefined;
  }
}

async function inParallel(count: number, work: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (next < count) await work(next++);
    }),
  );
  return performance.now() - started;
}

const db = await createTestDatabase();
const applicationName = uniqueName('smgw-bench-blob');
// A pool of our own: C connections opened up front and kept, so their backends can be found and measured.
const pool = new pg.Pool({
  connectionString: db.url,
  max: C,
  idleTimeoutMillis: 0,
  application_name: applicationName,
  options: `-c search_path=${db.schema}`,
});
let statements = 0;
const counted = Object.assign(Object.create(pool) as pg.Pool, {
  query: (query: string | pg.QueryConfig, values?: unknown[]) => {
    statements++;
    return typeof query === 'string' ? pool.query(query, values) : pool.query(query);
  },
});

try {
  if (args.storage) await db.pool.query(`alter table blob_chunks alter column data set storage ${args.storage}`);
  const storage = (
    await db.pool.query(
      `select attstorage from pg_attribute where attrelid = 'blob_chunks'::regclass and attname = 'data'`,
    )
  ).rows[0].attstorage;
  const clients = await Promise.all(Array.from({ length: C }, () => pool.connect()));
  for (const client of clients) client.release();
  const { rows } = await db.pool.query('select pid from pg_stat_activity where application_name = $1', [
    applicationName,
  ]);
  const pids = rows.map((r: { pid: number }) => r.pid);
  const backendCpu = () => pids.reduce((sum, pid) => sum + (cpuSeconds(pid) ?? Number.NaN), 0);

  // Server-wide (other sessions add to them): only a rough figure on a shared server.
  const walStats = async () => {
    const { rows } = await db.pool.query(
      `select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 as bytes, wal_sync::float8 as syncs from pg_stat_wal`,
    );
    return rows[0] as { bytes: number; syncs: number };
  };

  const store: BlobStore = create(counted, { keyStore: createFolderKeyStore(db.keys), directory: args.directory });
  const content = Array.from({ length: N }, () => randomBytes(SIZE));
  const refs: string[] = [];
  await store.put(Readable.from([content[0] as Buffer]), { messageId: 'm-warm-up' });

  const phase = async (name: string, work: (i: number) => Promise<void>) => {
    statements = 0;
    const walBefore = await walStats();
    const cpuBefore = backendCpu();
    const clientBefore = process.cpuUsage();
    const ms = await inParallel(N, work);
    const backendMs = (backendCpu() - cpuBefore) * 1000;
    const client = process.cpuUsage(clientBefore);
    const walAfter = await walStats();
    process.stdout.write(
      `${name}: ${(statements / N).toFixed(2)} statements each, ${ms.toFixed(0)} ms for ${N} ` +
        `(${((N * 1000) / ms).toFixed(0)}/s), PostgreSQL backends ${(backendMs / N).toFixed(3)} ms CPU each ` +
        `(${backendMs.toFixed(0)} ms), this process ${((client.user + client.system) / 1000 / N).toFixed(3)} ms CPU each; ` +
        `server-wide WAL ${((walAfter.bytes - walBefore.bytes) / N).toFixed(0)} bytes and ` +
        `${((walAfter.syncs - walBefore.syncs) / N).toFixed(2)} WAL syncs each\n`,
    );
  };

  process.stdout.write(
    `blob store bench: ${args.store ?? 'src/blob-store.ts'}, ${N} × ${SIZE} bytes, concurrency ${C}, ` +
      `blob_chunks.data storage ${storage}\n`,
  );
  await phase('put ', async (i) => {
    refs[i] = (await store.put(Readable.from([content[i] as Buffer]), { messageId: `m-${i}` })).ref;
  });
  await phase('read', async (i) => {
    const bytes = await store.readAll(refs[i] as string);
    if (!bytes.equals(content[i] as Buffer)) throw new Error(`blob ${i} reads back different bytes`);
  });
} finally {
  await pool.end();
  await db.drop();
}
