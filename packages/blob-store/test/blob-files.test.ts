// Blob contents in files (SMGW_BLOB_DIR): the same promises as in the database (identical bytes back, encrypted at
// rest, an error and never a short end for anything changed or missing, nothing left behind by a failed put), plus
// what files add: durable before the row, unlinked with the row, leftovers of cut-short writes swept.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import {
  BlobCorruptError,
  BlobSourceError,
  BlobStorageError,
  type BlobStore,
  BlobTooLargeError,
  blobDirectorySpace,
  blobFilePath,
  blobFiles,
  collectUnreferencedBlobs,
  committedBlobColumn,
  committedBlobParameter,
  createBlobStore,
  createFolderKeyStore,
  foundBlob,
  purgeBlobsOfMessages,
  SMALL_BLOB_BYTES,
} from '@smgw/blob-store';
import type { Pool } from '@smgw/db';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';

const CHUNK = 1000;
const HEADER = 5;
const TAG = 16;
const OF_MESSAGE = { messageId: 'm-blob-files' };

describe('blob store with SMGW_BLOB_DIR: contents in files', () => {
  let db: TestDatabase;
  let directory: string;
  let store: BlobStore;

  const count = async (sql: string, params: unknown[] = []): Promise<number> =>
    Number((await db.pool.query(`select count(*)::int as n from ${sql}`, params)).rows[0].n);
  const tmpFiles = () => readdirSync(join(directory, 'tmp'));
  // Every blob in files, however small (smallBlobBytes 0): the small ones have tests of their own below.
  const storeOn = (pool: Pool, dir: string | undefined) =>
    createBlobStore(pool, {
      keyStore: createFolderKeyStore(db.keys),
      chunkBytes: CHUNK,
      directory: dir,
      smallBlobBytes: 0,
    });

  before(async () => {
    db = await createTestDatabase();
    directory = mkdtempSync(join(tmpdir(), 'smgw-blob-files-'));
    store = storeOn(db.pool, directory);
  });
  after(async () => {
    await db.drop();
    rmSync(directory, { recursive: true, force: true });
  });

  for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 17, 13 * CHUNK]) {
    it(`gives back the identical bytes of ${size} bytes, from a file and a row without chunk rows`, async () => {
      const bytes = randomBytes(size);
      const ref = await store.put(Readable.from([bytes.subarray(0, 333), bytes.subarray(333)]), OF_MESSAGE);
      assert.equal(ref.size, size);
      assert.deepEqual(await store.readAll(ref.ref), bytes);
      assert.deepEqual(await buffer(store.open(ref.ref)), bytes);
      assert.deepEqual(await store.stat(ref.ref), ref);
      assert.equal(await count(`blobs where id = $1 and storage = 'files' and state = 'committed'`, [ref.ref]), 1);
      assert.equal(await count('blob_chunks where blob_id = $1', [ref.ref]), 0);
      const chunks = Math.max(1, Math.ceil(size / CHUNK));
      assert.equal(statSync(blobFilePath(directory, ref.ref)).size, size + chunks * (HEADER + TAG));
      assert.deepEqual(tmpFiles(), []);
    });
  }

  it('gives back the identical bytes from sources cut into uneven pieces, across every growth of the chunk buffer', async () => {
    // The default chunk size: the buffer a chunk is gathered in starts small and grows unzeroed (put-blob.ts), so
    // a byte it did not write would show here as a difference.
    const grown = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys), directory, smallBlobBytes: 0 });
    const KIB = 1024;
    for (const size of [16 * KIB + 1, 40 * KIB, 100 * KIB, 256 * KIB, 256 * KIB + 1, 600 * KIB]) {
      const bytes = randomBytes(size);
      const pieces: Buffer[] = [];
      for (let at = 0, n = 1; at < size; at += n, n = 1 + ((n * 7 + 13) % (40 * KIB)))
        pieces.push(bytes.subarray(at, at + n));
      const ref = await grown.put(Readable.from(pieces), OF_MESSAGE);
      assert.deepEqual(await grown.readAll(ref.ref), bytes, `${size} bytes`);
    }
  });

  it('reads a blob whose row was looked up by another statement from its file alone, asking the database nothing', async () => {
    const bytes = randomBytes(3 * CHUNK + 5);
    const ref = await store.put(Readable.from([bytes]), OF_MESSAGE);
    const { rows } = await db.pool.query(`select ${committedBlobColumn(1)} as blob`, [committedBlobParameter(ref.ref)]);
    const noDatabase = Object.assign(Object.create(db.pool) as Pool, {
      query: () => Promise.reject(new Error('no statement expected')),
    });
    const reader = storeOn(noDatabase, directory);
    assert.deepEqual(await buffer(reader.open(ref.ref, foundBlob(ref.ref, rows[0].blob))), bytes);
  });

  it('keeps the file and its folder to the gateway alone (0600, 0700)', async () => {
    const ref = await store.put(Readable.from([randomBytes(10)]), OF_MESSAGE);
    assert.equal(statSync(blobFilePath(directory, ref.ref)).mode & 0o777, 0o600);
    assert.equal(statSync(join(directory, 'tmp')).mode & 0o777, 0o700);
    assert.equal(statSync(join(directory, ref.ref.slice(0, 2))).mode & 0o777, 0o700);
  });

  it('writes no plaintext into the file', async () => {
    const secret = Buffer.from('Steuerbescheid 2026: Einkommen 48.213 EUR, IBAN DE02120300000000202051. '.repeat(40));
    const ref = await store.put(Readable.from([secret]), OF_MESSAGE);
    const file = readFileSync(blobFilePath(directory, ref.ref));
    assert.equal(file.includes(Buffer.from('Steuerbescheid')), false);
    assert.equal(file.includes(Buffer.from('DE02120300000000202051')), false);
    assert.deepEqual(await store.readAll(ref.ref), secret);
  });

  it('reads blobs written to the database before the switch, and refuses files without a folder', async () => {
    const inDatabase = storeOn(db.pool, undefined);
    const old = randomBytes(2500);
    const oldRef = await inDatabase.put(Readable.from([old]), OF_MESSAGE);
    assert.deepEqual(await store.readAll(oldRef.ref), old);
    const ref = await store.put(Readable.from([randomBytes(2500)]), OF_MESSAGE);
    await assert.rejects(inDatabase.readAll(ref.ref), (err) => {
      assert.ok(err instanceof BlobStorageError);
      assert.match(err.message, /SMGW_BLOB_DIR is not set/);
      return true;
    });
  });

  describe('a staged blob: its row committed by the caller, with rows of its own', () => {
    it('is not found until its row is committed and its file published, then reads back whole', async () => {
      const bytes = randomBytes(2 * CHUNK + 5);
      const staged = await store.stage(Readable.from([bytes]), OF_MESSAGE);
      assert.equal(staged.ref.size, bytes.length);
      assert.equal(await store.stat(staged.ref.ref), undefined, 'no row yet');
      assert.equal(existsSync(blobFilePath(directory, staged.ref.ref)), false, 'not in place yet');
      assert.deepEqual(tmpFiles(), [staged.ref.ref], 'written and synced in tmp/');
      // The caller's statement: the blob's row as a CTE, its parameters after the caller's own ($1).
      assert.equal(staged.rows.length, 1);
      const row = staged.rows[0]?.(2);
      assert.ok(row);
      assert.match(row.text, /\$2\b/);
      assert.doesNotMatch(row.text, /\$1\b/);
      await db.pool.query(`with blob as (${row.text}) select $1::text as mine`, ['mine', ...row.values]);
      await staged.publish();
      assert.deepEqual(await store.stat(staged.ref.ref), staged.ref);
      assert.deepEqual(await store.readAll(staged.ref.ref), bytes);
      assert.deepEqual(tmpFiles(), []);
    });

    it('goes to a file however small with smallBlobBytes 0, even empty', async () => {
      const staged = await store.stage(Readable.from([]), OF_MESSAGE);
      assert.equal(staged.rows.length, 1, 'the row only: the content is in the file');
      assert.deepEqual(tmpFiles(), [staged.ref.ref]);
      await staged.discard();
      assert.deepEqual(tmpFiles(), []);
    });

    it('leaves nothing behind when the caller discards it, before or after publishing', async () => {
      const before = await count('blobs');
      const dropped = await store.stage(Readable.from([randomBytes(10)]), OF_MESSAGE);
      await dropped.discard();
      assert.deepEqual(tmpFiles(), []);
      const late = await store.stage(Readable.from([randomBytes(10)]), OF_MESSAGE);
      await late.publish();
      await late.discard();
      assert.equal(existsSync(blobFilePath(directory, late.ref.ref)), false);
      assert.equal(await count('blobs'), before);
    });

    it('is committed at once in the database store, with nothing left to the caller', async () => {
      const inDatabase = storeOn(db.pool, undefined);
      const staged = await inDatabase.stage(Readable.from([randomBytes(10)]), OF_MESSAGE);
      assert.deepEqual(staged.rows, []);
      assert.equal((await inDatabase.stat(staged.ref.ref))?.size, 10);
    });
  });

  describe(`a small blob (at most SMALL_BLOB_BYTES, ${SMALL_BLOB_BYTES}): kept in the database all the same`, () => {
    // The default chunk size, so that a blob of SMALL_BLOB_BYTES is one chunk.
    const defaultStore = () => createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys), directory });
    const storageOf = async (ref: string) =>
      (await db.pool.query('select storage from blobs where id = $1', [ref])).rows[0]?.storage as string | undefined;

    it('puts one of SMALL_BLOB_BYTES as a row and one chunk, with no file; one byte more goes to a file', async () => {
      const store = defaultStore();
      const small = randomBytes(SMALL_BLOB_BYTES);
      const ref = await store.put(Readable.from([small]), OF_MESSAGE);
      assert.equal(await storageOf(ref.ref), 'database');
      assert.equal(await count('blob_chunks where blob_id = $1 and final', [ref.ref]), 1);
      assert.equal(existsSync(blobFilePath(directory, ref.ref)), false);
      assert.deepEqual(await store.readAll(ref.ref), small);
      assert.deepEqual(tmpFiles(), []);

      const larger = await store.put(Readable.from([randomBytes(SMALL_BLOB_BYTES + 1)]), OF_MESSAGE);
      assert.equal(await storageOf(larger.ref), 'files');
      assert.ok(existsSync(blobFilePath(directory, larger.ref)));
    });

    it('keeps no plaintext in its chunk row', async () => {
      const secret = Buffer.from('Bescheid vom 3. Mai: Nachzahlung 1.204,17 EUR, Aktenzeichen 41/0815-K. '.repeat(20));
      const ref = await defaultStore().put(Readable.from([secret]), OF_MESSAGE);
      const { rows } = await db.pool.query('select data from blob_chunks where blob_id = $1', [ref.ref]);
      assert.equal(rows.length, 1);
      assert.equal((rows[0].data as Buffer).includes(Buffer.from('Nachzahlung')), false);
    });

    it("staged: its row and chunk commit in the caller's statement, nothing before; no file at all", async () => {
      const store = defaultStore();
      const bytes = randomBytes(3000);
      const staged = await store.stage(Readable.from([bytes]), OF_MESSAGE);
      assert.equal(await store.stat(staged.ref.ref), undefined, 'no row yet');
      assert.deepEqual(tmpFiles(), []);
      assert.equal(staged.rows.length, 2, 'the row and its chunk');
      // Two CTEs after the caller's own parameter ($1), numbered on from $2; the chunk names the row inserted beside
      // it, which its foreign key finds at the end of the statement.
      const [row, chunk] = staged.rows;
      const first = row?.(2);
      const second = chunk?.(2 + (first?.values.length ?? 0));
      assert.ok(first && second);
      await db.pool.query(`with b as (${first.text}), c as (${second.text}) select $1::text as mine`, [
        'mine',
        ...first.values,
        ...second.values,
      ]);
      await staged.publish();
      assert.deepEqual(await store.stat(staged.ref.ref), staged.ref);
      assert.deepEqual(await store.readAll(staged.ref.ref), bytes);
      assert.equal(await storageOf(staged.ref.ref), 'database');
    });

    it("staged and never committed (the caller's statement failed): nothing is left", async () => {
      const before = await count('blobs');
      const staged = await defaultStore().stage(Readable.from([randomBytes(100)]), OF_MESSAGE);
      const [row, chunk] = staged.rows;
      const first = row?.(1);
      const second = chunk?.(1 + (first?.values.length ?? 0));
      assert.ok(first && second);
      await assert.rejects(
        db.pool.query(`with b as (${first.text}), c as (${second.text}) select 1 / 0`, [
          ...first.values,
          ...second.values,
        ]),
      );
      await staged.discard();
      assert.equal(await count('blobs'), before);
      assert.equal(await count('blob_chunks where blob_id = $1', [staged.ref.ref]), 0);
      assert.deepEqual(tmpFiles(), []);
    });
  });

  describe('anything changed or missing is an error, never a short end', () => {
    const corruptions: [string, (file: Buffer) => Buffer][] = [
      ['a byte of a chunk flipped', (f) => flip(f, HEADER + 10)],
      ['a byte of the last chunk flipped', (f) => flip(f, f.length - 3)],
      ['cut inside a chunk', (f) => f.subarray(0, f.length - 7)],
      ['cut inside a record header', (f) => f.subarray(0, 3 * (HEADER + CHUNK + TAG) + 2)],
      ['the final record dropped', (f) => f.subarray(0, 5 * (HEADER + CHUNK + TAG))],
      [
        'a middle record dropped',
        (f) => Buffer.concat([f.subarray(0, HEADER + CHUNK + TAG), f.subarray(2 * (HEADER + CHUNK + TAG))]),
      ],
      ['the final flag set on the first record', (f) => setByte(f, 4, 1)],
      ['the final flag cleared on the last record', (f) => setByte(f, 5 * (HEADER + CHUNK + TAG) + 4, 0)],
      ['an absurd record length', (f) => Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0]), f.subarray(HEADER)])],
      ['an unknown flag', (f) => setByte(f, 4, 7)],
      ['a record length beyond what is left of the blob', (f) => lengthOfFirstRecord(f, 1024 * 1024)],
      ['empty', () => Buffer.alloc(0)],
    ];
    for (const [name, corrupt] of corruptions) {
      it(`errors with BlobCorruptError when the file is ${name}`, async () => {
        const ref = await store.put(Readable.from([randomBytes(5 * CHUNK + 17)]), OF_MESSAGE);
        const path = blobFilePath(directory, ref.ref);
        writeFileSync(path, corrupt(readFileSync(path)));
        await assert.rejects(buffer(store.open(ref.ref)), BlobCorruptError);
      });
    }

    it("errors with BlobCorruptError when another blob's file is put in its place", async () => {
      const a = await store.put(Readable.from([randomBytes(2500)]), OF_MESSAGE);
      const b = await store.put(Readable.from([randomBytes(2500)]), OF_MESSAGE);
      writeFileSync(blobFilePath(directory, a.ref), readFileSync(blobFilePath(directory, b.ref)));
      await assert.rejects(store.readAll(a.ref), BlobCorruptError);
    });

    it('errors with BlobStorageError when the file is gone', async () => {
      const ref = await store.put(Readable.from([randomBytes(2500)]), OF_MESSAGE);
      rmSync(blobFilePath(directory, ref.ref));
      await assert.rejects(buffer(store.open(ref.ref)), BlobStorageError);
    });
  });

  describe('a put that fails leaves neither row nor file', () => {
    const nothingLeft = async (blobsBefore: number) => {
      assert.equal(await count('blobs'), blobsBefore);
      assert.deepEqual(tmpFiles(), []);
    };

    it('when the source errors midway', async () => {
      const before = await count('blobs');
      const source = new PassThrough();
      const put = store.put(source, OF_MESSAGE);
      source.write(randomBytes(3 * CHUNK));
      setImmediate(() => source.destroy(new Error('connection reset')));
      await assert.rejects(put, BlobSourceError);
      await nothingLeft(before);
    });

    it('when the source passes maxBytes', async () => {
      const before = await count('blobs');
      await assert.rejects(
        store.put(Readable.from([randomBytes(4 * CHUNK)]), { ...OF_MESSAGE, maxBytes: 2 * CHUNK }),
        BlobTooLargeError,
      );
      await nothingLeft(before);
    });

    it('when the database refuses the row (the file written and synced is removed)', async () => {
      const before = await count('blobs');
      const failingPool = {
        query: (query: unknown, values?: unknown[]) =>
          typeof query === 'object' && (query as { name?: string }).name === 'blob-store-file'
            ? Promise.reject(new Error('the database went away'))
            : db.pool.query(query as string, values),
      } as unknown as Pool;
      await assert.rejects(
        storeOn(failingPool, directory).put(Readable.from([randomBytes(3 * CHUNK)]), OF_MESSAGE),
        BlobStorageError,
      );
      await nothingLeft(before);
    });
  });

  describe('purges unlink the files with the rows, in one transaction', () => {
    it('collectUnreferencedBlobs removes rows and files of blobs no message refers to', async () => {
      const ref = await store.put(Readable.from([randomBytes(2500)]), { messageId: 'm-never-recorded' });
      const removed = await collectUnreferencedBlobs(db.pool, 0, blobFiles(directory));
      assert.ok(removed >= 1);
      assert.equal(await count('blobs where id = $1', [ref.ref]), 0);
      assert.equal(existsSync(blobFilePath(directory, ref.ref)), false);
    });

    it('fails and deletes nothing when files must go and no folder is given', async () => {
      const ref = await store.put(Readable.from([randomBytes(2500)]), { messageId: 'm-refused-a' });
      await assert.rejects(purgeBlobsOfMessages(db.pool, ['m-refused-a']), /SMGW_BLOB_DIR is not set/);
      assert.equal(await count('blobs where id = $1', [ref.ref]), 1);
      assert.equal(existsSync(blobFilePath(directory, ref.ref)), true);
    });

    it('keeps the rows when a file cannot be unlinked, and a file already gone is no error', async () => {
      const ref = await store.put(Readable.from([randomBytes(2500)]), { messageId: 'm-refused-b' });
      const failing = { remove: () => Promise.reject(new BlobStorageError('read-only file system')) };
      await assert.rejects(purgeBlobsOfMessages(db.pool, ['m-refused-b'], failing), /read-only/);
      assert.equal(await count('blobs where id = $1', [ref.ref]), 1);
      rmSync(blobFilePath(directory, ref.ref));
      const { blobs, bytes } = await purgeBlobsOfMessages(db.pool, ['m-refused-b'], blobFiles(directory));
      assert.deepEqual({ blobs, bytes }, { blobs: 1, bytes: 2500 });
      assert.equal(await count('blobs where id = $1', [ref.ref]), 0);
    });
  });

  it('sweeps files left in tmp/ by cut-short writes once older than the grace, and only those', async () => {
    const old = join(directory, 'tmp', 'a1b2c3d4-0000-4000-8000-000000000001');
    const young = join(directory, 'tmp', 'a1b2c3d4-0000-4000-8000-000000000002');
    writeFileSync(old, randomBytes(100));
    writeFileSync(young, randomBytes(100));
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(old, twoHoursAgo, twoHoursAgo);
    const kept = await store.put(Readable.from([randomBytes(100)]), OF_MESSAGE);
    assert.equal(await blobFiles(directory).countLeftovers(3_600_000), 1);
    assert.equal(tmpFiles().length, 2);
    assert.equal(await blobFiles(directory).sweepLeftovers(3_600_000), 1);
    assert.deepEqual(tmpFiles(), [young.split('/').pop()]);
    assert.equal(existsSync(blobFilePath(directory, kept.ref)), true);
    rmSync(young);
  });
});

function flip(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = (copy[at] ?? 0) ^ 0x01;
  return copy;
}

function setByte(bytes: Buffer, at: number, value: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = value;
  return copy;
}

describe('blobDirectorySpace (the smgw_blob_dir_* gauges)', () => {
  it('tells the free and total bytes of the folder’s file system, and fails for a folder that is not there', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'smgw-blob-space-'));
    try {
      const space = await blobDirectorySpace(folder);
      assert.ok(space.sizeBytes > 0);
      assert.ok(space.availableBytes >= 0 && space.availableBytes <= space.sizeBytes);
      await assert.rejects(blobDirectorySpace(join(folder, 'gone')), { code: 'ENOENT' });
    } finally {
      rmSync(folder, { recursive: true });
    }
  });
});

function lengthOfFirstRecord(bytes: Buffer, length: number): Buffer {
  const copy = Buffer.from(bytes);
  copy.writeUInt32BE(length, 0);
  return copy;
}
