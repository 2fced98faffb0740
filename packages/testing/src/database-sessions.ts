// The PostgreSQL sessions of one process, found by its own sockets: a test kills exactly those (as a database
// restart would, but without disturbing any other test that shares the server). Linux only: /proc.
import { readdir, readFile, readlink } from 'node:fs/promises';
import type { Pool } from '@smgw/db';

/** The local TCP ports of the sockets process `pid` holds open (from /proc/<pid>/fd and /proc/net/tcp{,6}). */
async function localPortsOf(pid: number): Promise<Set<number>> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
    if (inode) inodes.add(inode);
  }
  const ports = new Set<number>();
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const [local, inode] = [fields[1], fields[9]];
      if (!local || !inode || !inodes.has(inode)) continue;
      ports.add(Number.parseInt(local.split(':')[1] ?? '', 16));
    }
  }
  return ports;
}

/** Backend pids of the database sessions process `pid` has open to the server `pool` talks to. */
export async function databaseSessionsOf(pool: Pool, pid: number): Promise<number[]> {
  const ports = [...(await localPortsOf(pid))];
  if (ports.length === 0) return [];
  const { rows } = await pool.query<{ pid: number }>(
    `select pid from pg_stat_activity
      where client_port = any($1::int[]) and client_addr in ('127.0.0.1', '::1') and pid <> pg_backend_pid()`,
    [ports],
  );
  return rows.map((r) => r.pid);
}

/**
 * pg_terminate_backend on every database session of process `pid` (what a PostgreSQL restart does to it, for that
 * process alone). Returns how many were terminated.
 */
export async function terminateDatabaseSessionsOf(pool: Pool, pid: number): Promise<number> {
  const pids = await databaseSessionsOf(pool, pid);
  if (pids.length === 0) return 0;
  const { rows } = await pool.query<{ n: number }>(
    'select count(*) filter (where pg_terminate_backend(p))::int as n from unnest($1::int[]) as p',
    [pids],
  );
  return rows[0]?.n ?? 0;
}
