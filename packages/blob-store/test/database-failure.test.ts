// Real database failures (no mocks): a constraint that refuses chunks, a purge racing an upload, a closed port.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  BlobStorageError,
  type BlobStore,
  createBlobStore,
  createFolderKeyStore,
  purgeAbandonedWrites,
} from '@smgw/blob-store';
import { createPool } from '@smgw/db';
import { createTestDatabase, type TestDatabase, waitFor } from '@smgw/testing';

const CHUNK = 1000;
const OF_MESSAGE = { messageId: 'm-database-failure' };

describe('blob store when the database fails', () => {
  let db: TestDatabase;
  let store: BlobStore;

  const count = async (sql: string): Promise<number> =>
    Number((await db.pool.query(`select count(*)::int as n from ${sql}`)).rows[0].n);

  before(async () => {
    db = await createTestDatabase();
    store = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys), chunkBytes: CHUNK });
  });
  after(async () => {
    await db.drop();
  });

  it('rejects with BlobStorageError and removes what it wrote when the database refuses a chunk', async () => {
    await db.pool.query('alter table blob_chunks add constraint refuse_fourth_chunk check (seq < 3)');
    try {
      const source = Readable.from([randomBytes(5 * CHUNK)]);
      await assert.rejects(store.put(source, OF_MESSAGE), (err: unknown) => {
        assert.ok(err instanceof BlobStorageError);
        assert.equal(err.code, 'BLOB_STORAGE_FAILED');
        assert.equal((err.cause as { code?: string }).code, '23514');
        return true;
      });
      assert.equal(source.destroyed, true);
      assert.equal(await count('blobs'), 0);
      assert.equal(await count('blob_chunks'), 0);
    } finally {
      await db.pool.query('alter table blob_chunks drop constraint refuse_fourth_chunk');
    }
  });

  it('rejects with BlobStorageError when its unfinished blob is purged as abandoned meanwhile', async () => {
    const source = new PassThrough();
    const put = store.put(source, OF_MESSAGE);
    source.write(randomBytes(2 * CHUNK + 1));
    await waitFor('two chunks written', async () => (await count('blob_chunks')) === 2);
    assert.equal(await purgeAbandonedWrites(db.pool, 0), 1);
    source.end(randomBytes(CHUNK));
    await assert.rejects(put, BlobStorageError);
    assert.equal(await count('blobs'), 0);
    assert.equal(await count('blob_chunks'), 0);
  });

  it('reports BlobStorageError from put, stat and open when PostgreSQL is unreachable', async () => {
    const unreachable = createPool({ url: 'postgres://postgres@127.0.0.1:1/smgw', max: 1 });
    try {
      const offline = createBlobStore(unreachable, { keyStore: createFolderKeyStore(db.keys) });
      const source = Readable.from([randomBytes(10)]);
      await assert.rejects(offline.put(source, OF_MESSAGE), BlobStorageError);
      assert.equal(source.destroyed, true);
      await assert.rejects(offline.stat(randomUUID()), BlobStorageError);
      await assert.rejects(offline.readAll(randomUUID()), BlobStorageError);
    } finally {
      await unreachable.end();
    }
  });
});
