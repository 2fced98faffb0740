// What the PIN-mail and resent-link sweeps need in tests: a test database's blob store and mailbox keys, and sweep
// deps at a given time (on a given pool: a second replica's) whose publish collects what they send.
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import type { Pool } from '@smgw/db';
import type { Envelope } from '@smgw/envelope';
import { createFolderMailboxKeyStore, type MailboxKeyStore } from '@smgw/mailbox-store';
import type { TestDatabase } from '@smgw/testing';
import { loadMailboxTemplates } from '../src/notices.ts';
import type { PinSweepDeps } from '../src/pin-mail-sweep.ts';

export interface SweepWorld {
  blobStore: BlobStore;
  mailboxKeys: MailboxKeyStore;
  /** Every mail the sweeps published, in order. */
  published: Envelope[];
  deps(now: Date, pool?: Pool): PinSweepDeps;
}

export async function sweepWorld(db: TestDatabase): Promise<SweepWorld> {
  const blobStore = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
  const mailboxKeys = createFolderMailboxKeyStore(db.keys);
  const templates = await loadMailboxTemplates();
  const published: Envelope[] = [];
  return {
    blobStore,
    mailboxKeys,
    published,
    deps: (now, pool = db.pool) => ({
      pool,
      blobStore,
      mailboxKeys,
      hostname: 'smgw.test',
      publicUrl: 'https://portal.test/',
      templates,
      publish: async (envelope) => {
        published.push(envelope);
      },
      now: () => now,
    }),
  };
}
