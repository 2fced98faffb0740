import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deleteKeyFile, readKeyFile, writeKeyFile } from '../src/index.ts';

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
    assert.deepEqual(await readdir(join(root, 'made')), ['a.key']);
  });

  it('never overwrites on create; replace does', async () => {
    const file = join(root, 'b.key');
    await writeKeyFile(file, Buffer.from('first'), 'create');
    await assert.rejects(writeKeyFile(file, Buffer.from('second'), 'create'), { code: 'EEXIST' });
    assert.deepEqual(await readKeyFile(file), Buffer.from('first'));
    await writeKeyFile(file, Buffer.from('third'), 'replace');
    assert.deepEqual(await readKeyFile(file), Buffer.from('third'));
    assert.deepEqual((await readdir(root)).sort(), ['b.key', 'made']);
  });

  it('reads a missing file as undefined and deletes idempotently', async () => {
    const file = join(root, 'c.key');
    assert.equal(await readKeyFile(file), undefined);
    await writeKeyFile(file, Buffer.from('gone soon'), 'create');
    await deleteKeyFile(file);
    await deleteKeyFile(file);
    assert.equal(await readKeyFile(file), undefined);
  });
});
