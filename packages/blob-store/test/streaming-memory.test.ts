// A 50 MB message must never sit whole in memory. Own file, so the test runner gives it its own process and the
// memory samples see only this test.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';

const BLOB_BYTES = 50 * 1024 * 1024;
const PIECE_BYTES = 64 * 1024;
const MAX_GROWTH_BYTES = 25 * 1024 * 1024;

// Without a collection before each sample, the samples would mostly count garbage (V8 lets tens of MB of spent
// Buffers pile up before it collects): we want what is *retained*, which a buffered blob would be.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** Memory that would hold the blob if it were buffered: JS heap plus Buffer/ArrayBuffer storage, after a GC. */
function memoryInUse(): number {
  collectGarbage();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

describe('blob store memory', () => {
  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
  });

  it('puts and reads back a 50 MB blob with memory growth well under its size', async (t) => {
    const store = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    const baseline = memoryInUse();
    let peak = baseline;
    const sample = () => {
      peak = Math.max(peak, memoryInUse());
    };

    // Generated lazily, one 64 KiB piece at a time, and hashed on the way out.
    const written = createHash('sha256');
    let generated = 0;
    const source = new Readable({
      read() {
        sample();
        if (generated >= BLOB_BYTES) {
          this.push(null);
          return;
        }
        const piece = randomBytes(Math.min(PIECE_BYTES, BLOB_BYTES - generated));
        generated += piece.length;
        written.update(piece);
        this.push(piece);
      },
    });
    const ref = await store.put(source, { messageId: 'm-fifty-megabytes' });
    const expectedSha256 = written.digest('hex');
    assert.equal(ref.size, BLOB_BYTES);

    const read = createHash('sha256');
    let readBytes = 0;
    for await (const piece of store.open(ref.ref)) {
      sample();
      read.update(piece as Buffer);
      readBytes += (piece as Buffer).length;
    }
    sample();
    assert.equal(readBytes, BLOB_BYTES);
    assert.equal(read.digest('hex'), expectedSha256);

    const growth = peak - baseline;
    assert.ok(growth < MAX_GROWTH_BYTES, `memory grew by ${(growth / 1048576).toFixed(1)} MiB for a 50 MiB blob`);
    // Visible in the test output, to watch the margin.
    t.diagnostic(`peak memory growth ${(growth / 1048576).toFixed(1)} MiB`);
  });
});
