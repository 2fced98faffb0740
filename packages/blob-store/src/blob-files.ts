// Blob contents in files (SMGW_BLOB_DIR) instead of blob_chunks: the same encrypted chunks (blob-cipher.ts), written
// one after the other into one file per blob, while the blobs row (wrapped key, state, digest, size) stays in
// PostgreSQL and says `storage = 'files'`. PostgreSQL then carries a small row per blob instead of the whole
// ciphertext twice (heap/TOAST and WAL) and its hex encoding on every read: the largest cost of a message on the
// database. The folder is shared by every process that writes or reads blobs (one machine, or a ReadWriteMany volume).
//
// Layout: <dir>/tmp/<id> while being written, then <dir>/<first two hex digits of id>/<id>.
// Record per chunk: length of the stored chunk (uint32 big-endian) | flags (1 = final) | stored chunk (ciphertext |
// tag). The flag only says where to stop reading: whether a chunk is final is authenticated by its tag, so a flag
// changed, a record moved, dropped or taken from another blob's file fails like a changed chunk in the database.
//
// Durability: a blob is written into tmp/, fsynced, its row committed, then renamed into place and its folder fsynced,
// before put resolves (and so before ingest answers 250 or a stage publishes the new reference). A crash before the
// rename leaves a tmp file (BlobFiles.sweepLeftovers removes it) and at most a row no message refers to (collected like
// any unreferenced blob; its missing file is no error then). Purges unlink a blob's file inside the transaction
// that deletes its row, before the commit: a crash in between leaves a row without a file, purged again next time,
// never a file without a row.
import { constants, mkdirSync } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, rename, stat, statfs, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoredChunk } from './committed-blob.ts';
import { BlobCorruptError, BlobStorageError } from './errors.ts';

const HEADER_BYTES = 5;
const FINAL = 1;
/** A stored chunk is at most the largest chunk size (blob-store.ts) plus its tag: a larger length is corruption. */
const MAX_STORED_CHUNK_BYTES = 64 * 1024 * 1024 + 16;
const TMP = 'tmp';
/** The most read in one call: a few default chunks (open-blob.ts reads CHUNKS_PER_READ at a time). */
const MAX_WINDOW_BYTES = 4 * (256 * 1024 + 16 + HEADER_BYTES);

export const shardOf = (id: string): string => id.slice(0, 2);

/** Where a committed blob's file is. */
export const blobFilePath = (directory: string, id: string): string => join(directory, shardOf(id), id);

/** Creates the folder's tmp/ when a store is made: a folder that cannot be made stops the start at once. */
export function prepareBlobDirectory(directory: string): void {
  mkdirSync(join(directory, TMP), { recursive: true, mode: 0o700 });
}

/**
 * Free and total bytes of the file system SMGW_BLOB_DIR is on (what an unprivileged writer may still use). When it is
 * full, every put fails and ingest answers 451: the metric behind the SmgwBlobStoreFillingUp alert.
 */
export async function blobDirectorySpace(directory: string): Promise<{ availableBytes: number; sizeBytes: number }> {
  // Asynchronous: on a hung network volume a synchronous statfs would stop ingest's event loop, SMTP included.
  const space = await statfs(directory);
  return { availableBytes: space.bavail * space.bsize, sizeBytes: space.blocks * space.bsize };
}

/** A blob's file being written in tmp/: records appended, then flushed (durable), then published (in place). */
export interface BlobFileWriter {
  /** One chunk's stored form, given in pieces (written together, as one record). */
  append(seq: number, final: boolean, pieces: readonly Buffer[]): Promise<void>;
  /** fsync of the content: call before the row is committed. */
  flush(): Promise<void>;
  /** Renames into place and fsyncs the folder: call after the row is committed. */
  publish(): Promise<void>;
  /** Removes whatever was written (the file in tmp/ or in place); never throws. */
  discard(): Promise<void>;
}

export async function createBlobFileWriter(directory: string, id: string): Promise<BlobFileWriter> {
  const tmpPath = join(directory, TMP, id);
  const finalPath = blobFilePath(directory, id);
  const handle = await fileOperation(`cannot create the file of blob ${id}`, () =>
    open(tmpPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600),
  );
  let closed = false;
  let published = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  return {
    async append(seq, final, pieces) {
      const length = pieces.reduce((sum, piece) => sum + piece.byteLength, 0);
      const header = Buffer.allocUnsafe(HEADER_BYTES);
      header.writeUInt32BE(length, 0);
      header[4] = final ? FINAL : 0;
      const { bytesWritten } = await fileOperation(`cannot write chunk ${seq} of blob ${id}`, () =>
        handle.writev([header, ...pieces]),
      );
      if (bytesWritten !== HEADER_BYTES + length) {
        throw new BlobStorageError(`chunk ${seq} of blob ${id} was written short (${bytesWritten} bytes)`);
      }
    },
    async flush() {
      await fileOperation(`cannot sync the file of blob ${id}`, async () => {
        await handle.datasync();
        await close();
      });
    },
    async publish() {
      await fileOperation(`cannot put the file of blob ${id} in place`, async () => {
        const shardPath = join(directory, shardOf(id));
        const shard = await shardFolder(shardPath);
        await rename(tmpPath, finalPath);
        published = true;
        try {
          await shard.sync();
        } catch (err) {
          // A handle gone bad (ESTALE on NFS, say) is opened afresh by the next put instead of failing them all.
          shardFolders.delete(shardPath);
          await shard.close().catch(() => {});
          throw err;
        }
      });
    },
    async discard() {
      await close().catch(() => {});
      await unlink(published ? finalPath : tmpPath).catch(() => {});
    },
  };
}

