// Each mailbox's own key, kept outside the database (issue 11, "deleted for good"): a file
// <SMGW_KEY_STORE_DIR>/mailboxes/<mailbox id>.key holding a random 32-byte key sealed under SMGW_MASTER_KEY (aad:
// the mailbox id). The mailbox row's data_key_sealed is the data key sealed under that file's key, so opening a
// mailbox needs the row, the file and the master key. Deleting the mailbox deletes the file: from then on nothing
// opens it, not the live database, not a dump taken before, not a dump with the master key beside it.
//
// Mailboxes made before this store existed have their data key sealed under the master key directly (a "legacy"
// row): they keep opening with the master key until moveMailboxKeysToKeyStore gives them a file (the reaper does,
// in batches). A dump taken before that move still opens with the master key: the move protects what comes after.
//
// Several processes share the folder (like the KEK files beside it): a file is written once, atomically, never
// overwritten (only a master key rotation replaces it, re-sealed, and never brings back one deleted meanwhile).
import { randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Pool } from '@smgw/db';
import { deleteKeyFile, openSecretWithAny, readKeyFile, SecretError, sealSecret, writeKeyFile } from '@smgw/secrets';
import { MailboxStoreError } from './errors.ts';

const SUFFIX = '.key';
const KEY_BYTES = 32;
/** Mailbox ids are random UUIDs; anything else is never turned into a path. */
const MAILBOX_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface MailboxKeyStore {
  /**
   * The master keys, current first (SMGW_MASTER_KEY, then SMGW_MASTER_KEY_PREVIOUS during a rotation): they seal
   * the files, and open the data keys of legacy rows.
   */
  readonly masterKeys: readonly Uint8Array[];
  /** Makes the mailbox's key (a new file; never replaces one) and returns it; the caller zeroes it. */
  create(mailboxId: string): Promise<Buffer>;
  /** The mailbox's key, or undefined when it has none (destroyed, or a legacy mailbox). */
  get(mailboxId: string): Promise<Buffer | undefined>;
  /** Deletes the mailbox's key for good. Idempotent. */
  destroy(mailboxId: string): Promise<void>;
  /** Every mailbox that has a key, with when the file was written (orphans are collected by age). */
  list(): Promise<{ mailboxId: string; writtenAt: Date }[]>;
}

export interface FolderMailboxKeyStoreOptions {
  /** SMGW_KEY_STORE_DIR: the files go to its subfolder `mailboxes/`. */
  keyStoreDir: string;
  masterKey: Buffer;
  masterKeyPrevious?: Buffer | undefined;
}

const fileAad = (mailboxId: string) => `smgw-mailbox-key-file\0${mailboxId}`;

function checkId(mailboxId: string): void {
  if (!MAILBOX_ID.test(mailboxId)) throw new RangeError(`not a mailbox id: ${mailboxId}`);
}

export function mailboxKeyFolder(keyStoreDir: string): string {
  return join(keyStoreDir, 'mailboxes');
}

export function createFolderMailboxKeyStore(options: FolderMailboxKeyStoreOptions): MailboxKeyStore {
  const dir = mailboxKeyFolder(options.keyStoreDir);
  const masterKeys = [options.masterKey, ...(options.masterKeyPrevious ? [options.masterKeyPrevious] : [])];
  const path = (mailboxId: string) => {
    checkId(mailboxId);
    return join(dir, mailboxId + SUFFIX);
  };
  return {
    masterKeys,
    async create(mailboxId) {
      const file = path(mailboxId);
      const key = randomBytes(KEY_BYTES);
      try {
        await writeKeyFile(file, sealSecret(options.masterKey, key, { aad: fileAad(mailboxId) }), 'create');
      } catch (err) {
        key.fill(0);
        throw new MailboxStoreError('MAILBOX_KEY_STORE_FAILED', `cannot write the key of mailbox ${mailboxId}`, {
          cause: err,
        });
      }
      return key;
    },
    async get(mailboxId) {
      const file = path(mailboxId);
      let sealed: Buffer | undefined;
      try {
        sealed = await readKeyFile(file);
      } catch (err) {
        throw new MailboxStoreError('MAILBOX_KEY_STORE_FAILED', `cannot read the key of mailbox ${mailboxId}`, {
          cause: err,
        });
      }
      if (!sealed) return undefined;
      try {
        return openSecretWithAny(masterKeys, sealed, { aad: fileAad(mailboxId) });
      } catch (err) {
        throw new MailboxStoreError('MAILBOX_KEY_STORE_FAILED', `the key file of mailbox ${mailboxId} does not open`, {
          cause: err,
        });
      }
    },
    async destroy(mailboxId) {
      const file = path(mailboxId);
      try {
        await deleteKeyFile(file);
      } catch (err) {
        throw new MailboxStoreError('MAILBOX_KEY_STORE_FAILED', `cannot delete the key of mailbox ${mailboxId}`, {
          cause: err,
        });
      }
    },
    async list() {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw new MailboxStoreError('MAILBOX_KEY_STORE_FAILED', `cannot list ${dir}`, { cause: err });
      }
      const ids = names.filter((n) => n.endsWith(SUFFIX)).map((n) => n.slice(0, -SUFFIX.length));
      const listed: { mailboxId: string; writtenAt: Date }[] = [];
      for (const mailboxId of ids.filter((id) => MAILBOX_ID.test(id))) {
        try {
          listed.push({ mailboxId, writtenAt: (await stat(join(dir, mailboxId + SUFFIX))).mtime });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // destroyed meanwhile
        }
      }
      return listed;
    },
  };
}

