// The key store as a folder of files: one file `<id>.kek` per key-encryption key, each sealed under SMGW_MASTER_KEY
// (@smgw/secrets), written atomically with mode 0600. Locally the folder is $SMGW_STATE_DIR/keys; in Kubernetes a
// volume shared by the services that write and read blobs. Several processes may use one folder: a KEK is made by
// whoever needs it first, and when two made one for the same period at once, everybody settles on the smaller id.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Pool } from '@smgw/db';
import { deleteKeyFile, openSecret, readKeyFile, SecretError, sealSecret, writeKeyFile } from '@smgw/secrets';
import { BlobKeyError } from './errors.ts';
import {
  type KeyEncryptionKey,
  type KeyEncryptionKeyInfo,
  type KeyStore,
  kekIdFor,
  periodStartOf,
  periodStartOfKekId,
} from './key-store.ts';
import { MASTER_KEY_ROTATION_LOCK } from './purge-blobs.ts';

const DAY_MS = 86_400_000;
const KEK_BYTES = 32;
const SUFFIX = '.kek';

export interface FolderKeyStoreOptions {
  keyStoreDir: string;
  /** SMGW_MASTER_KEY: seals new KEK files, opens them. */
  masterKey: Buffer;
  /** SMGW_MASTER_KEY_PREVIOUS: also opens KEK files during a master key rotation. */
  masterKeyPrevious?: Buffer | undefined;
  /** SMGW_KEK_PERIOD in ms (default one day): the blobs of one period share a KEK. */
  kekPeriod?: number | undefined;
}

/** The aad that binds a sealed KEK to its id: a file renamed to another id does not open. */
const kekAad = (id: string) => `smgw-kek:${id}`;

export function createFolderKeyStore(options: FolderKeyStoreOptions): KeyStore {
  const dir = options.keyStoreDir;
  const periodMs = options.kekPeriod ?? DAY_MS;
  if (!Number.isInteger(periodMs) || periodMs < 1000) throw new RangeError(`kekPeriod must be at least 1 s`);
  const masterKeys = [options.masterKey, ...(options.masterKeyPrevious ? [options.masterKeyPrevious] : [])];
  const opened = new Map<string, Buffer>();
  let current: { periodStart: number; kek: KeyEncryptionKey } | undefined;

  const get = async (id: string): Promise<KeyEncryptionKey | undefined> => {
    const known = opened.get(id);
    if (known) return { id, key: known };
    if (!periodStartOfKekId(id)) return undefined;
    let sealed: Buffer | undefined;
    try {
      sealed = await readKeyFile(join(dir, id + SUFFIX));
    } catch (err) {
      throw new BlobKeyError('KEY_STORE_FAILED', `cannot read KEK ${id}: ${(err as Error).message}`, { cause: err });
    }
    if (!sealed) return undefined;
    const key = openKekFile(masterKeys, id, sealed);
    opened.set(id, key);
    return { id, key };
  };

  const list = async (): Promise<KeyEncryptionKeyInfo[]> => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new BlobKeyError('KEY_STORE_FAILED', `cannot list ${dir}: ${(err as Error).message}`, { cause: err });
    }
    return names
      .filter((name) => name.endsWith(SUFFIX))
      .map((name) => name.slice(0, -SUFFIX.length))
      .flatMap((id) => {
        const periodStart = periodStartOfKekId(id);
        return periodStart ? [{ id, periodStart }] : [];
      })
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  };

  return {
    async current(now = new Date()) {
      const periodStart = periodStartOf(now, periodMs);
      // The file is checked each time: a KEK retired elsewhere must never wrap another data key. A synchronous stat
      // of a file whose metadata is cached costs microseconds; the asynchronous one went through libuv's thread pool
      // and was 2 % of ingest's time.
      if (current?.periodStart === periodStart.getTime() && existsSync(join(dir, current.kek.id + SUFFIX))) {
        return current.kek;
      }
      const ofPeriod = async () => (await list()).filter((k) => k.periodStart.getTime() === periodStart.getTime());
      if ((await ofPeriod()).length === 0) await makeKek(dir, options.masterKey, periodStart);
      // The smallest id of the period, so that processes which raced to make one all use the same.
      const chosen = (await ofPeriod())[0];
      const kek = chosen && (await get(chosen.id));
      if (!kek) throw new BlobKeyError('KEY_STORE_FAILED', `no KEK for the period from ${periodStart.toISOString()}`);
      current = { periodStart: periodStart.getTime(), kek };
      return kek;
    },
    get,
    list,
    async retire(id) {
      if (!periodStartOfKekId(id)) throw new RangeError(`not a KEK id: ${id}`);
      opened.delete(id);
      if (current?.kek.id === id) current = undefined;
      try {
        await deleteKeyFile(join(dir, id + SUFFIX));
      } catch (err) {
        throw new BlobKeyError('KEY_STORE_FAILED', `cannot retire KEK ${id}: ${(err as Error).message}`, {
          cause: err,
        });
      }
    },
  };
}

