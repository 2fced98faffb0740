// What is in the database is ciphertext only, and it reads back only as written: a chunk changed, moved, swapped in
// from another blob or dropped, or a blob cut short, fails the stream instead of ending it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { BlobCorruptError, type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { createTestDatabase, dumpHolds, dumpTestSchema, envelopeFixture, type TestDatabase } from '@smgw/testing';
import { recordMessage } from '@smgw/trace';

const CHUNK = 1000;
const OF_MESSAGE = { messageId: 'm-at-rest' };

describe('blob store: encryption at rest', () => {
  let db: TestDatabase;
  let store: BlobStore;

  before(async () => {
    db = await createTestDatabase();
    store = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys), chunkBytes: CHUNK });
  });
  after(async () => {
    await db.drop();
  });

  /** A stored blob of `chunks` full chunks and a bit. */
  async function stored(chunks = 5): Promise<{ ref: string; bytes: Buffer }> {
    const bytes = randomBytes(chunks * CHUNK + 10);
    return { ref: (await store.put(Readable.from([bytes]), OF_MESSAGE)).ref, bytes };
  }

  const chunk = async (ref: string, seq: number): Promise<Buffer> =>
    (await db.pool.query('select data from blob_chunks where blob_id = $1 and seq = $2', [ref, seq])).rows[0].data;
  const setChunk = (ref: string, seq: number, data: Buffer) =>
    db.pool.query('update blob_chunks set data = $3 where blob_id = $1 and seq = $2', [ref, seq, data]);

  const tamperings: [string, (ref: string) => Promise<unknown>][] = [
    [
      'one bit of a chunk flipped',
      async (ref) => {
        const data = await chunk(ref, 2);
        data[7] = (data[7] ?? 0) ^ 1;
        await setChunk(ref, 2, data);
      },
    ],
    [
      'two chunks swapped',
      async (ref) => {
        const [one, two] = [await chunk(ref, 1), await chunk(ref, 2)];
        await setChunk(ref, 1, two);
        await setChunk(ref, 2, one);
      },
    ],
    [
      'a chunk dropped and the rest moved up',
      async (ref) => {
        await db.pool.query('delete from blob_chunks where blob_id = $1 and seq = 1', [ref]);
        await db.pool.query('update blob_chunks set seq = seq - 1 where blob_id = $1 and seq > 1', [ref]);
      },
    ],
    [
      'cut short: the final chunk deleted',
      (ref) => db.pool.query('delete from blob_chunks where blob_id = $1 and final', [ref]),
    ],
    [
      'cut short: the final chunk deleted and the one before marked final',
      async (ref) => {
        await db.pool.query('delete from blob_chunks where blob_id = $1 and final', [ref]);
        await db.pool.query('update blob_chunks set final = true where blob_id = $1 and seq = 4', [ref]);
      },
    ],
    [
      "a chunk of another blob's put in its place",
      async (ref) => {
        const other = await stored();
        await setChunk(ref, 3, await chunk(other.ref, 3));
      },
    ],
    [
      "another blob's wrapped data key",
      async (ref) => {
        const other = await stored();
        await db.pool.query(
          'update blobs set wrapped_key = (select wrapped_key from blobs where id = $2) where id = $1',
          [ref, other.ref],
        );
      },
    ],
  ];
  for (const [name, tamper] of tamperings) {
    it(`fails to read a blob with ${name}`, async () => {
      const { ref } = await stored();
      await tamper(ref);
      await assert.rejects(store.readAll(ref), BlobCorruptError);
    });
  }

  it('errors a pipeline that consumes a truncated blob instead of ending it', async () => {
    const { ref } = await stored(8);
    await db.pool.query('delete from blob_chunks where blob_id = $1 and seq >= 6', [ref]);
    const sink = new PassThrough();
    sink.resume();
    let ended = false;
    sink.on('end', () => {
      ended = true;
    });
    await assert.rejects(pipeline(store.open(ref), sink), BlobCorruptError);
    assert.equal(ended, false);
  });

  it('pushes no byte of a chunk that does not authenticate', async () => {
    const { ref, bytes } = await stored(2);
    const data = await chunk(ref, 1);
    data[0] = (data[0] ?? 0) ^ 0xff;
    await setChunk(ref, 1, data);
    const received: Buffer[] = [];
    const stream = store.open(ref);
    stream.on('data', (piece: Buffer) => received.push(piece));
    const [err] = await once(stream, 'error');
    assert.ok(err instanceof BlobCorruptError);
    assert.ok(Buffer.concat(received).equals(bytes.subarray(0, CHUNK)), 'only the first, authentic chunk');
  });

  it('leaves no byte of a stored message in a dump of the database', async () => {
    const marker = `MARKER-${randomBytes(8).toString('hex')}`;
    const message = Buffer.from(
      `Subject: ${marker}\r\nFrom: a@behoerde.example\r\n\r\n${`${marker} Aktenzeichen\r\n`.repeat(400)}`,
    );
    const ref = await store.put(Readable.from([message]), { messageId: 'm-dump' });
    await recordMessage(db.pool, envelopeFixture({ id: 'm-dump', blob: ref }));
    assert.ok((await store.readAll(ref.ref)).equals(message));

    const dump = await dumpTestSchema(db);
    assert.ok(dump.includes(Buffer.from(ref.ref)), 'the dump holds the blob row');
    // bytea columns are dumped as hex: dumpHolds looks for the marker in both forms.
    assert.equal(dumpHolds(dump, marker), false, 'the dump holds the marker');
  });
});
