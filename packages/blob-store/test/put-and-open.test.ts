import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  BlobCorruptError,
  BlobNotFoundError,
  BlobSourceError,
  type BlobStore,
  BlobTooLargeError,
  createBlobStore,
  createFolderKeyStore,
  DEFAULT_CHUNK_BYTES,
} from '@smgw/blob-store';
import { createTestDatabase, type TestDatabase, waitFor } from '@smgw/testing';

const CHUNK = 1000;
/** GCM's tag, stored after each chunk's ciphertext. */
const TAG = 16;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const OF_MESSAGE = { messageId: 'm-put-and-open' };

/** Cuts `bytes` into pieces of an awkward size, so chunk boundaries fall in the middle of pieces. */
function piecesOf(bytes: Buffer, pieceBytes = 333): Buffer[] {
  const pieces: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += pieceBytes) pieces.push(bytes.subarray(at, at + pieceBytes));
  return pieces;
}

describe('blob store: put, open, stat, readAll', () => {
  let db: TestDatabase;
  let store: BlobStore;

  const count = async (sql: string, params: unknown[] = []): Promise<number> =>
    Number((await db.pool.query(`select count(*)::int as n from ${sql}`, params)).rows[0].n);

  before(async () => {
    db = await createTestDatabase();
    store = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys), chunkBytes: CHUNK });
  });
  after(async () => {
    await db.drop();
  });

  const sizes = [
    ['empty', 0],
    ['one byte', 1],
    ['one byte short of a chunk', CHUNK - 1],
    ['exactly one chunk', CHUNK],
    ['one byte over a chunk', CHUNK + 1],
    ['several chunks and a bit', 5 * CHUNK + 17],
  ] as const;
  for (const [name, size] of sizes) {
    it(`gives back the identical bytes of a blob that is ${name} (${size} bytes)`, async () => {
      const bytes = randomBytes(size);
      const ref = await store.put(Readable.from(piecesOf(bytes)), OF_MESSAGE);
      assert.match(ref.ref, UUID);
      assert.match(ref.sha256, /^[0-9a-f]{64}$/);
      assert.equal(ref.size, size);
      assert.deepEqual(await store.stat(ref.ref), ref);
      assert.ok((await store.readAll(ref.ref)).equals(bytes));
      // At least one chunk, the final one, also for an empty blob.
      assert.equal(await count('blob_chunks where blob_id = $1', [ref.ref]), Math.max(1, Math.ceil(size / CHUNK)));
      assert.equal(await count('blob_chunks where blob_id = $1 and final', [ref.ref]), 1);
    });
  }

  for (const chunkBytes of [1, 17, 4096]) {
    it(`gives back the identical bytes with ${chunkBytes}-byte chunks, at sizes around the chunk boundaries`, async () => {
      const small = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys), chunkBytes });
      for (const size of [0, 1, chunkBytes, chunkBytes + 1, 3 * chunkBytes + 2]) {
        const bytes = randomBytes(size);
        const ref = await small.put(Readable.from(piecesOf(bytes, 5)), OF_MESSAGE);
        assert.ok((await small.readAll(ref.ref)).equals(bytes), `${size} bytes`);
        assert.equal(
          await count('blob_chunks where blob_id = $1', [ref.ref]),
          Math.max(1, Math.ceil(size / chunkBytes)),
        );
      }
    });
  }

  it('accepts an async iterable of byte arrays as the source', async () => {
    const bytes = randomBytes(3 * CHUNK + 5);
    async function* source(): AsyncIterable<Uint8Array> {
      for (const piece of piecesOf(bytes, 700)) yield new Uint8Array(piece);
    }
    const ref = await store.put(source(), OF_MESSAGE);
    assert.equal(ref.size, bytes.length);
    assert.ok((await store.readAll(ref.ref)).equals(bytes));
  });

  it('streams a blob through open in order, chunk by chunk', async () => {
    const bytes = randomBytes(9 * CHUNK + 1);
    const ref = await store.put(Readable.from([bytes]), OF_MESSAGE);
    const stream = store.open(ref.ref);
    const pieces: Buffer[] = [];
    // 'data' events show each chunk as pushed (async iteration would merge what is buffered).
    stream.on('data', (piece: Buffer) => pieces.push(piece));
    await once(stream, 'end');
    assert.deepEqual(
      pieces.map((p) => p.length),
      [...Array(9).fill(CHUNK), 1],
    );
    assert.ok(Buffer.concat(pieces).equals(bytes));
  });

  it('stores equal content twice as two blobs with different refs, digests and ciphertexts', async () => {
    const bytes = randomBytes(2 * CHUNK + 3);
    const first = await store.put(Readable.from(piecesOf(bytes)), OF_MESSAGE);
    const second = await store.put(Readable.from(piecesOf(bytes, 50)), OF_MESSAGE);
    assert.notEqual(second.ref, first.ref);
    assert.notEqual(second.sha256, first.sha256);
    const chunksOf = async (ref: string) =>
      (await db.pool.query('select data from blob_chunks where blob_id = $1 order by seq', [ref])).rows.map(
        (r: { data: Buffer }) => r.data,
      );
    const [a, b] = [await chunksOf(first.ref), await chunksOf(second.ref)];
    assert.equal(a.length, 3);
    for (const [i, chunk] of a.entries()) assert.ok(!chunk.equals(b[i] as Buffer), `chunk ${i} differs`);
    assert.ok((await store.readAll(first.ref)).equals(bytes));
    assert.ok((await store.readAll(second.ref)).equals(bytes));
  });

  it('gives concurrent puts of the same content a blob each', async () => {
    const bytes = randomBytes(20 * CHUNK);
    const refs = await Promise.all(
      Array.from({ length: 5 }, () => store.put(Readable.from(piecesOf(bytes, 997)), OF_MESSAGE)),
    );
    assert.equal(new Set(refs.map((r) => r.ref)).size, 5);
    assert.equal(await count(`blobs where state = 'writing'`), 0);
    for (const ref of refs) assert.ok((await store.readAll(ref.ref)).equals(bytes));
  });

  it('keeps a blob invisible until its last chunk is stored and it is committed', async () => {
    const bytes = randomBytes(4 * CHUNK);
    const source = new PassThrough();
    const put = store.put(source, OF_MESSAGE);
    source.write(bytes.subarray(0, 3 * CHUNK + 1));
    const writingChunks = () => count(`blob_chunks c join blobs b on b.id = c.blob_id where b.state = 'writing'`);
    await waitFor('three chunks of the blob being written', async () => (await writingChunks()) === 3);
    const writing = (await db.pool.query(`select id from blobs where state = 'writing'`)).rows[0].id;
    assert.equal(await store.stat(writing), undefined);
    await assert.rejects(store.readAll(writing), BlobNotFoundError);
    source.end(bytes.subarray(3 * CHUNK + 1));
    const ref = await put;
    assert.equal(ref.ref, writing);
    assert.deepEqual(await store.stat(writing), ref);
  });

  it('rejects a source over maxBytes with BlobTooLargeError, stops reading it and leaves nothing behind', async () => {
    const before = { blobs: await count('blobs'), chunks: await count('blob_chunks') };
    let piecesRead = 0;
    const source = new Readable({
      read() {
        piecesRead++;
        this.push(randomBytes(CHUNK));
      },
    });
    await assert.rejects(store.put(source, { ...OF_MESSAGE, maxBytes: 10 * CHUNK + 1 }), (err: unknown) => {
      assert.ok(err instanceof BlobTooLargeError);
      assert.equal(err.code, 'BLOB_TOO_LARGE');
      return true;
    });
    assert.equal(source.destroyed, true);
    // What the store consumed (11 pieces) plus what the stream itself buffers ahead (its highWaterMark).
    const readAhead = Math.ceil(source.readableHighWaterMark / CHUNK) + 1;
    assert.ok(piecesRead <= 11 + readAhead, `read ${piecesRead} pieces of an endless source`);
    assert.equal(await count('blobs'), before.blobs);
    assert.equal(await count('blob_chunks'), before.chunks);
  });

  it('accepts a source of exactly maxBytes', async () => {
    const bytes = randomBytes(2 * CHUNK);
    const ref = await store.put(Readable.from([bytes]), { ...OF_MESSAGE, maxBytes: bytes.length });
    assert.equal(ref.size, bytes.length);
  });

  it('rejects with BlobSourceError and leaves nothing visible when a stream source errors midway', async () => {
    const before = { blobs: await count('blobs'), chunks: await count('blob_chunks') };
    const bytes = randomBytes(7 * CHUNK);
    let sent = 0;
    const source = new Readable({
      read() {
        if (sent < 5) this.push(bytes.subarray(sent * CHUNK, ++sent * CHUNK));
        else this.destroy(new Error('client went away'));
      },
    });
    await assert.rejects(store.put(source, OF_MESSAGE), (err: unknown) => {
      assert.ok(err instanceof BlobSourceError);
      assert.equal(err.code, 'BLOB_SOURCE_FAILED');
      assert.equal((err.cause as Error).message, 'client went away');
      return true;
    });
    assert.equal(await count('blobs'), before.blobs);
    assert.equal(await count('blob_chunks'), before.chunks);
  });

  it('rejects with BlobSourceError and leaves nothing visible when an async iterable source throws midway', async () => {
    const before = { blobs: await count('blobs'), chunks: await count('blob_chunks') };
    async function* source(): AsyncIterable<Uint8Array> {
      for (let i = 0; i < 4; i++) yield randomBytes(CHUNK);
      throw new Error('upstream broke');
    }
    await assert.rejects(store.put(source(), OF_MESSAGE), BlobSourceError);
    assert.equal(await count('blobs'), before.blobs);
    assert.equal(await count('blob_chunks'), before.chunks);
  });

  it('rejects a source that yields strings instead of bytes', async () => {
    await assert.rejects(store.put(Readable.from(['text'], { objectMode: true }), OF_MESSAGE), BlobSourceError);
  });

  it('errors the stream of an unknown ref with BlobNotFoundError', async () => {
    const stream = store.open('0'.repeat(64));
    stream.resume();
    const [err] = await once(stream, 'error');
    assert.ok(err instanceof BlobNotFoundError);
    assert.equal(err.code, 'BLOB_NOT_FOUND');
    await assert.rejects(store.readAll('0'.repeat(64)), BlobNotFoundError);
    assert.equal(await store.stat('0'.repeat(64)), undefined);
  });

  it('errors with BlobCorruptError instead of ending when a chunk is missing or altered', async () => {
    const bytes = randomBytes(6 * CHUNK);
    const ref = await store.put(Readable.from([bytes]), OF_MESSAGE);
    await db.pool.query(`update blob_chunks set data = '\\x00'::bytea || data where blob_id = $1 and seq = 5`, [
      ref.ref,
    ]);
    await assert.rejects(store.readAll(ref.ref), BlobCorruptError);
    await db.pool.query('delete from blob_chunks where blob_id = $1 and seq = 2', [ref.ref]);
    await assert.rejects(store.readAll(ref.ref), BlobCorruptError);
  });

  it('uses 256 KiB chunks by default', async () => {
    const defaultStore = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    const bytes = randomBytes(DEFAULT_CHUNK_BYTES + 1);
    const ref = await defaultStore.put(Readable.from(piecesOf(bytes, 64 * 1024)), OF_MESSAGE);
    const { rows } = await db.pool.query('select length(data) as n from blob_chunks where blob_id = $1 order by seq', [
      ref.ref,
    ]);
    assert.deepEqual(
      rows.map((r) => r.n),
      [DEFAULT_CHUNK_BYTES + TAG, 1 + TAG],
    );
    assert.ok((await defaultStore.readAll(ref.ref)).equals(bytes));
  });

  it('refuses a chunk size that is not a positive integer', () => {
    const keyStore = createFolderKeyStore(db.keys);
    assert.throws(() => createBlobStore(db.pool, { keyStore, chunkBytes: 0 }), RangeError);
    assert.throws(() => createBlobStore(db.pool, { keyStore, chunkBytes: 1.5 }), RangeError);
  });
});
