// readingOnce: a stage that opens one small blob several times reads it from the database once.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { type BlobStore, createBlobStore, createFolderKeyStore, readingOnce } from '../src/index.ts';

describe('readingOnce', () => {
  let db: TestDatabase;
  let store: BlobStore;
  let reads: string[];
  let counted: BlobStore;

  before(async () => {
    db = await createTestDatabase();
    store = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    reads = [];
    counted = {
      ...store,
      open: (ref) => {
        reads.push(ref);
        return store.open(ref);
      },
      readAll: (ref) => {
        reads.push(ref);
        return store.readAll(ref);
      },
    };
  });
  after(async () => {
    await db.drop();
  });

  it('reads the blob once however often it is opened, and passes other blobs through', async () => {
    const message = Buffer.from('Subject: once\r\n\r\nbody\r\n');
    const blob = await store.put(Readable.from([message]), { messageId: 'm-once' });
    const other = await store.put(Readable.from([Buffer.from('other')]), { messageId: 'm-other' });
    reads.length = 0;
    const once = readingOnce(counted, blob, 1024);
    assert.deepEqual(await buffer(once.open(blob.ref)), message);
    assert.deepEqual(await buffer(once.open(blob.ref)), message);
    assert.deepEqual(await once.readAll(blob.ref), message);
    assert.deepEqual(await buffer(once.open(other.ref)), Buffer.from('other'));
    assert.deepEqual(reads, [blob.ref, other.ref]);
  });

  it('streams a blob over the limit on every open', async () => {
    const blob = await store.put(Readable.from([Buffer.alloc(2048, 'x')]), { messageId: 'm-big' });
    reads.length = 0;
    const once = readingOnce(counted, blob, 1024);
    await buffer(once.open(blob.ref));
    await buffer(once.open(blob.ref));
    assert.deepEqual(reads, [blob.ref, blob.ref]);
  });

  it('fails every open with the error of the one read, never ends one early', async () => {
    const blob = await store.put(Readable.from([Buffer.from('to be cut')]), { messageId: 'm-cut' });
    await db.pool.query('delete from blob_chunks where blob_id = $1', [blob.ref]);
    const once = readingOnce(store, blob, 1024);
    await assert.rejects(buffer(once.open(blob.ref)), { name: 'BlobCorruptError' });
    await assert.rejects(buffer(once.open(blob.ref)), { name: 'BlobCorruptError' });
  });
});
