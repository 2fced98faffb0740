// The folder key store: KEK files sealed under the master key, one KEK per period, retirement for good, and the
// master key rotated without losing a blob.
import assert from 'node:assert/strict';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  BlobKeyError,
  type BlobStore,
  collectUnreferencedBlobs,
  createBlobStore,
  createFolderKeyStore,
  retireUnusedKeks,
  rotateMasterKey,
} from '@smgw/blob-store';
import { KEY_FILE_TEMPORARIES, openSecret } from '@smgw/secrets';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';

const DAY_MS = 86_400_000;
const OF_MESSAGE = { messageId: 'm-key-store' };

describe('folder key store', () => {
  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
  });

  it('makes one KEK per period, in a file of mode 0600 that holds no key in clear', async () => {
    const keys = createFolderKeyStore(db.keys);
    const morning = new Date('2031-05-01T08:00:00Z');
    const first = await keys.current(morning);
    assert.deepEqual(await keys.current(new Date('2031-05-01T23:59:59Z')), first);
    const nextDay = await keys.current(new Date('2031-05-02T00:00:00Z'));
    assert.notEqual(nextDay.id, first.id);
    assert.match(first.id, /^20310501T000000Z-[0-9a-f]{8}$/);

    const file = join(db.keys.keyStoreDir, `${first.id}.kek`);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const sealed = await readFile(file);
    assert.equal(sealed.includes(first.key), false);
    assert.ok(openSecret(db.keys.masterKey, sealed, { aad: `smgw-kek:${first.id}` }).equals(first.key));
    // Another process (a store of its own) finds the same KEK instead of making one.
    assert.deepEqual(await createFolderKeyStore(db.keys).current(morning), first);
    assert.deepEqual(
      (await readdir(db.keys.keyStoreDir)).filter((n) => n.startsWith('.')),
      [KEY_FILE_TEMPORARIES],
      'no temp files',
    );
    assert.deepEqual(await readdir(join(db.keys.keyStoreDir, KEY_FILE_TEMPORARIES)), [], 'no temp files');
  });

  it('settles on one KEK when several processes make the first of a period at once', async () => {
    const at = new Date('2031-06-01T12:00:00Z');
    const stores = Array.from({ length: 6 }, () => createFolderKeyStore(db.keys));
    await Promise.all(stores.map((s) => s.current(at)));
    // Whatever each made, a store asking afresh gets the smallest id of the period; all of them stay readable.
    const chosen = await createFolderKeyStore(db.keys).current(at);
    const ofPeriod = (await stores[0]?.list())?.filter((k) => k.id.startsWith('20310601')) ?? [];
    assert.equal(chosen.id, ofPeriod[0]?.id);
    for (const k of ofPeriod) assert.ok(await createFolderKeyStore(db.keys).get(k.id));
  });

  it('answers undefined for an unknown or malformed id, and retires a KEK for good', async () => {
    const keys = createFolderKeyStore(db.keys);
    assert.equal(await keys.get('20310101T000000Z-00000000'), undefined);
    assert.equal(await keys.get('../../etc/passwd'), undefined);
    const kek = await keys.current(new Date('2031-07-01T00:00:00Z'));
    await keys.retire(kek.id);
    await keys.retire(kek.id);
    assert.equal(await keys.get(kek.id), undefined);
    assert.equal(await createFolderKeyStore(db.keys).get(kek.id), undefined);
  });

  it('retires with a KEK the copy of its file that a crash of its write left in the folder', async () => {
    // writeKeyFile links a temporary into place and unlinks it after: killed in between, the temporary stays, the
    // same KEK sealed under the master key. Retirement must leave no file in the folder that opens as that KEK.
    const keys = createFolderKeyStore(db.keys);
    const kek = await keys.current(new Date('2031-08-01T00:00:00Z'));
    const leftover = join(db.keys.keyStoreDir, KEY_FILE_TEMPORARIES, `${kek.id}.kek.0123456789ab.tmp`);
    await copyFile(join(db.keys.keyStoreDir, `${kek.id}.kek`), leftover);
    assert.ok(
      openSecret(db.keys.masterKey, await readFile(leftover), { aad: `smgw-kek:${kek.id}` }).equals(kek.key),
      'the leftover opens as the KEK',
    );
    await keys.retire(kek.id);
    for (const folder of [db.keys.keyStoreDir, join(db.keys.keyStoreDir, KEY_FILE_TEMPORARIES)]) {
      assert.deepEqual(
        (await readdir(folder)).filter((name) => name.includes(kek.id)),
        [],
        'nothing of the retired KEK stays',
      );
    }
  });

  it('refuses a KEK file sealed under another master key', async () => {
    const kek = await createFolderKeyStore(db.keys).current(new Date('2031-08-01T00:00:00Z'));
    const stranger = createFolderKeyStore({ ...db.keys, masterKey: randomBytes(32) });
    await assert.rejects(stranger.get(kek.id), (err: unknown) => {
      assert.ok(err instanceof BlobKeyError);
      assert.equal(err.code, 'KEY_STORE_SEALED');
      return true;
    });
  });
});

