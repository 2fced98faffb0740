// Round trips to PostgreSQL: a blob that fits in one chunk is stored in one statement (its row committed with its
// only chunk) and a blob of up to CHUNKS_PER_READ chunks reads in one; longer blobs stream as before. Every check of
// the slower paths holds on the fast ones: nothing stored on a failure, nothing read that does not authenticate.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import {
  BlobCorruptError,
  BlobKeyError,
  BlobNotFoundError,
  BlobSourceError,
  BlobStorageError,
  type BlobStore,
  BlobTooLargeError,
  CHUNKS_PER_READ,
  committedBlobColumn,
  committedBlobParameter,
  createBlobStore,
  createFolderKeyStore,
  foundBlob,
  type KeyStore,
  SMALL_BLOB_BYTES,
} from '@smgw/blob-store';
import type { Pool, QueryConfig } from '@smgw/db';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';

const CHUNK = 1000;
const OF_MESSAGE = { messageId: 'm-round-trips' };

/** `pool` seen through a wrapper that records the text of every statement sent through pool.query. */
function recordingStatements(pool: Pool): { pool: Pool; statements: string[] } {
  const statements: string[] = [];
  const query = (query: string | QueryConfig, values?: unknown[]) => {
    const text = typeof query === 'string' ? query : query.text;
    statements.push(text.replace(/\s+/g, ' ').trim());
    return typeof query === 'string' ? pool.query(query, values) : pool.query(query);
  };
  return { pool: Object.assign(Object.create(pool) as Pool, { query }), statements };
}

/** Cuts `bytes` into pieces of an awkward size, so chunk boundaries fall in the middle of pieces. */
function piecesOf(bytes: Buffer, pieceBytes = 333): Buffer[] {
  const pieces: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += pieceBytes) pieces.push(bytes.subarray(at, at + pieceBytes));
  return pieces;
}