/**
 * Up to `limit` stored chunks of a blob's file from byte `position` on, and where the next read starts. Fewer at the
 * end of the file; whoever reads checks order, authenticity and the final chunk (open-blob.ts). `expectedBytes` is
 * at least how much is left to read (the plain bytes left plus room for headers and tags): that much is read in one
 * call (so a small blob is one open, one read, one close) and records that do not fit are read one by one.
 */
export async function readBlobFileChunks(
  directory: string,
  id: string,
  from: { position: number; seq: number },
  limit: number,
  expectedBytes: number,
): Promise<{ chunks: StoredChunk[]; position: number }> {
  const handle = await fileOperation(`cannot open the file of blob ${id}`, () =>
    open(blobFilePath(directory, id), 'r'),
  );
  const read = (buffer: Buffer, at: number) =>
    fileOperation(
      `cannot read blob ${id}`,
      async () => (await handle.read(buffer, 0, buffer.byteLength, at)).bytesRead,
    );
  try {
    const chunks: StoredChunk[] = [];
    let at = from.position;
    const window = Buffer.allocUnsafe(Math.max(HEADER_BYTES, Math.min(expectedBytes, MAX_WINDOW_BYTES)));
    const windowBytes = await read(window, at);
    const windowEnd = at + windowBytes;
    const atEnd = windowBytes < window.byteLength;
    while (chunks.length < limit) {
      let header: Buffer;
      if (at + HEADER_BYTES <= windowEnd) {
        header = window.subarray(at - from.position, at - from.position + HEADER_BYTES);
      } else if (atEnd) {
        if (at === windowEnd) break;
        throw new BlobCorruptError(`the file of blob ${id} ends inside a record`);
      } else {
        header = Buffer.allocUnsafe(HEADER_BYTES);
        const n = await read(header, at);
        if (n === 0) break;
        if (n < HEADER_BYTES) throw new BlobCorruptError(`the file of blob ${id} ends inside a record`);
      }
      const length = header.readUInt32BE(0);
      const flags = header[4] ?? 0;
      // A record longer than what is left of the blob (and its tag) is corrupt: never allocate what it claims.
      if (length > MAX_STORED_CHUNK_BYTES || length > expectedBytes || flags > FINAL) {
        throw new BlobCorruptError(`the file of blob ${id} has a broken record at byte ${at}`);
      }
      const dataAt = at + HEADER_BYTES;
      let data: Buffer;
      if (dataAt + length <= windowEnd) {
        data = window.subarray(dataAt - from.position, dataAt - from.position + length);
      } else if (atEnd) {
        throw new BlobCorruptError(`the file of blob ${id} ends inside a chunk`);
      } else {
        data = Buffer.allocUnsafe(length);
        if ((await read(data, dataAt)) !== length) {
          throw new BlobCorruptError(`the file of blob ${id} ends inside a chunk`);
        }
      }
      const final = flags === FINAL;
      chunks.push({ seq: from.seq + chunks.length, data, final });
      at = dataAt + length;
      if (final) break;
    }
    return { chunks, position: at };
  } finally {
    await handle.close().catch(() => {});
  }
}

/** What purges and the reaper do to the files of SMGW_BLOB_DIR. */
export interface BlobFiles {
  /** Deletes the files of these blobs; a file already gone is no error (a purge that ran before and was cut short). */
  remove(ids: readonly string[]): Promise<void>;
  /**
   * Removes files left in tmp/ by writes that a crash or a failure cut short, once older than `graceMs` (a write in
   * progress is younger: a put takes seconds at most). Returns how many were removed.
   */
  sweepLeftovers(graceMs: number, now?: number): Promise<number>;
  /** How many such files sweepLeftovers would remove (for a dry run). */
  countLeftovers(graceMs: number, now?: number): Promise<number>;
}

export function blobFiles(directory: string): BlobFiles {
  return {
    async remove(ids) {
      for (const id of ids) {
        await fileOperation(`cannot delete the file of blob ${id}`, () => unlinkIfThere(blobFilePath(directory, id)));
      }
    },
    sweepLeftovers: (graceMs, now) => leftovers(directory, graceMs, now ?? Date.now(), unlinkIfThere),
    countLeftovers: (graceMs, now) => leftovers(directory, graceMs, now ?? Date.now(), async () => true),
  };
}

/** Applies `act` to every file in tmp/ older than the grace; counts those it acted on. */
async function leftovers(
  directory: string,
  graceMs: number,
  now: number,
  act: (path: string) => Promise<boolean>,
): Promise<number> {
  const folder = join(directory, TMP);
  let count = 0;
  for (const name of await readdir(folder)) {
    const path = join(folder, name);
    try {
      if ((await stat(path)).mtimeMs > now - graceMs) continue;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if (await act(path)) count++;
  }
  return count;
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

/**
 * The shard folder, made if missing, opened once per process and kept open (at most 256 per blob folder): a rename
 * into it is durable only once the folder itself is fsynced, and opening it for every blob would cost two calls more.
 */
const shardFolders = new Map<string, Promise<FileHandle>>();

function shardFolder(path: string): Promise<FileHandle> {
  let folder = shardFolders.get(path);
  if (!folder) {
    folder = mkdir(path, { recursive: true, mode: 0o700 }).then(() =>
      open(path, constants.O_RDONLY | constants.O_DIRECTORY),
    );
    folder.catch(() => shardFolders.delete(path));
    shardFolders.set(path, folder);
  }
  return folder;
}

async function fileOperation<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof BlobCorruptError || err instanceof BlobStorageError) throw err;
    throw new BlobStorageError(`${what}: ${(err as Error).message}`, { cause: err });
  }
}
