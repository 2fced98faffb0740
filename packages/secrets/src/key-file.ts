// Files that hold one sealed key each, in a folder several processes share (the blob store's KEK files, the mailbox
// key files): a file is written atomically, so a reader sees the whole key or none, and the folder is synced after
// every change, so a crash does not undo a key that was handed out.
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `file` atomically: the bytes go to a temporary file beside it (mode 0600, synced), which then becomes the
 * file in one step. 'create' links it (never overwrites: EEXIST when the file is there), 'replace' renames over the
 * old one (a master key rotation's re-seal). The folder is made (0700) when missing.
 */
export async function writeKeyFile(file: string, bytes: Uint8Array, mode: 'create' | 'replace'): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temporary = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    if (mode === 'create') await link(temporary, file);
    else await rename(temporary, file);
  } finally {
    if (mode === 'create') await unlink(temporary).catch(() => {});
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

/** Deletes the file for good (the folder synced after). Idempotent: no such file is no error. */
export async function deleteKeyFile(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await syncFolder(dirname(file));
}

async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