/** Opens a sealed KEK file with the first master key it was sealed under. */
function openKekFile(masterKeys: Buffer[], id: string, sealed: Buffer): Buffer {
  for (const masterKey of masterKeys) {
    try {
      return openSecret(masterKey, sealed, { aad: kekAad(id) });
    } catch (err) {
      if (err instanceof SecretError && err.code === 'SECRET_WRONG_MASTER_KEY') continue;
      throw new BlobKeyError('KEY_STORE_SEALED', `KEK ${id} does not open: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  throw new BlobKeyError('KEY_STORE_SEALED', `KEK ${id} is sealed under neither the master key nor the previous one`);
}

async function makeKek(dir: string, masterKey: Buffer, periodStart: Date): Promise<void> {
  const id = kekIdFor(periodStart, randomBytes(4).toString('hex'));
  const key = randomBytes(KEK_BYTES);
  try {
    await writeKeyFile(join(dir, id + SUFFIX), sealSecret(masterKey, key, { aad: kekAad(id) }), 'create');
  } catch (err) {
    throw new BlobKeyError('KEY_STORE_FAILED', `cannot make KEK ${id} in ${dir}: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    key.fill(0);
  }
}

export interface MasterKeyRotation {
  /** KEK files re-sealed under the new master key by this run. */
  resealed: number;
  /** KEK files that were sealed under the new master key already (an earlier, interrupted run). */
  alreadyCurrent: number;
  /** KEK files re-sealed while their KEK was being retired: the copy deleted again. */
  retiredMeanwhile: number;
}

/**
 * Re-seals every KEK file of the folder under `to` (the new SMGW_MASTER_KEY), opening each with `to` or `from`
 * (the previous key). Each file is replaced atomically, so services that accept both keys keep reading throughout;
 * an interrupted run can simply be run again. Afterwards `from` opens none of the files.
 *
 * A retirement (retireUnusedKeks) may delete a file between this run's read and its rename, which would put the KEK
 * back. It records the retirement in retired_keks (committed) before it deletes the file, and the run looks there
 * after each rename: recorded, the copy is deleted. That closes every interleaving: a retirement that deleted the
 * file before the rename recorded it before that, so the look sees it; one that records after the look deletes the
 * file after the rename, the copy with it. Only a KEK no blob names is recorded, and its id is never made again, so
 * the run never deletes a live KEK's file.
 */
export async function rotateMasterKey(options: {
  /** The gateway's database: retired_keks. */
  pool: Pool;
  keyStoreDir: string;
  from: Buffer;
  to: Buffer;
  /** Test seam: runs after a file was read, right before its re-sealed copy is written. */
  beforeWrite?: (id: string) => Promise<void>;
}): Promise<MasterKeyRotation> {
  const { keyStoreDir: dir, from, to } = options;
  const store = createFolderKeyStore({ keyStoreDir: dir, masterKey: to, masterKeyPrevious: from });
  // Held shared for the whole run (on a connection of its own, released by the server if this process dies): the
  // records of retired KEKs this run may look up are not pruned meanwhile (pruneRetiredKeks).
  const lock = await options.pool.connect();
  try {
    await lock.query(`select pg_advisory_lock_shared(${MASTER_KEY_ROTATION_LOCK})`);
  } catch (err) {
    lock.release(err as Error);
    throw new BlobKeyError('KEY_STORE_FAILED', `cannot take the rotation lock: ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    return await resealKekFiles(options, store);
  } finally {
    await lock.query(`select pg_advisory_unlock_shared(${MASTER_KEY_ROTATION_LOCK})`).then(
      () => lock.release(),
      // The connection is in doubt: closed, which releases the lock with it.
      (err: Error) => lock.release(err),
    );
  }
}

async function resealKekFiles(
  options: Parameters<typeof rotateMasterKey>[0],
  store: KeyStore,
): Promise<MasterKeyRotation> {
  const { keyStoreDir: dir, from, to } = options;
  const result: MasterKeyRotation = { resealed: 0, alreadyCurrent: 0, retiredMeanwhile: 0 };
  for (const { id } of await store.list()) {
    const file = join(dir, id + SUFFIX);
    let sealed: Buffer | undefined;
    try {
      sealed = await readKeyFile(file);
    } catch (err) {
      throw new BlobKeyError('KEY_STORE_FAILED', `cannot read KEK ${id}: ${(err as Error).message}`, { cause: err });
    }
    if (!sealed) continue; // retired meanwhile
    try {
      openSecret(to, sealed, { aad: kekAad(id) });
      result.alreadyCurrent++;
      continue;
    } catch (err) {
      if (!(err instanceof SecretError && err.code === 'SECRET_WRONG_MASTER_KEY')) {
        throw new BlobKeyError('KEY_STORE_SEALED', `KEK ${id} does not open: ${err}`, { cause: err });
      }
    }
    const key = openKekFile([from], id, sealed);
    try {
      await options.beforeWrite?.(id);
      await writeKeyFile(file, sealSecret(to, key, { aad: kekAad(id) }), 'replace');
      const retired = await options.pool.query('select 1 from retired_keks where id = $1', [id]);
      if (retired.rowCount !== 0) {
        await deleteKeyFile(file);
        result.retiredMeanwhile++;
      } else result.resealed++;
    } catch (err) {
      throw new BlobKeyError('KEY_STORE_FAILED', `cannot re-seal KEK ${id}: ${(err as Error).message}`, {
        cause: err,
      });
    } finally {
      key.fill(0);
    }
  }
  return result;
}