export interface MailboxKeyFilesRotation {
  /** Files re-sealed under the new master key by this run. */
  resealed: number;
  /** Files sealed under the new master key already (an earlier, interrupted run; a mailbox made since). */
  alreadyCurrent: number;
  /** Files whose mailbox had no row when the run began: left as they are. */
  withoutMailbox: number;
  /** Files re-sealed while their mailbox was being deleted: the copy deleted again. */
  deletedMeanwhile: number;
}

/**
 * Master key rotation of the mailbox key files: each file opened with `to` or `from` and, if it was under `from`,
 * replaced atomically by the same key sealed under `to`. Safe to run again; services reading with both keys keep
 * working throughout. Files of mailboxes without a row are left as they are (`withoutMailbox`): an orphan, which the
 * reaper's collectOrphanMailboxKeys deletes, or a mailbox whose row is still being inserted (run again for it).
 * Afterwards `from` opens none of the other files.
 *
 * A deletion (its rows committed, then its file deleted: deleteMailbox, then MailboxKeyStore.destroy) may delete a
 * file between this run's read and its rename, which would put the destroyed key back. So a file is re-sealed only
 * if its mailbox had a row when the run began, and the row is looked up again after the rename: gone, the copy is
 * deleted. That closes every interleaving: a deletion that deleted the file before the rename committed its rows
 * before that, so the second look sees them gone; one that commits after the second look deletes the file after the
 * rename, the copy with it. A mailbox id is never used again and a live mailbox keeps its row, so the run never
 * deletes a live key's file (a reader that finds none takes the key as destroyed).
 */
export async function rotateMailboxKeyFiles(options: {
  /** The gateway's database: the mailbox rows. */
  pool: Pool;
  keyStoreDir: string;
  from: Buffer;
  to: Buffer;
  /** Test seam: runs after a file was read, right before its re-sealed copy is written. */
  beforeWrite?: (mailboxId: string) => Promise<void>;
}): Promise<MailboxKeyFilesRotation> {
  const dir = mailboxKeyFolder(options.keyStoreDir);
  const store = createFolderMailboxKeyStore({ keyStoreDir: options.keyStoreDir, masterKey: options.to });
  const result: MailboxKeyFilesRotation = { resealed: 0, alreadyCurrent: 0, withoutMailbox: 0, deletedMeanwhile: 0 };
  const files = await store.list();
  const alive = await existingMailboxes(
    options.pool,
    files.map((f) => f.mailboxId),
  );
  for (const { mailboxId } of files) {
    if (!alive.has(mailboxId)) {
      result.withoutMailbox++;
      continue;
    }
    const file = join(dir, mailboxId + SUFFIX);
    const sealed = await readKeyFile(file);
    if (!sealed) continue; // destroyed meanwhile
    let key: Buffer;
    try {
      key = openSecretWithAny([options.to], sealed, { aad: fileAad(mailboxId) });
      key.fill(0);
      result.alreadyCurrent++;
      continue;
    } catch (err) {
      if (!(err instanceof SecretError && err.code === 'SECRET_WRONG_MASTER_KEY')) throw err;
    }
    key = openSecretWithAny([options.from], sealed, { aad: fileAad(mailboxId) });
    try {
      await options.beforeWrite?.(mailboxId);
      await writeKeyFile(file, sealSecret(options.to, key, { aad: fileAad(mailboxId) }), 'replace');
    } finally {
      key.fill(0);
    }
    if ((await existingMailboxes(options.pool, [mailboxId])).has(mailboxId)) {
      result.resealed++;
    } else {
      await deleteKeyFile(file);
      result.deletedMeanwhile++;
    }
  }
  return result;
}

/** Which of these mailboxes have a row. */
async function existingMailboxes(pool: Pool, mailboxIds: string[]): Promise<Set<string>> {
  const { rows } = await pool.query<{ id: string }>('select id from mailboxes where id = any($1::text[])', [
    mailboxIds,
  ]);
  return new Set(rows.map((r) => r.id));
}
