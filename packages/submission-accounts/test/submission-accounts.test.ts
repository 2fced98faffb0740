import assert from 'node:assert/strict';
import { argon2 } from 'node:crypto';
import { describe, it } from 'node:test';
import { hashPassword, verifyPassword } from '../src/index.ts';

describe('argon2id password hashes', () => {
  it('node:crypto has argon2 (Node 24.7+)', () => {
    assert.equal(typeof argon2, 'function');
  });

  it('round-trips: the right password verifies, a wrong one does not', async () => {
    const phc = await hashPassword('correct horse battery staple');
    assert.match(phc, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    assert.equal(await verifyPassword('correct horse battery staple', phc), true);
    assert.equal(await verifyPassword('correct horse battery stapl', phc), false);
    assert.equal(await verifyPassword('', phc), false);
  });

  it('salts every hash differently', async () => {
    assert.notEqual(await hashPassword('same password'), await hashPassword('same password'));
  });

  it('never verifies against a malformed or unreasonable hash', async () => {
    const phc = await hashPassword('password1234');
    for (const bad of [
      '',
      'plaintext',
      phc.replace('argon2id', 'argon2i'),
      phc.replace('m=19456', 'm=99999999'),
      phc.replace('t=2', 't=0'),
      phc.replace('v=19', 'v=16'),
    ]) {
      assert.equal(await verifyPassword('password1234', bad), false, bad);
    }
  });
});
