import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { type Pool, preparedStatement } from '@smgw/db';
import type { BlobRef } from '@smgw/envelope';
import {
  type BlobKeys,
  contentDigest,
  encryptChunk,
  encryptChunkPieces,
  type NewBlobKeys,
  newBlobKeys,
  newDataKey,
  type UnwrappedBlobKeys,
  wrapDataKey,
} from './blob-cipher.ts';
import { createBlobFileWriter } from './blob-files.ts';
import { toBlobRef } from './committed-blob.ts';
import { BlobKeyError, BlobSourceError, BlobStorageError, BlobTooLargeError } from './errors.ts';
import type { KeyStore } from './key-store.ts';

export interface PutBlobOptions {
  chunkBytes: number;
  maxBytes?: number | undefined;
  /** The message the blob belongs to: its reference for retention and garbage collection. */
  messageId: string;
  /** SMGW_BLOB_DIR: the chunks go into a file there (blob-files.ts) instead of blob_chunks. */
  directory?: string | undefined;
  /** With a directory, blobs of at most this many bytes stay in the database all the same (SMALL_BLOB_BYTES); 0: none. */
  smallBlobBytes: number;
}

/** A piece of the source of at most chunkBytes bytes, and whether it is the last one. */
interface PlainChunk {
  plain: Buffer;
  final: boolean;
}

/**
 * Stores `source` as a new blob, encrypted chunk by chunk under a new data key (blob-cipher.ts), under a new random
 * id: equal content put twice is two blobs. The first chunk is read before anything is written:
 *   - a source that ends within one chunk (most messages) is stored in ONE autocommit statement, the blob row
 *     already committed and its only, final chunk: one commit, one WAL flush;
 *   - a longer source is streamed: the row in state 'writing', then one awaited autocommit insert per chunk, so a
 *     slow sender pins no pool connection and memory stays at about one chunk (the source is only read when the
 *     previous chunk is stored); the blob becomes visible in one statement at the end.
 * With a `directory`, the chunks of any blob over SMALL_BLOB_BYTES go into one file there and the row is written
 * once, committed, after the file is durable (blob-files.ts): one statement per blob. A small blob stays in the
 * database all the same (SMALL_BLOB_BYTES says why).
 * On any failure our rows are deleted (best effort; purgeAbandonedWrites removes what a crash leaves in state
 * 'writing') and the source is no longer read.
 */
export async function putBlob(
  pool: Pool,
  keyStore: KeyStore,
  source: Readable | AsyncIterable<Uint8Array>,
  options: PutBlobOptions,
): Promise<BlobRef> {
  const { chunkBytes, maxBytes, messageId, directory } = options;
  const id = randomUUID();
  const chunks = chunksOf(source, id, chunkBytes, maxBytes);
  let wrote = false;
  try {
    const first = await chunks.next();
    if (first.done) throw new Error(`the chunks of blob ${id} ended without a final one`); // never: see chunksOf
    if (directory !== undefined && !isSmallBlob(first.value, options.smallBlobBytes)) {
      const staged = await stageInFile(directory, keyStore, { id, messageId }, first.value, chunks);
      try {
        await commitStagedRow(pool, staged);
        await staged.publish();
        return staged.ref;
      } catch (err) {
        await staged.discard();
        throw err;
      }
    }
    // The KEK is taken right before the first statement, which names it: a KEK is retired only when no row,
    // writing or committed, names it, and never in its own or the next period (retireUnusedKeks).
    const { kekId, keys } = await newKeys(keyStore, id);
    if (first.value.final) return await storeWholeBlob(pool, id, messageId, kekId, keys, first.value.plain);

    wrote = true;
    await storage(`cannot start blob ${id}`, () =>
      pool.query('insert into blobs (id, message_id, kek_id, wrapped_key) values ($1, $2, $3, $4)', [
        id,
        messageId,
        kekId,
        keys.wrappedKey,
      ]),
    );
    const { digest, size } = await sealChunks(keys, id, first.value, chunks, (seq, final, pieces) =>
      storeChunk(pool, id, seq, final, Buffer.concat(pieces)),
    );
    return await commitBlob(pool, id, digest, size);
  } catch (err) {
    // Stop reading at once: the rest of an oversized or failed upload is of no use.
    await chunks.return().catch(() => {});
    stopSource(source);
    if (wrote) await pool.query('delete from blobs where id = $1', [id]).catch(() => {});
    throw err;
  }
}

/** Whether a blob whose first chunk this is stays in the database with a directory (0: none does). */
const isSmallBlob = ({ plain, final }: PlainChunk, smallBlobBytes: number): boolean =>
  smallBlobBytes > 0 && final && plain.byteLength <= smallBlobBytes;

