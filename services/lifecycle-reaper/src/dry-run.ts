// A dry run is the real run inside one transaction that is rolled back: the counts are exactly what a run would
// remove, and nothing changes. The purge functions take a pool; this one hands them the same connection each time,
// turning their own transactions into savepoints of the outer one. KEKs are listed but never retired, mailbox keys
// neither made nor destroyed, notices never published. A sweep that fails outside its own transaction aborts the
// outer one: the sweeps after it then report failed too.
import { randomBytes } from 'node:crypto';
import type { BlobFiles, KeyStore } from '@smgw/blob-store';
import type { Pool, PoolClient } from '@smgw/db';
import type { MailboxKeyStore } from '@smgw/mailbox-store';
import type { Publisher } from './notices.ts';
import type { KeyFileFolders } from './sweeps.ts';

interface Effects {
  pool: Pool;
  blobDir?: string | undefined;
  blobFiles?: BlobFiles | undefined;
  keyFiles?: KeyFileFolders | undefined;
  keyStore: KeyStore;
  mailboxKeys: MailboxKeyStore;
  publisher: Publisher;
}

export async function withDryRun<D extends Effects, T>(deps: D, work: (dry: D) => Promise<T>): Promise<T> {
  const { pool, keyStore, mailboxKeys } = deps;
  const client = await pool.connect();
  let savepoints = 0;
  const query = (text: unknown, values?: unknown[]) => {
    // Any spelling of a transaction statement is mapped; one that cannot be mapped is refused, so nothing a purge
    // function sends can ever end the outer transaction (which would make a dry run real).
    const statement = typeof text === 'string' ? text.trim().replace(/;$/, '').toLowerCase() : '';
    if (statement === 'begin' || statement === 'start transaction') {
      return client.query(`savepoint dry_run_${++savepoints}`);
    }
    if (statement === 'commit' || statement === 'end') return client.query(`release savepoint dry_run_${savepoints--}`);
    if (statement === 'rollback') return client.query(`rollback to savepoint dry_run_${savepoints--}`);
    if (/^(begin|start|commit|end|rollback|abort|prepare|release|savepoint)\b/.test(statement)) {
      return Promise.reject(new Error(`a dry run cannot pass on "${statement}"`));
    }
    return client.query(text as string, values);
  };
  const shared = { query, release: () => {} } as unknown as PoolClient;
  const dryPool = { query, connect: async () => shared } as unknown as Pool;
  const dryKeyStore: KeyStore = {
    current: (now) => keyStore.current(now),
    get: (id) => keyStore.get(id),
    list: () => keyStore.list(),
    retire: async () => {},
  };
  const dryMailboxKeys: MailboxKeyStore = {
    masterKeys: mailboxKeys.masterKeys,
    create: async () => randomBytes(32),
    get: (id) => mailboxKeys.get(id),
    destroy: async () => {},
    list: () => mailboxKeys.list(),
  };
  const dryPublisher: Publisher = { publish: async () => {} };
  // Files are no part of the transaction: none is unlinked (the rows' deletes are rolled back anyway), leftovers are
  // only counted, and the notices' blobs go into the database, so the rollback takes them too.
  const { blobFiles } = deps;
  const dryBlobFiles: BlobFiles | undefined = blobFiles && {
    remove: async () => {},
    sweepLeftovers: (graceMs, now) => blobFiles.countLeftovers(graceMs, now),
    countLeftovers: (graceMs, now) => blobFiles.countLeftovers(graceMs, now),
  };
  const { keyFiles } = deps;
  const dryKeyFiles: KeyFileFolders | undefined = keyFiles && {
    sweepLeftovers: (graceMs) => keyFiles.countLeftovers(graceMs),
    countLeftovers: (graceMs) => keyFiles.countLeftovers(graceMs),
  };
  try {
    await client.query('begin');
    return await work({
      ...deps,
      pool: dryPool,
      keyStore: dryKeyStore,
      blobDir: undefined,
      blobFiles: dryBlobFiles,
      keyFiles: dryKeyFiles,
      mailboxKeys: dryMailboxKeys,
      publisher: dryPublisher,
    });
  } finally {
    await client.query('rollback').catch(() => {});
    client.release();
  }
}
