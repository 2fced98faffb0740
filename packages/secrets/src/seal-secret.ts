// Envelope encryption of secrets at rest (ARCHITECTURE.md "Secrets at rest"): each secret gets its own random
// 32-byte data key; the data key is wrapped under the master key (SMGW_MASTER_KEY). Both layers are AES-256-GCM
// and both are bound to the caller's `aad` (what the secret belongs to), so a sealed value copied to another row
// does not open there.
//
// Layout (version 1), all lengths fixed except the ciphertext:
//   version(1) | masterKeyId(8) | wrapIv(12) | wrappedDataKey(32) | wrapTag(16) | dataIv(12) | dataTag(16) | ciphertext
// masterKeyId = the first 8 bytes of SHA-256(master key): tells "sealed under another master key" from tampering.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { SecretError } from './errors.ts';

export const SEALED_VERSION = 1;
const KEY_BYTES = 32;
const KEY_ID_BYTES = 8;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + KEY_ID_BYTES;
const WRAP_END = HEADER_BYTES + IV_BYTES + KEY_BYTES + TAG_BYTES;
const DATA_START = WRAP_END + IV_BYTES + TAG_BYTES;

export interface SealOptions {
  /** What the secret belongs to (e.g. address + fingerprint); the same bytes are needed to open it. */
  aad: Uint8Array | string;
}

/** The id of a master key as written into every sealed value (not secret: a truncated SHA-256). */
export function masterKeyId(masterKey: Uint8Array): Buffer {
  return createHash('sha256').update(masterKey).digest().subarray(0, KEY_ID_BYTES);
}

function checkMasterKey(masterKey: Uint8Array): void {
  if (masterKey.byteLength !== KEY_BYTES) {
    throw new SecretError('SECRET_BAD_MASTER_KEY', `the master key must be ${KEY_BYTES} bytes`);
  }
}

const aadBytes = (aad: Uint8Array | string): Buffer =>
  typeof aad === 'string' ? Buffer.from(aad, 'utf8') : Buffer.from(aad);

/** Seals `plaintext` under `masterKey`; the result describes itself (version, key id) and is safe to store. */
export function sealSecret(masterKey: Uint8Array, plaintext: Uint8Array, options: SealOptions): Buffer {
  checkMasterKey(masterKey);
  const aad = aadBytes(options.aad);
  const header = Buffer.concat([Buffer.of(SEALED_VERSION), masterKeyId(masterKey)]);
  const dataKey = randomBytes(KEY_BYTES);
  try {
    const wrapIv = randomBytes(IV_BYTES);
    const wrap = createCipheriv('aes-256-gcm', masterKey, wrapIv);
    wrap.setAAD(Buffer.concat([header, aad]));
    const wrapped = Buffer.concat([wrap.update(dataKey), wrap.final()]);
    const wrapSection = Buffer.concat([header, wrapIv, wrapped, wrap.getAuthTag()]);

    const dataIv = randomBytes(IV_BYTES);
    const data = createCipheriv('aes-256-gcm', dataKey, dataIv);
    data.setAAD(Buffer.concat([wrapSection, aad]));
    const ciphertext = Buffer.concat([data.update(plaintext), data.final()]);
    return Buffer.concat([wrapSection, dataIv, data.getAuthTag(), ciphertext]);
  } finally {
    dataKey.fill(0);
  }
}

/**
 * Opens what sealSecret produced. Throws SecretError: SECRET_MALFORMED (not a sealed value of a known version),
 * SECRET_WRONG_MASTER_KEY (sealed under another master key), SECRET_TAMPERED (changed, or another aad).
 */
export function openSecret(masterKey: Uint8Array, sealed: Uint8Array, options: SealOptions): Buffer {
  checkMasterKey(masterKey);
  const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (bytes.length < DATA_START) throw new SecretError('SECRET_MALFORMED', 'too short to be a sealed secret');
  if (bytes[0] !== SEALED_VERSION) {
    throw new SecretError('SECRET_MALFORMED', `unknown sealed-secret version ${bytes[0]}`);
  }
  // A changed key id is tampering too, but it cannot be told apart from another master key; either way it fails.
  if (!bytes.subarray(1, HEADER_BYTES).equals(masterKeyId(masterKey))) {
    throw new SecretError('SECRET_WRONG_MASTER_KEY', 'sealed under another master key');
  }
  const aad = aadBytes(options.aad);
  const header = bytes.subarray(0, HEADER_BYTES);
  const wrapIv = bytes.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES);
  const wrapped = bytes.subarray(HEADER_BYTES + IV_BYTES, HEADER_BYTES + IV_BYTES + KEY_BYTES);
  const wrapTag = bytes.subarray(WRAP_END - TAG_BYTES, WRAP_END);
  const dataIv = bytes.subarray(WRAP_END, WRAP_END + IV_BYTES);
  const dataTag = bytes.subarray(WRAP_END + IV_BYTES, DATA_START);
  const ciphertext = bytes.subarray(DATA_START);

  let dataKey: Buffer;
  try {
    const unwrap = createDecipheriv('aes-256-gcm', masterKey, wrapIv, { authTagLength: TAG_BYTES });
    unwrap.setAAD(Buffer.concat([header, aad]));
    unwrap.setAuthTag(wrapTag);
    dataKey = Buffer.concat([unwrap.update(wrapped), unwrap.final()]);
  } catch (cause) {
    throw new SecretError('SECRET_TAMPERED', 'the wrapped data key does not authenticate (changed, or another aad)', {
      cause,
    });
  }
  try {
    const data = createDecipheriv('aes-256-gcm', dataKey, dataIv, { authTagLength: TAG_BYTES });
    data.setAAD(Buffer.concat([bytes.subarray(0, WRAP_END), aad]));
    data.setAuthTag(dataTag);
    return Buffer.concat([data.update(ciphertext), data.final()]);
  } catch (cause) {
    throw new SecretError('SECRET_TAMPERED', 'the sealed secret does not authenticate (changed, or another aad)', {
      cause,
    });
  } finally {
    dataKey.fill(0);
  }
}

/** Was `sealed` sealed under this master key (by the key id in its header; says nothing of tampering)? */
export function isSealedUnder(masterKey: Uint8Array, sealed: Uint8Array): boolean {
  const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  return bytes.length >= HEADER_BYTES && bytes.subarray(1, HEADER_BYTES).equals(masterKeyId(masterKey));
}

/**
 * Opens `sealed` with whichever of the master keys it was sealed under (the current one and, during a rotation,
 * SMGW_MASTER_KEY_PREVIOUS). SECRET_WRONG_MASTER_KEY when none of them is the one.
 */
export function openSecretWithAny(masterKeys: readonly Uint8Array[], sealed: Uint8Array, options: SealOptions): Buffer {
  const key = masterKeys.find((k) => isSealedUnder(k, sealed));
  if (!key) throw new SecretError('SECRET_WRONG_MASTER_KEY', 'sealed under none of the master keys given');
  return openSecret(key, sealed, options);
}

/** The same secret sealed under `to` instead of `from` (bound to the same aad); the plaintext is zeroed after. */
export function resealSecret(from: Uint8Array, to: Uint8Array, sealed: Uint8Array, options: SealOptions): Buffer {
  const plaintext = openSecret(from, sealed, options);
  try {
    return sealSecret(to, plaintext, options);
  } finally {
    plaintext.fill(0);
  }
}