/**
 * The source cut into chunks of `chunkBytes`; the last one, marked final, is shorter or empty (an empty blob has one
 * empty final chunk: a blob cut short lacks it and does not read). A full chunk is yielded only once more bytes
 * follow it, so the first chunk comes final exactly when the source ends within one chunk. The yielded buffer is
 * reused: use it before asking for the next chunk. Throws BlobSourceError if the source fails or yields something
 * other than bytes, BlobTooLargeError once it passes `maxBytes`; the source's iterator is closed whenever this
 * generator stops before the source's end.
 */
async function* chunksOf(
  source: Readable | AsyncIterable<Uint8Array>,
  id: string,
  chunkBytes: number,
  maxBytes: number | undefined,
): AsyncGenerator<PlainChunk, void, undefined> {
  const iterator = source[Symbol.asyncIterator]();
  // Grown as bytes come, up to chunkBytes: most messages are far smaller than a chunk, and a fresh zeroed chunk of
  // 256 KiB per message was a measurable share of ingest's time (page faults; issue 12).
  let chunk: Buffer = Buffer.alloc(Math.min(chunkBytes, FIRST_BUFFER_BYTES));
  let filled = 0;
  let size = 0;
  let ended = false;
  try {
    for (;;) {
      let step: IteratorResult<unknown>;
      try {
        step = await iterator.next();
      } catch (err) {
        throw new BlobSourceError(`the source of blob ${id} failed: ${(err as Error).message}`, { cause: err });
      }
      if (step.done) {
        ended = true;
        break;
      }
      const piece = step.value;
      if (!(piece instanceof Uint8Array)) {
        throw new BlobSourceError(`the source of blob ${id} yielded ${typeof piece}, not bytes`);
      }
      size += piece.byteLength;
      if (maxBytes !== undefined && size > maxBytes) {
        throw new BlobTooLargeError(`blob exceeds the limit of ${maxBytes} bytes`);
      }
      let offset = 0;
      while (offset < piece.byteLength) {
        // A full chunk is not the last one: more bytes are here.
        if (filled === chunkBytes) {
          yield { plain: chunk, final: false };
          filled = 0;
        }
        const n = Math.min(chunkBytes - filled, piece.byteLength - offset);
        if (filled + n > chunk.byteLength)
          chunk = grown(chunk, filled, Math.max(filled + n, chunk.byteLength * 2), chunkBytes);
        chunk.set(piece.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
      }
    }
  } finally {
    if (!ended) await Promise.resolve(iterator.return?.()).catch(() => {});
  }
  yield { plain: chunk.subarray(0, filled), final: true };
}

const FIRST_BUFFER_BYTES = 16 * 1024;

/**
 * A buffer of `wanted` bytes (at most `limit`) that starts with the first `filled` bytes of `buffer`. Not zeroed: no
 * byte of it leaves chunksOf unwritten (a full chunk is yielded only when every byte is filled, the last one cut to
 * what was filled).
 */
function grown(buffer: Buffer, filled: number, wanted: number, limit: number): Buffer {
  const bigger = Buffer.allocUnsafe(Math.min(wanted, limit));
  buffer.copy(bigger, 0, 0, filled);
  return bigger;
}

/**
 * Encrypts the chunks in order (the first, then the rest) and hands each to `write` before the next is read (the
 * plain chunk's buffer is reused); returns the content's keyed digest and size.
 */
async function sealChunks(
  keys: BlobKeys,
  id: string,
  first: PlainChunk,
  rest: AsyncGenerator<PlainChunk, void, undefined>,
  write: (seq: number, final: boolean, pieces: Buffer[]) => Promise<unknown>,
): Promise<{ digest: string; size: number }> {
  const digest = contentDigest(keys);
  let seq = 0;
  let size = 0;
  const seal = async ({ plain, final }: PlainChunk) => {
    digest.update(plain);
    size += plain.byteLength;
    await write(seq, final, encryptChunkPieces(keys, id, seq, final, plain));
    seq++;
  };
  await seal(first);
  for await (const chunk of rest) await seal(chunk);
  return { digest: digest.digest('hex'), size };
}

async function newKeys(keyStore: KeyStore, id: string): Promise<{ kekId: string; keys: NewBlobKeys }> {
  const kek = await currentKek(keyStore, id);
  return { kekId: kek.id, keys: newBlobKeys(kek, id) };
}

async function wrapUnderCurrentKek(
  keyStore: KeyStore,
  id: string,
  dataKey: Buffer,
): Promise<{ kekId: string; wrappedKey: Buffer }> {
  const kek = await currentKek(keyStore, id);
  return { kekId: kek.id, wrappedKey: wrapDataKey(kek, id, dataKey) };
}

async function currentKek(keyStore: KeyStore, id: string): Promise<{ id: string; key: Buffer }> {
  try {
    return await keyStore.current();
  } catch (err) {
    if (err instanceof BlobKeyError) throw err;
    throw new BlobKeyError('KEY_STORE_FAILED', `cannot key blob ${id}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * A blob of one chunk in one statement: its row, committed, and its final chunk. Both inserts run in the statement's
 * transaction; the chunk's foreign key is checked at the end of the statement, when the row is there.
 */
const STORE_WHOLE_BLOB = preparedStatement(
  'blob-store-whole',
  `with blob as (
     insert into blobs (id, message_id, kek_id, wrapped_key, state, digest, size, committed_at)
     values ($1, $2, $3, $4, 'committed', $5, $6, now())
     returning id)
   insert into blob_chunks (blob_id, seq, data, final) select id, 0, $7, true from blob`,
);

/** A statement that inserts rows, its parameters numbered from `$first`: committed by the caller with its own. */
export type StagedRow = (first: number) => { text: string; values: unknown[] };

/**
 * A blob whose content is written and durable but whose rows are not committed yet, so that a caller can commit them
 * together with its own rows, in one statement (ingest: the blob and the message, one round trip and one commit).
 */
export interface StagedBlob {
  ref: BlobRef;
  /**
   * The inserts of the blob's rows, to be committed by the caller in one statement with its own; then publish().
   * Empty when the blob is committed already (the database store without SMGW_BLOB_DIR).
   */
  rows: readonly StagedRow[];
  /** Once the rows are committed: a file in place, its folder synced. Readers find the blob from then on. */
  publish(): Promise<void>;
  /**
   * When the rows were not committed (or the message is refused after all): a file removed, also after publish().
   * Committed rows stay, to be collected as a blob no message refers to.
   */
  discard(): Promise<void>;
}

/**
 * Stores `source` as putBlob does, but with SMGW_BLOB_DIR leaves the rows to the caller (StagedBlob): the row and
 * the file of a large blob, the row and its one chunk of a small one (SMALL_BLOB_BYTES). Without a folder the blob
 * is committed here as putBlob commits it. On failure nothing is left but what putBlob would leave.
 */
export async function stageBlob(
  pool: Pool,
  keyStore: KeyStore,
  source: Readable | AsyncIterable<Uint8Array>,
  options: PutBlobOptions,
): Promise<StagedBlob> {
  const { chunkBytes, maxBytes, messageId, directory } = options;
  if (directory === undefined) {
    const ref = await putBlob(pool, keyStore, source, options);
    return { ref, rows: [], publish: async () => {}, discard: async () => {} };
  }
  const id = randomUUID();
  const chunks = chunksOf(source, id, chunkBytes, maxBytes);
  try {
    const first = await chunks.next();
    if (first.done) throw new Error(`the chunks of blob ${id} ended without a final one`); // never: see chunksOf
    if (isSmallBlob(first.value, options.smallBlobBytes)) {
      // All there already: its rows are committed by the caller right after this.
      const { kekId, keys } = await newKeys(keyStore, id);
      return stageInDatabase({ id, messageId, kekId, keys }, first.value.plain);
    }
    return await stageInFile(directory, keyStore, { id, messageId }, first.value, chunks);
  } catch (err) {
    await chunks.return().catch(() => {});
    stopSource(source);
    throw err;
  }
}

/** A small blob's row and its one chunk, both for the caller to commit; no file. */
function stageInDatabase(
  blob: { id: string; messageId: string; kekId: string; keys: NewBlobKeys },
  plain: Buffer,
): StagedBlob {
  const { id, messageId, kekId, keys } = blob;
  const ref = toBlobRef({ id, digest: contentDigest(keys).update(plain).digest('hex'), size: plain.byteLength });
  const data = encryptChunk(keys, id, 0, true, plain);
  const chunk: StagedRow = (first) => ({
    text: `insert into blob_chunks (blob_id, seq, data, final) values ($${first}, 0, $${first + 1}, true)`,
    values: [id, data],
  });
  return {
    ref,
    rows: [committedBlobRow({ id, messageId, kekId, wrappedKey: keys.wrappedKey }, ref, 'database'), chunk],
    publish: async () => {},
    discard: async () => {},
  };
}

/** The committed row of a blob whose chunks are in `storage`; its parameters from $first. */
function committedBlobRow(
  blob: { id: string; messageId: string; kekId: string; wrappedKey: Buffer },
  ref: BlobRef,
  storage: 'database' | 'files',
): StagedRow {
  return (first) => {
    const p = (i: number) => `$${first + i}`;
    return {
      text: `insert into blobs (id, message_id, kek_id, wrapped_key, state, digest, size, committed_at, storage)
   values (${p(0)}, ${p(1)}, ${p(2)}, ${p(3)}, 'committed', ${p(4)}, ${p(5)}, now(), '${storage}')`,
      values: [blob.id, blob.messageId, blob.kekId, blob.wrappedKey, ref.sha256, ref.size],
    };
  };
}

/** The row of a staged blob in files, committed on its own (putBlob). */
async function commitStagedRow(pool: Pool, staged: StagedBlob): Promise<void> {
  const [row, ...more] = staged.rows;
  if (!row || more.length > 0) throw new Error(`blob ${staged.ref.ref} is not one row to commit`); // never: stageInFile
  const { text, values } = row(1);
  await storage(`cannot store blob ${staged.ref.ref}`, () => pool.query({ name: 'blob-store-file', text, values }));
}

/**
 * The chunks into a new file in `directory`, fsynced; the row is the caller's to commit (StagedBlob.rows), then the
 * file goes in place (publish). On failure here the file is removed. The data key is wrapped only when the file is
 * written, under the KEK current then: the write may take longer than a KEK period (a slow client), and until its row
 * commits nothing names its KEK, so a KEK taken at the start could be retired meanwhile (retireUnusedKeks) and the
 * blob committed unreadable. The KEK taken at the end is in its own period, which retirement never touches.
 */
async function stageInFile(
  directory: string,
  keyStore: KeyStore,
  blob: { id: string; messageId: string },
  first: PlainChunk,
  rest: AsyncGenerator<PlainChunk, void, undefined>,
): Promise<StagedBlob> {
  const { id, messageId } = blob;
  const keys: UnwrappedBlobKeys = newDataKey();
  try {
    const file = await createBlobFileWriter(directory, id);
    try {
      const { digest, size } = await sealChunks(keys, id, first, rest, (seq, final, pieces) =>
        file.append(seq, final, pieces),
      );
      await file.flush();
      const { kekId, wrappedKey } = await wrapUnderCurrentKek(keyStore, id, keys.dataKey);
      const ref = toBlobRef({ id, digest, size });
      return {
        ref,
        rows: [committedBlobRow({ id, messageId, kekId, wrappedKey }, ref, 'files')],
        publish: () => file.publish(),
        discard: () => file.discard(),
      };
    } catch (err) {
      await file.discard();
      throw err;
    }
  } finally {
    keys.dataKey.fill(0);
  }
}

const STORE_CHUNK = preparedStatement(
  'blob-store-chunk',
  'insert into blob_chunks (blob_id, seq, data, final) values ($1, $2, $3, $4)',
);

async function storeWholeBlob(
  pool: Pool,
  id: string,
  messageId: string,
  kekId: string,
  keys: NewBlobKeys,
  plain: Buffer,
): Promise<BlobRef> {
  const digest = contentDigest(keys).update(plain).digest('hex');
  const size = plain.byteLength;
  const data = encryptChunk(keys, id, 0, true, plain);
  const { rowCount } = await storage(`cannot store blob ${id}`, () =>
    pool.query(STORE_WHOLE_BLOB([id, messageId, kekId, keys.wrappedKey, digest, size, data])),
  );
  if (rowCount !== 1) throw new BlobStorageError(`blob ${id} was stored without its chunk`);
  return toBlobRef({ id, digest, size });
}

function storeChunk(pool: Pool, id: string, seq: number, final: boolean, data: Buffer) {
  return storage(`cannot store chunk ${seq} of blob ${id}`, () => pool.query(STORE_CHUNK([id, seq, data, final])));
}

/** Makes the blob visible. */
async function commitBlob(pool: Pool, id: string, digest: string, size: number): Promise<BlobRef> {
  const { rowCount } = await storage(`cannot commit blob ${id}`, () =>
    pool.query(
      `update blobs set state = 'committed', digest = $2, size = $3, committed_at = now()
        where id = $1 and state = 'writing'`,
      [id, digest, size],
    ),
  );
  if (rowCount !== 1) {
    throw new BlobStorageError(`blob ${id} vanished before its commit (purged as an abandoned write?)`);
  }
  return toBlobRef({ id, digest, size });
}

function stopSource(source: Readable | AsyncIterable<Uint8Array>): void {
  if (source instanceof Readable && !source.destroyed) source.destroy();
}

async function storage<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw new BlobStorageError(`${what}: ${(err as Error).message}`, { cause: err });
  }
}
