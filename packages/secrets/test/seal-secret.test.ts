import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  isSealedUnder,
  masterKeyId,
  openSecret,
  openSecretWithAny,
  resealSecret,
  SecretError,
  sealSecret,
} from '../src/index.ts';

const masterKey = randomBytes(32);
const aad = 'amt@behoerde.example|0123ABCD';
const plaintext = Buffer.from('-----BEGIN PRIVATE KEY-----\nnot really a key\n-----END PRIVATE KEY-----\n');

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof SecretError, `expected a SecretError, got ${String(error)}`);
    return error.code;
  }
  assert.fail('expected an error');
}

describe('sealSecret and openSecret', () => {
  it('gives back the plaintext with the same master key and aad', () => {
    const sealed = sealSecret(masterKey, plaintext, { aad });
    assert.deepEqual(openSecret(masterKey, sealed, { aad }), plaintext);
  });

  it('round-trips an empty secret and binary aad', () => {
    const binaryAad = randomBytes(20);
    const sealed = sealSecret(masterKey, Buffer.alloc(0), { aad: binaryAad });
    assert.equal(openSecret(masterKey, sealed, { aad: binaryAad }).length, 0);
  });

  it('writes the version and the master key id first and never the plaintext', () => {
    const sealed = sealSecret(masterKey, plaintext, { aad });
    assert.equal(sealed[0], 1);
    assert.deepEqual(sealed.subarray(1, 9), masterKeyId(masterKey));
    assert.equal(sealed.includes(plaintext), false);
    assert.equal(sealed.includes(Buffer.from('PRIVATE KEY')), false);
  });

  it('seals the same plaintext differently every time', () => {
    assert.notDeepEqual(sealSecret(masterKey, plaintext, { aad }), sealSecret(masterKey, plaintext, { aad }));
  });

  it('refuses a sealed value changed at any byte', () => {
    const sealed = sealSecret(masterKey, plaintext, { aad });
    for (let i = 0; i < sealed.length; i++) {
      const changed = Buffer.from(sealed);
      changed[i] = (changed[i] as number) ^ 0x01;
      const code = codeOf(() => openSecret(masterKey, changed, { aad }));
      const expected = i === 0 ? 'SECRET_MALFORMED' : i < 9 ? 'SECRET_WRONG_MASTER_KEY' : 'SECRET_TAMPERED';
      assert.equal(code, expected, `byte ${i}`);
    }
  });

  it('refuses a truncated or extended sealed value', () => {
    const sealed = sealSecret(masterKey, plaintext, { aad });
    assert.equal(
      codeOf(() => openSecret(masterKey, sealed.subarray(0, sealed.length - 1), { aad })),
      'SECRET_TAMPERED',
    );
    assert.equal(
      codeOf(() => openSecret(masterKey, Buffer.concat([sealed, Buffer.of(0)]), { aad })),
      'SECRET_TAMPERED',
    );
    assert.equal(
      codeOf(() => openSecret(masterKey, sealed.subarray(0, 40), { aad })),
      'SECRET_MALFORMED',
    );
  });

  it('refuses another master key with SECRET_WRONG_MASTER_KEY', () => {
    const sealed = sealSecret(masterKey, plaintext, { aad });
    assert.equal(
      codeOf(() => openSecret(randomBytes(32), sealed, { aad })),
      'SECRET_WRONG_MASTER_KEY',
    );
  });

  it('refuses another aad with SECRET_TAMPERED', () => {
    const sealed = sealSecret(masterKey, plaintext, { aad });
    assert.equal(
      codeOf(() => openSecret(masterKey, sealed, { aad: `${aad}x` })),
      'SECRET_TAMPERED',
    );
    assert.equal(
      codeOf(() => openSecret(masterKey, sealed, { aad: '' })),
      'SECRET_TAMPERED',
    );
  });

  it('refuses a master key that is not 32 bytes', () => {
    assert.equal(
      codeOf(() => sealSecret(randomBytes(16), plaintext, { aad })),
      'SECRET_BAD_MASTER_KEY',
    );
  });

  it('opens with whichever key of a ring it was sealed under, and re-seals under a new one for the same aad', () => {
    const previous = randomBytes(32);
    const sealed = sealSecret(previous, plaintext, { aad });
    assert.ok(isSealedUnder(previous, sealed));
    assert.ok(!isSealedUnder(masterKey, sealed));
    assert.deepEqual(openSecretWithAny([masterKey, previous], sealed, { aad }), plaintext);
    assert.equal(
      codeOf(() => openSecretWithAny([masterKey], sealed, { aad })),
      'SECRET_WRONG_MASTER_KEY',
    );
    const again = resealSecret(previous, masterKey, sealed, { aad });
    assert.ok(isSealedUnder(masterKey, again));
    assert.deepEqual(openSecret(masterKey, again, { aad }), plaintext);
    assert.equal(
      codeOf(() => resealSecret(previous, masterKey, sealed, { aad: 'another' })),
      'SECRET_TAMPERED',
    );
  });
});