describe('blob store round trips', () => {
  let db: TestDatabase;
  let keyStore: KeyStore;
  let store: BlobStore;
  let recorded: string[];

  const count = async (sql: string, params: unknown[] = []): Promise<number> =>
    Number((await db.pool.query(`select count(*)::int as n from ${sql}`, params)).rows[0].n);
  const stored = async () => ({ blobs: await count('blobs'), chunks: await count('blob_chunks') });

  /** Statements sent by `work` (through the store under test). */
  async function statementsOf(work: () => Promise<unknown>): Promise<string[]> {
    recorded.length = 0;
    await work();
    return [...recorded];
  }

  before(async () => {
    db = await createTestDatabase();
    keyStore = createFolderKeyStore(db.keys);
    const recording = recordingStatements(db.pool);
    recorded = recording.statements;
    store = createBlobStore(recording.pool, { keyStore, chunkBytes: CHUNK });
  });
  after(async () => {
    await db.drop();
  });

  const oneChunk = [
    ['empty', 0],
    ['one byte', 1],
    ['one byte short of a chunk', CHUNK - 1],
    ['exactly one chunk', CHUNK],
  ] as const;
  for (const [name, size] of oneChunk) {
    it(`puts a blob that is ${name} (${size} bytes) in one statement and reads it in one`, async () => {
      const bytes = randomBytes(size);
      let ref = { ref: '', sha256: '', size: -1 };
      const put = await statementsOf(async () => {
        ref = await store.put(Readable.from(piecesOf(bytes)), OF_MESSAGE);
      });
      assert.equal(put.length, 1, put.join('\n'));
      assert.match(put[0] ?? '', /insert into blobs .* insert into blob_chunks/);
      assert.equal(ref.size, size);

      // Committed, with its digest and size, naming the key store's current KEK; one chunk, the final one.
      const { rows } = await db.pool.query(
        'select state, digest, size::int, committed_at, kek_id, message_id from blobs where id = $1',
        [ref.ref],
      );
      assert.equal(rows.length, 1);
      assert.equal(rows[0].state, 'committed');
      assert.equal(rows[0].digest, ref.sha256);
      assert.equal(rows[0].size, size);
      assert.ok(rows[0].committed_at instanceof Date);
      assert.equal(rows[0].kek_id, (await keyStore.current()).id);
      assert.equal(rows[0].message_id, OF_MESSAGE.messageId);
      const chunks = await db.pool.query('select seq, final from blob_chunks where blob_id = $1', [ref.ref]);
      assert.deepEqual(chunks.rows, [{ seq: 0, final: true }]);

      let read: Buffer = Buffer.alloc(0);
      const reads = await statementsOf(async () => {
        read = await store.readAll(ref.ref);
      });
      assert.ok(read.equals(bytes));
      assert.equal(reads.length, 1, reads.join('\n'));
      assert.deepEqual(await store.stat(ref.ref), ref);
    });
  }

  it('streams a blob of one byte over a chunk: its row, each chunk, then the commit', async () => {
    const bytes = randomBytes(CHUNK + 1);
    let ref = { ref: '', sha256: '', size: -1 };
    const put = await statementsOf(async () => {
      ref = await store.put(Readable.from(piecesOf(bytes)), OF_MESSAGE);
    });
    assert.deepEqual(
      put.map((s) => s.split(' ').slice(0, 3).join(' ')),
      ['insert into blobs', 'insert into blob_chunks', 'insert into blob_chunks', 'update blobs set'],
    );
    const chunks = await db.pool.query('select seq, final from blob_chunks where blob_id = $1 order by seq', [ref.ref]);
    assert.deepEqual(chunks.rows, [
      { seq: 0, final: false },
      { seq: 1, final: true },
    ]);
    const reads = await statementsOf(async () => assert.ok((await store.readAll(ref.ref)).equals(bytes)));
    assert.equal(reads.length, 1);
  });

  it('reads a blob of CHUNKS_PER_READ chunks in one statement, and one chunk more in two', async () => {
    for (const [chunks, statements] of [
      [CHUNKS_PER_READ, 1],
      [CHUNKS_PER_READ + 1, 2],
    ] as const) {
      const bytes = randomBytes(chunks * CHUNK);
      const ref = await store.put(Readable.from([bytes]), OF_MESSAGE);
      const reads = await statementsOf(async () => assert.ok((await store.readAll(ref.ref)).equals(bytes)));
      assert.equal(reads.length, statements, `${chunks} chunks: ${reads.join('\n')}`);
    }
  });

  it('streams a large blob chunk by chunk and reads it back identically', async () => {
    const bytes = randomBytes(25 * CHUNK + 7);
    let ref = { ref: '', sha256: '', size: -1 };
    const put = await statementsOf(async () => {
      ref = await store.put(Readable.from(piecesOf(bytes, 4321)), OF_MESSAGE);
    });
    // Its row, 26 chunks, the commit.
    assert.equal(put.length, 1 + 26 + 1);
    assert.equal(await count('blob_chunks where blob_id = $1', [ref.ref]), 26);
    const pieces: Buffer[] = [];
    const reads = await statementsOf(async () => {
      const stream = store.open(ref.ref);
      stream.on('data', (piece: Buffer) => pieces.push(piece));
      await once(stream, 'end');
    });
    assert.ok(Buffer.concat(pieces).equals(bytes));
    assert.deepEqual(
      pieces.map((p) => p.length),
      [...Array(25).fill(CHUNK), 7],
    );
    assert.equal(reads.length, Math.ceil(26 / CHUNKS_PER_READ));
  });

  it('stores nothing when the source of a small blob errors, and stops reading it', async () => {
    const before = await stored();
    const source = new Readable({
      read() {
        this.push(randomBytes(10));
        this.destroy(new Error('client went away'));
      },
    });
    await assert.rejects(store.put(source, OF_MESSAGE), (err: unknown) => {
      assert.ok(err instanceof BlobSourceError);
      assert.equal(err.code, 'BLOB_SOURCE_FAILED');
      assert.equal((err.cause as Error).message, 'client went away');
      return true;
    });
    assert.equal(source.destroyed, true);
    assert.deepEqual(await stored(), before);
  });

  it('stores nothing when an async iterable source throws within the first chunk', async () => {
    const before = await stored();
    async function* source(): AsyncIterable<Uint8Array> {
      yield randomBytes(CHUNK - 1);
      throw new Error('upstream broke');
    }
    await assert.rejects(store.put(source(), OF_MESSAGE), BlobSourceError);
    assert.deepEqual(await stored(), before);
  });

  it('refuses a small blob over maxBytes with BlobTooLargeError and stores nothing', async () => {
    const before = await stored();
    const source = Readable.from(piecesOf(randomBytes(50), 7));
    await assert.rejects(store.put(source, { ...OF_MESSAGE, maxBytes: 49 }), (err: unknown) => {
      assert.ok(err instanceof BlobTooLargeError);
      assert.equal(err.code, 'BLOB_TOO_LARGE');
      assert.match(err.message, /limit of 49 bytes/);
      return true;
    });
    assert.equal(source.destroyed, true);
    assert.deepEqual(await stored(), before);
    // An empty blob under a limit of 0, and a blob of exactly the limit, are fine.
    assert.equal((await store.put(Readable.from([]), { ...OF_MESSAGE, maxBytes: 0 })).size, 0);
    assert.equal((await store.put(Readable.from([randomBytes(49)]), { ...OF_MESSAGE, maxBytes: 49 })).size, 49);
  });

  it('refuses a small source of strings instead of bytes and stores nothing', async () => {
    const before = await stored();
    await assert.rejects(
      store.put(Readable.from(['DROP TABLE blobs'], { objectMode: true }), OF_MESSAGE),
      BlobSourceError,
    );
    assert.deepEqual(await stored(), before);
  });

  it('stores nothing and destroys the source when the key store fails', async () => {
    const before = await stored();
    const broken: KeyStore = {
      ...keyStore,
      current: () => Promise.reject(new Error('disk gone')),
    };
    const brokenStore = createBlobStore(db.pool, { keyStore: broken, chunkBytes: CHUNK });
    for (const size of [10, 3 * CHUNK]) {
      const source = Readable.from([randomBytes(size)]);
      await assert.rejects(brokenStore.put(source, OF_MESSAGE), (err: unknown) => {
        assert.ok(err instanceof BlobKeyError);
        assert.equal(err.code, 'KEY_STORE_FAILED');
        return true;
      });
      assert.equal(source.destroyed, true);
    }
    assert.deepEqual(await stored(), before);
  });

  it('stores nothing of a small blob when the database refuses its chunk: the one statement fails whole', async () => {
    const before = await stored();
    await db.pool.query('alter table blob_chunks add constraint refuse_every_chunk check (false) not valid');
    try {
      await assert.rejects(store.put(Readable.from([randomBytes(10)]), OF_MESSAGE), (err: unknown) => {
        assert.ok(err instanceof BlobStorageError);
        assert.equal(err.code, 'BLOB_STORAGE_FAILED');
        assert.equal((err.cause as { code?: string }).code, '23514');
        return true;
      });
    } finally {
      await db.pool.query('alter table blob_chunks drop constraint refuse_every_chunk');
    }
    assert.deepEqual(await stored(), before);
  });

  it('still refuses a chunk whose blob does not exist (the foreign key is checked)', async () => {
    await assert.rejects(
      db.pool.query('insert into blob_chunks (blob_id, seq, data, final) values ($1, 0, $2, true)', [
        randomUUID(),
        randomBytes(32),
      ]),
      { code: '23503' },
    );
  });

  describe('a small blob that does not read back as written', () => {
    const tamperings: [string, (ref: string) => Promise<unknown>][] = [
      [
        'a bit of its chunk flipped',
        (ref) =>
          db.pool.query(`update blob_chunks set data = set_byte(data, 3, get_byte(data, 3) # 1) where blob_id = $1`, [
            ref,
          ]),
      ],
      [
        'its chunk no longer marked final',
        (ref) => db.pool.query('update blob_chunks set final = false where blob_id = $1', [ref]),
      ],
      [
        'its final chunk missing: no chunk at all',
        (ref) => db.pool.query('delete from blob_chunks where blob_id = $1', [ref]),
      ],
      ['its chunk moved to seq 1', (ref) => db.pool.query('update blob_chunks set seq = 1 where blob_id = $1', [ref])],
      [
        'a recorded size one byte larger',
        (ref) => db.pool.query('update blobs set size = size + 1 where id = $1', [ref]),
      ],
      [
        "another blob's chunk in its place",
        async (ref) => {
          const other = await store.put(Readable.from([randomBytes(100)]), OF_MESSAGE);
          await db.pool.query(
            'update blob_chunks set data = (select data from blob_chunks where blob_id = $2) where blob_id = $1',
            [ref, other.ref],
          );
        },
      ],
    ];
    for (const [name, tamper] of tamperings) {
      it(`errors with BlobCorruptError and pushes no byte: ${name}`, async () => {
        const ref = await store.put(Readable.from([randomBytes(100)]), OF_MESSAGE);
        await tamper(ref.ref);
        const received: Buffer[] = [];
        const stream = store.open(ref.ref);
        stream.on('data', (piece: Buffer) => received.push(piece));
        const [err] = await once(stream, 'error');
        assert.ok(err instanceof BlobCorruptError, String(err));
        assert.equal(err.code, 'BLOB_CORRUPT');
        assert.equal(Buffer.concat(received).length, 0);
        await assert.rejects(store.readAll(ref.ref), BlobCorruptError);
      });
    }
  });

  it('errors with BlobCorruptError when the final chunk of a blob read in one statement is missing', async () => {
    for (const chunks of [2, CHUNKS_PER_READ, CHUNKS_PER_READ + 2]) {
      const ref = await store.put(Readable.from([randomBytes(chunks * CHUNK - 5)]), OF_MESSAGE);
      await db.pool.query('delete from blob_chunks where blob_id = $1 and final', [ref.ref]);
      await assert.rejects(store.readAll(ref.ref), BlobCorruptError, `${chunks} chunks`);
    }
  });

  it('reads a blob still being written as not found, even when all its chunks are there', async () => {
    const bytes = randomBytes(2 * CHUNK);
    for (const size of [10, bytes.length]) {
      const ref = await store.put(Readable.from([bytes.subarray(0, size)]), OF_MESSAGE);
      await db.pool.query(`update blobs set state = 'writing', committed_at = null where id = $1`, [ref.ref]);
      await assert.rejects(store.readAll(ref.ref), BlobNotFoundError);
      assert.equal(await store.stat(ref.ref), undefined);
    }
  });

  it('reads a reference that is no blob id as not found, without asking the database', async () => {
    for (const ref of ["' or '1'='1", '0'.repeat(64), `${randomUUID()}' --`, '']) {
      const reads = await statementsOf(() => assert.rejects(store.readAll(ref), BlobNotFoundError));
      assert.deepEqual(reads, []);
    }
    await assert.rejects(store.readAll(randomUUID()), BlobNotFoundError);
  });

  describe('with its row looked up by another statement (committedBlobColumn, as deliver does with its claim)', () => {
    const lookUp = async (ref: string) => {
      const { rows } = await db.pool.query(`select ${committedBlobColumn(1)} as blob`, [committedBlobParameter(ref)]);
      return foundBlob(ref, rows[0].blob);
    };

    it('reads the chunks without reading the row again; a blob of one small chunk comes with it and asks nothing', async () => {
      for (const chunks of [1, 2, CHUNKS_PER_READ + 1]) {
        const bytes = randomBytes(chunks * CHUNK - 3);
        const ref = await store.put(Readable.from([bytes]), OF_MESSAGE);
        const found = await lookUp(ref.ref);
        assert.equal(found.blob?.size, bytes.length);
        assert.equal(found.chunks?.length, chunks === 1 ? 1 : undefined);
        const reads = await statementsOf(async () =>
          assert.ok((await buffer(store.open(ref.ref, found))).equals(bytes)),
        );
        assert.ok(
          reads.every((s) => s.startsWith('select seq, data, final from blob_chunks')),
          reads.join('\n'),
        );
        assert.equal(reads.length, chunks === 1 ? 0 : chunks === 2 ? 1 : 2);
      }
    });

    it('sends no chunk with the row of a blob over SMALL_BLOB_BYTES, even of one chunk', async () => {
      const large = createBlobStore(db.pool, { keyStore, chunkBytes: 2 * SMALL_BLOB_BYTES });
      const bytes = randomBytes(SMALL_BLOB_BYTES + 1);
      const ref = await large.put(Readable.from([bytes]), OF_MESSAGE);
      const found = await lookUp(ref.ref);
      assert.equal(found.chunks, undefined);
      assert.ok((await buffer(large.open(ref.ref, found))).equals(bytes));
    });

    it("refuses a chunk that came with the row but is not that blob's", async () => {
      const mine = await store.put(Readable.from([randomBytes(10)]), OF_MESSAGE);
      const otherRef = await store.put(Readable.from([randomBytes(10)]), OF_MESSAGE);
      const { rows } = await db.pool.query(
        `select ${committedBlobColumn(1)} as blob, ${committedBlobColumn(2)} as other`,
        [mine.ref, otherRef.ref],
      );
      // The other blob's chunk under this blob's row: it does not authenticate, and not a byte is pushed.
      const swapped = foundBlob(mine.ref, { ...rows[0].blob, chunk: rows[0].other.chunk });
      const pushed: Buffer[] = [];
      const stream = store.open(mine.ref, swapped);
      stream.on('data', (piece: Buffer) => pushed.push(piece));
      await assert.rejects(once(stream, 'end'), BlobCorruptError);
      assert.deepEqual(pushed, []);
    });

    it('reads a blob found absent or still being written as not found, asking nothing', async () => {
      const writing = await store.put(Readable.from([randomBytes(10)]), OF_MESSAGE);
      await db.pool.query(`update blobs set state = 'writing', committed_at = null where id = $1`, [writing.ref]);
      for (const ref of [writing.ref, randomUUID(), "' or '1'='1"]) {
        const found = await lookUp(ref);
        assert.equal(found.blob, undefined, ref);
        const reads = await statementsOf(() => assert.rejects(buffer(store.open(ref, found)), BlobNotFoundError));
        assert.deepEqual(reads, []);
      }
    });

    it('looks the row up itself when what was found is for another blob', async () => {
      const bytes = randomBytes(10);
      const ref = await store.put(Readable.from([bytes]), OF_MESSAGE);
      const other = await lookUp(randomUUID());
      const reads = await statementsOf(async () => assert.ok((await buffer(store.open(ref.ref, other))).equals(bytes)));
      assert.equal(reads.length, 1);
      assert.match(reads[0] ?? '', /from blobs b/);
    });

    it('refuses a looked-up value that is not the row of that blob', async () => {
      const ref = await store.put(Readable.from([randomBytes(10)]), OF_MESSAGE);
      const { rows } = await db.pool.query(`select ${committedBlobColumn(1)} as blob`, [ref.ref]);
      assert.throws(() => foundBlob(randomUUID(), rows[0].blob), BlobStorageError);
      assert.throws(() => foundBlob(ref.ref, { ...rows[0].blob, size: '10' }), BlobStorageError);
      assert.throws(() => foundBlob(ref.ref, 'not a row'), BlobStorageError);
      assert.throws(() => foundBlob(ref.ref, { ...rows[0].blob, chunk: 42 }), BlobStorageError);
      assert.throws(
        () => foundBlob(ref.ref, { ...rows[0].blob, storage: 'files' }),
        BlobStorageError,
        'a chunk of a file',
      );
    });
  });

  it('errors with BlobKeyError BLOB_KEY_RETIRED when the KEK of a small blob is retired', async () => {
    const keys = { keyStoreDir: await mkdtemp(join(tmpdir(), 'smgw-keys-')), masterKey: randomBytes(32) };
    try {
      const ownKeys = createFolderKeyStore(keys);
      const ownStore = createBlobStore(db.pool, { keyStore: ownKeys, chunkBytes: CHUNK });
      for (const size of [10, 6 * CHUNK]) {
        const ref = await ownStore.put(Readable.from([randomBytes(size)]), OF_MESSAGE);
        const { kek_id: kekId } = (await db.pool.query('select kek_id from blobs where id = $1', [ref.ref])).rows[0];
        await ownKeys.retire(kekId);
        await assert.rejects(ownStore.readAll(ref.ref), (err: unknown) => {
          assert.ok(err instanceof BlobKeyError);
          assert.equal(err.code, 'BLOB_KEY_RETIRED');
          return true;
        });
      }
    } finally {
      await rm(keys.keyStoreDir, { recursive: true, force: true });
    }
  });

  it('keeps ciphertext chunks in external storage: out of line, never compressed', async () => {
    const { rows } = await db.pool.query(
      `select attstorage from pg_attribute where attrelid = 'blob_chunks'::regclass and attname = 'data'`,
    );
    assert.deepEqual(rows, [{ attstorage: 'e' }]);
    // A chunk of a highly repetitive message, far above the size PostgreSQL moves out of line, is ciphertext:
    // stored at its full length, not compressed.
    const bigChunks = createBlobStore(db.pool, { keyStore, chunkBytes: 8 * CHUNK });
    const ref = await bigChunks.put(Readable.from([Buffer.alloc(8 * CHUNK, 'a')]), OF_MESSAGE);
    const chunk = await db.pool.query(
      'select pg_column_compression(data) as compression, length(data) as bytes from blob_chunks where blob_id = $1',
      [ref.ref],
    );
    assert.deepEqual(chunk.rows, [{ compression: null, bytes: 8 * CHUNK + 16 }]);
  });

  it('gives concurrent small puts a blob each, all readable', async () => {
    const contents = Array.from({ length: 20 }, (_, i) => randomBytes(i * 37));
    const refs = await Promise.all(contents.map((bytes) => store.put(Readable.from([bytes]), OF_MESSAGE)));
    assert.equal(new Set(refs.map((r) => r.ref)).size, contents.length);
    const read = await Promise.all(refs.map((ref) => store.readAll(ref.ref)));
    for (const [i, bytes] of contents.entries()) assert.ok(read[i]?.equals(bytes), `blob ${i}`);
  });
});
