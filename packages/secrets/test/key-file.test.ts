import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deleteKeyFile, KEY_FILE_TEMPORARIES, readKeyFile, writeKeyFile } from '../src/index.ts';

describe('key files', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'smgw-key-file-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('creates the folder and a file of mode 0600, leaving no temporary file', async () => {
    const file = join(root, 'made', 'a.key');
    await writeKeyFile(file, Buffer.from('one'), 'create');
    assert.deepEqual(await readKeyFile(file), Buffer.from('one'));
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual((await readdir(join(root, 'made'))).sort(), [KEY_FILE_TEMPORARIES, 'a.key']);
  });

  it('never overwrites on create; replace does', async () => {
    const file = join(root, 'b.key');
    await writeKeyFile(file, Buffer.from('first'), 'create');
    await assert.rejects(writeKeyFile(file, Buffer.from('second'), 'create'), { code: 'EEXIST' });
    assert.deepEqual(await readKeyFile(file), Buffer.from('first'));
    await writeKeyFile(file, Buffer.from('third'), 'replace');
    assert.deepEqual(await readKeyFile(file), Buffer.from('third'));
    assert.deepEqual((await readdir(root)).sort(), [KEY_FILE_TEMPORARIES, 'b.key', 'made']);
  });

  it('reads a missing file as undefined and deletes idempotently', async () => {
    const file = join(root, 'c.key');
    assert.equal(await readKeyFile(file), undefined);
    await writeKeyFile(file, Buffer.from('gone soon'), 'create');
    await deleteKeyFile(file);
    await deleteKeyFile(file);
    assert.equal(await readKeyFile(file), undefined);
  });

  it('leaves no temporary file behind when the write fails', async () => {
    const file = join(root, 'failing', 'd.key');
    // A non-empty folder where the file should be: the rename over it fails.
    await mkdir(join(file, 'inside'), { recursive: true });
    await assert.rejects(writeKeyFile(file, Buffer.from('sealed key'), 'replace'));
    assert.deepEqual(await readdir(join(root, 'failing', KEY_FILE_TEMPORARIES)), []);
  });

  it('writes its temporaries apart from the keys, and leaves none', async () => {
    const folder = join(root, 'apart');
    await writeKeyFile(join(folder, 'g.key'), Buffer.from('sealed g'), 'create');
    await writeKeyFile(join(folder, 'g.key'), Buffer.from('sealed g again'), 'replace');
    assert.deepEqual((await readdir(folder)).sort(), [KEY_FILE_TEMPORARIES, 'g.key']);
    assert.deepEqual(await readdir(join(folder, KEY_FILE_TEMPORARIES)), []);
  });

  it('deletes with the file the temporaries of it that a crash left, and no other file', async () => {
    // A crash between the link and the unlink of a create (or before the rename of a replace) leaves a temporary
    // holding the same sealed key: deleting the key must not leave that copy.
    const folder = join(root, 'crashed');
    const temporaries = join(folder, KEY_FILE_TEMPORARIES);
    const file = join(folder, 'e.key');
    await writeKeyFile(file, Buffer.from('sealed e'), 'create');
    await copyFile(file, join(temporaries, 'e.key.0123456789ab.tmp'));
    await writeKeyFile(join(folder, 'f.key'), Buffer.from('sealed f'), 'create');
    await writeFile(join(temporaries, 'f.key.0123456789ab.tmp'), 'sealed f');
    await writeFile(join(temporaries, 'e.key.notes'), 'not a temporary of ours');
    await deleteKeyFile(file);
    assert.deepEqual((await readdir(folder)).sort(), [KEY_FILE_TEMPORARIES, 'f.key']);
    assert.deepEqual((await readdir(temporaries)).sort(), ['e.key.notes', 'f.key.0123456789ab.tmp']);
    // Also when the file itself is gone already (a crash after its unlink).
    await copyFile(join(folder, 'f.key'), join(temporaries, 'e.key.ba9876543210.tmp'));
    await deleteKeyFile(file);
    assert.deepEqual((await readdir(temporaries)).sort(), ['e.key.notes', 'f.key.0123456789ab.tmp']);
  });
});
