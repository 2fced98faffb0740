// Files that hold one sealed key each, in a folder several processes share (the blob store's KEK files, the mailbox
// key files): a file is written atomically, so a reader sees the whole key or none, and the folder is synced after
// every change, so a crash does not undo a key that was handed out.
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * The folder, beside the key files, of writeKeyFile's temporaries: `<name>.<12 hex digits>.tmp`. Apart from the keys
 * so that deleting a key finds its leftovers by reading a folder that holds only writes in progress and what a crash
 * left, not every key of a folder that may hold one file per mailbox.
 */
export const KEY_FILE_TEMPORARIES = '.writing';
const temporaryOf = (file: string, suffix: string) =>
  join(dirname(file), KEY_FILE_TEMPORARIES, `${basename(file)}.${suffix}.tmp`);
const TEMPORARY_SUFFIX = /^[0-9a-f]{12}$/;

/**
 * Writes `file` atomically: the bytes go to a temporary file in KEY_FILE_TEMPORARIES beside it (mode 0600, synced), which then becomes the
 * file in one step. 'create' links it (never overwrites: EEXIST when the file is there), 'replace' renames over the
 * old one (a master key rotation's re-seal). The folder is made (0700) when missing. The temporary holds the same
 * sealed key: it is removed whatever fails, and one a crash left is removed with the file (deleteKeyFile). 'replace'
 * also puts back a file deleted since the caller read it: a caller whose keys can be destroyed meanwhile checks
 * afterwards whether this one was, and deletes it again (rotateMasterKey, rotateMailboxKeyFiles).
 */
export async function writeKeyFile(file: string, bytes: Uint8Array, mode: 'create' | 'replace'): Promise<void> {
  const dir = dirname(file);
  await mkdir(join(dir, KEY_FILE_TEMPORARIES), { recursive: true, mode: 0o700 });
  const temporary = temporaryOf(file, randomBytes(6).toString('hex'));
  const handle = await open(temporary, 'wx', 0o600);
  let renamed = false;
  try {
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (mode === 'create') {
      await link(temporary, file);
    } else {
      await rename(temporary, file);
      renamed = true;
    }
  } finally {
    if (!renamed) await unlink(temporary).catch(() => {});
  }
  await syncFolder(dir);
}

/** The file's bytes, or undefined when there is no such file (other errors are thrown). */
export async function readKeyFile(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Deletes the file for good (the folder synced after), and any temporary of it that a crash of writeKeyFile left
 * (KEY_FILE_TEMPORARIES; the same sealed key: a retired KEK or a destroyed mailbox key must leave no copy in the folder).
 * Idempotent: no such file is no error.
 */
export async function deleteKeyFile(file: string): Promise<void> {
  const temporaries = join(dirname(file), KEY_FILE_TEMPORARIES);
  const prefix = `${basename(file)}.`;
  const leftovers = (await readdir(temporaries).catch(() => [] as string[])).filter(
    (name) => name.startsWith(prefix) && name.endsWith('.tmp') && TEMPORARY_SUFFIX.test(name.slice(prefix.length, -4)),
  );
  if (await unlinkIfThere(file)) await syncFolder(dirname(file));
  let leftoverDeleted = false;
  for (const name of leftovers) leftoverDeleted = (await unlinkIfThere(join(temporaries, name))) || leftoverDeleted;
  if (leftoverDeleted) await syncFolder(temporaries);
}

async function unlinkIfThere(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A temporary of writeKeyFile's own (`<name>.<12 hex>.tmp` in KEY_FILE_TEMPORARIES) or of its writes before that folder. */
const TEMPORARY_NAME = /^(?<name>.+)\.[0-9a-f]{12}\.tmp$/;
const LEGACY_TEMPORARY_NAME = /^\.(?<name>.+)\.[0-9a-f]{12}\.tmp$/;

/**
 * The temporaries of writeKeyFile in `dir` last changed more than `graceMs` before `now`: in KEY_FILE_TEMPORARIES, and
 * beside the keys where its writes before that folder left them (`.<name>.<12 hex>.tmp`). A write takes milliseconds,
 * so an old one is what a crash left: a copy of a key, whose own deletion may be long in coming (a KEK lives for its
 * blobs' retention) or may have come already (a crash after a key's deletion, or before the deletions took
 * temporaries along). Full paths.
 */
export async function keyFileLeftovers(dir: string, graceMs: number, now = new Date()): Promise<string[]> {
  const candidates = [
    ...(await namesIn(join(dir, KEY_FILE_TEMPORARIES)))
      .filter((name) => TEMPORARY_NAME.test(name))
      .map((name) => join(dir, KEY_FILE_TEMPORARIES, name)),
    ...(await namesIn(dir)).filter((name) => LEGACY_TEMPORARY_NAME.test(name)).map((name) => join(dir, name)),
  ];
  const old: string[] = [];
  for (const path of candidates) {
    const changed = await stat(path).then(
      (s) => s.mtimeMs,
      () => undefined, // gone meanwhile (its write finished, or another sweep)
    );
    if (changed !== undefined && changed < now.getTime() - graceMs) old.push(path);
  }
  return old;
}

/** Deletes keyFileLeftovers (the folders synced after); returns how many it deleted. */
export async function removeKeyFileLeftovers(dir: string, graceMs: number, now = new Date()): Promise<number> {
  let removed = 0;
  const folders = new Set<string>();
  for (const path of await keyFileLeftovers(dir, graceMs, now)) {
    if (await unlinkIfThere(path)) {
      removed++;
      folders.add(dirname(path));
    }
  }
  for (const folder of folders) await syncFolder(folder);
  return removed;
}

async function namesIn(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