describe('retiring a KEK', () => {
  let db: TestDatabase;
  let store: BlobStore;

  before(async () => {
    db = await createTestDatabase();
    store = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys), chunkBytes: 1000 });
  });
  after(async () => {
    await db.drop();
  });

  it('leaves a dump taken before the retirement unreadable with the master key and the key store', async () => {
    const bytes = randomBytes(3500);
    const ref = await store.put(Readable.from([bytes]), OF_MESSAGE);
    // The "dump": every row of the blob as it was.
    const [blobRow] = (await db.pool.query('select * from blobs where id = $1', [ref.ref])).rows;
    const chunkRows = (await db.pool.query('select * from blob_chunks where blob_id = $1 order by seq', [ref.ref]))
      .rows;
    const kekId: string = blobRow.kek_id;

    // Nothing refers to the blob (no message row): garbage collection removes it, then its KEK can go.
    assert.equal(await collectUnreferencedBlobs(db.pool, 0), 1);
    const later = new Date(Date.now() + 3 * DAY_MS);
    assert.deepEqual(
      await retireUnusedKeks(db.pool, createFolderKeyStore(db.keys), { kekPeriod: DAY_MS, now: later }),
      [kekId],
    );

    // The dump restored into the database does not read: its KEK is gone.
    await db.pool.query(
      `insert into blobs (id, digest, size, state, created_at, committed_at, message_id, kek_id, wrapped_key)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        blobRow.id,
        blobRow.digest,
        blobRow.size,
        blobRow.state,
        blobRow.created_at,
        blobRow.committed_at,
        blobRow.message_id,
        blobRow.kek_id,
        blobRow.wrapped_key,
      ],
    );
    for (const row of chunkRows) {
      await db.pool.query('insert into blob_chunks (blob_id, seq, data, final) values ($1, $2, $3, $4)', [
        row.blob_id,
        row.seq,
        row.data,
        row.final,
      ]);
    }
    const fresh = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    await assert.rejects(fresh.readAll(ref.ref), (err: unknown) => {
      assert.ok(err instanceof BlobKeyError);
      assert.equal(err.code, 'BLOB_KEY_RETIRED');
      return true;
    });
    // Nor does any KEK that is left (opened with the master key) unwrap its data key.
    const left = createFolderKeyStore(db.keys);
    for (const { id } of await left.list()) {
      const kek = await left.get(id);
      assert.ok(kek);
      const wrapped: Buffer = blobRow.wrapped_key;
      const unwrap = createDecipheriv('aes-256-gcm', kek.key, wrapped.subarray(0, 12));
      unwrap.setAAD(Buffer.from(`smgw-blob-v1:key:${blobRow.id}:${kekId}`));
      unwrap.setAuthTag(wrapped.subarray(wrapped.length - 16));
      unwrap.update(wrapped.subarray(12, wrapped.length - 16));
      assert.throws(() => unwrap.final());
    }
  });

  it('keeps a KEK while a blob names it, and the KEKs of the current and the previous period', async () => {
    const keyStore = createFolderKeyStore(db.keys);
    const ref = await store.put(Readable.from([randomBytes(10)]), OF_MESSAGE);
    const kekId = (await db.pool.query('select kek_id from blobs where id = $1', [ref.ref])).rows[0].kek_id;
    const later = new Date(Date.now() + 3 * DAY_MS);
    assert.deepEqual(await retireUnusedKeks(db.pool, keyStore, { kekPeriod: DAY_MS, now: later }), []);
    assert.ok(await keyStore.get(kekId));

    await db.pool.query('delete from blobs where id = $1', [ref.ref]);
    assert.deepEqual(
      await retireUnusedKeks(db.pool, keyStore, { kekPeriod: DAY_MS, now: new Date(Date.now() + DAY_MS) }),
      [],
    );
    assert.deepEqual(await retireUnusedKeks(db.pool, keyStore, { kekPeriod: DAY_MS, now: later }), [kekId]);
  });
});

describe('master key rotation', () => {
  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
  });

  it('re-seals every KEK file under the new key: blobs stay readable, the old key opens no file', async () => {
    const oldKey = db.keys.masterKey;
    const newKey = randomBytes(32);
    const before = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    const bytes = randomBytes(5000);
    const ref = await before.put(Readable.from([bytes]), OF_MESSAGE);
    await createFolderKeyStore(db.keys).current(new Date('2031-01-01T00:00:00Z'));

    // Services already run with the new key and the old one as previous: they read throughout.
    const during = createBlobStore(db.pool, {
      keyStore: createFolderKeyStore({ ...db.keys, masterKey: newKey, masterKeyPrevious: oldKey }),
    });
    assert.ok((await during.readAll(ref.ref)).equals(bytes));

    const rotation = { pool: db.pool, keyStoreDir: db.keys.keyStoreDir, from: oldKey, to: newKey };
    assert.deepEqual(await rotateMasterKey(rotation), { resealed: 2, alreadyCurrent: 0, retiredMeanwhile: 0 });
    assert.deepEqual(await rotateMasterKey(rotation), { resealed: 0, alreadyCurrent: 2, retiredMeanwhile: 0 });

    const after = createBlobStore(db.pool, { keyStore: createFolderKeyStore({ ...db.keys, masterKey: newKey }) });
    assert.ok((await after.readAll(ref.ref)).equals(bytes));
    const stale = createBlobStore(db.pool, { keyStore: createFolderKeyStore(db.keys) });
    await assert.rejects(stale.readAll(ref.ref), (err: unknown) => {
      assert.ok(err instanceof BlobKeyError);
      assert.equal(err.code, 'KEY_STORE_SEALED');
      return true;
    });
    for (const name of (await readdir(db.keys.keyStoreDir)).filter((n) => n.endsWith('.kek'))) {
      const file = join(db.keys.keyStoreDir, name);
      assert.equal((await stat(file)).mode & 0o777, 0o600, name);
      const sealedFile = await readFile(file);
      const aad = `smgw-kek:${name.replace(/\.kek$/, '')}`;
      assert.throws(() => openSecret(oldKey, sealedFile, { aad }), { code: 'SECRET_WRONG_MASTER_KEY' });
      assert.ok(openSecret(newKey, sealedFile, { aad }));
    }
  });
});

// A rotation reads a KEK file, re-seals it and renames the copy over the file. A retirement that unlinked the file in
// between (the reaper's keks sweep) would see it come back, under the new master key: what it protected readable again
// from an older dump. The rotation's seam `beforeWrite` runs the retirement in exactly that window.
describe('a master key rotation racing a KEK retirement', () => {
  let db: TestDatabase;
  const newKey = randomBytes(32);

  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
  });

  it('does not bring back a KEK retired between its read and its re-sealed write', async () => {
    const oldKey = db.keys.masterKey;
    const old = await createFolderKeyStore(db.keys).current(new Date(Date.now() - 10 * DAY_MS));
    const live = await createFolderKeyStore(db.keys).current();
    // The reaper, like every service during a rotation, reads under the new key and the old one.
    const reaperKeys = () => createFolderKeyStore({ ...db.keys, masterKey: newKey, masterKeyPrevious: oldKey });
    let retired: string[] = [];

    const result = await rotateMasterKey({
      pool: db.pool,
      keyStoreDir: db.keys.keyStoreDir,
      from: oldKey,
      to: newKey,
      beforeWrite: async (id) => {
        if (id === old.id) retired = await retireUnusedKeks(db.pool, reaperKeys(), { kekPeriod: DAY_MS });
      },
    });

    assert.deepEqual(retired, [old.id], 'the keks sweep retired the old KEK while the rotation had it');
    assert.deepEqual(
      (await readdir(db.keys.keyStoreDir)).filter((n) => n.endsWith('.kek')),
      [`${live.id}.kek`],
      'the retired KEK stays gone',
    );
    assert.equal(await reaperKeys().get(old.id), undefined);
    assert.deepEqual(result, { resealed: 1, alreadyCurrent: 0, retiredMeanwhile: 1 });
    assert.ok((await createFolderKeyStore({ ...db.keys, masterKey: newKey }).get(live.id))?.key.equals(live.key));
  });

  it('removes a re-sealed KEK whose retirement was recorded but not yet carried out', async () => {
    const oldKey = db.keys.masterKey;
    const old = await createFolderKeyStore(db.keys).current(new Date(Date.now() - 20 * DAY_MS));
    // A retirement recorded in the database whose unlink is still to come (or crashed before it).
    const result = await rotateMasterKey({
      pool: db.pool,
      keyStoreDir: db.keys.keyStoreDir,
      from: oldKey,
      to: newKey,
      beforeWrite: async (id) => {
        if (id === old.id) await db.pool.query('insert into retired_keks (id) values ($1)', [id]);
      },
    });
    assert.equal(result.retiredMeanwhile, 1);
    assert.equal(await createFolderKeyStore({ ...db.keys, masterKey: newKey }).get(old.id), undefined);
  });
});

describe('a KEK is never retired under a blob still being written', () => {
  let db: TestDatabase;
  let directory: string;

  before(async () => {
    db = await createTestDatabase();
    directory = await mkdtemp(join(tmpdir(), 'smgw-kek-write-'));
  });
  after(async () => {
    await db.drop();
    await rm(directory, { recursive: true, force: true });
  });

  // A blob in files names its KEK only when its row commits, after the whole source was read. Keyed at the start, a
  // write slower than two KEK periods (a slow SMTP client) left its KEK named by no row: the keks sweep retired it and
  // the row then committed unreadable, after a 250. Now the data key is wrapped when the file is written.
  for (const how of ['stage', 'put'] as const) {
    it(`keeps a blob readable whose write (${how}) outlasts two KEK periods while the keks sweep runs`, async () => {
      const folderKeys = createFolderKeyStore(db.keys);
      let clock = new Date();
      const keyStore = { ...folderKeys, current: (now?: Date) => folderKeys.current(now ?? clock) };
      const store = createBlobStore(db.pool, { keyStore, directory });
      let resume = () => {};
      const paused = new Promise<void>((resolve) => {
        resume = resolve;
      });
      let firstRead = () => {};
      const started = new Promise<void>((resolve) => {
        firstRead = resolve;
      });
      async function* slowClient() {
        yield randomBytes(300 * 1024);
        firstRead();
        await paused;
        yield randomBytes(10 * 1024);
      }
      const writing =
        how === 'stage'
          ? store.stage(slowClient(), OF_MESSAGE)
          : store.put(slowClient(), OF_MESSAGE).then((ref) => ({ ref, rows: [], publish: async () => {} }));
      await started;
      const atStart = await folderKeys.current(clock);
      clock = new Date(clock.getTime() + 3 * DAY_MS);
      const retired = await retireUnusedKeks(db.pool, folderKeys, { kekPeriod: DAY_MS, now: clock });
      assert.ok(retired.includes(atStart.id), 'the KEK of the write’s start was named by no row and retired');
      resume();
      const staged = await writing;
      for (const row of staged.rows) {
        const { text, values } = row(1);
        await db.pool.query(text, values);
      }
      await staged.publish();
      assert.equal((await store.readAll(staged.ref.ref)).length, 310 * 1024);
    });
  }
});
