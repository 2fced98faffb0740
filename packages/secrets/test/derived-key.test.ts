// keyFromMasterKey: one key per purpose, HKDF-SHA256 of the master key (never the master key itself).
import assert from 'node:assert/strict';
import { hkdfSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { keyFromMasterKey } from '../src/index.ts';

describe('keyFromMasterKey', () => {
  const master = Buffer.alloc(32, 5);

  it('is HKDF-SHA256 of the master key with the purpose as info: the same key for the same purpose', () => {
    const expected = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'smgw-portal-draft-token', 32));
    assert.deepEqual(keyFromMasterKey(master, 'smgw-portal-draft-token'), expected);
    assert.equal(keyFromMasterKey(master, 'a purpose').length, 32);
  });

  it('gives each purpose and each master key a key of its own, never the master key', () => {
    const keys = [
      keyFromMasterKey(master, 'one'),
      keyFromMasterKey(master, 'two'),
      keyFromMasterKey(Buffer.alloc(32, 6), 'one'),
      master,
    ].map((key) => key.toString('hex'));
    assert.equal(new Set(keys).size, keys.length);
  });
});
