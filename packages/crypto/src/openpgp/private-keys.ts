// Reading keys for encryptPgpMime/decryptPgpMime, with typed errors instead of openpgp's plain ones.
import * as openpgp from 'openpgp';
import { describeError, PgpError, type PgpErrorCode } from './errors.ts';

export interface ArmoredPrivateKey {
  armored: string;
  /** Needed when the key is protected; never logged. */
  passphrase?: string;
}

/** Reads a private key and unlocks it; `code` names the role it was meant for. */
export async function unlockPrivateKey(given: ArmoredPrivateKey, code: PgpErrorCode): Promise<openpgp.PrivateKey> {
  let key: openpgp.PrivateKey;
  try {
    key = await openpgp.readPrivateKey({ armoredKey: given.armored });
  } catch (error) {
    throw new PgpError(code, `not a readable OpenPGP private key: ${describeError(error)}`, { cause: error });
  }
  if (key.isDecrypted()) return key;
  if (given.passphrase === undefined) {
    throw new PgpError(code, `private key ${fingerprintOf(key)} is protected and no passphrase was given`);
  }
  try {
    return await openpgp.decryptKey({ privateKey: key, passphrase: given.passphrase });
  } catch (error) {
    // openpgp's message says "Incorrect key passphrase"; it holds no secret.
    throw new PgpError(code, `private key ${fingerprintOf(key)} cannot be unlocked: ${describeError(error)}`, {
      cause: error,
    });
  }
}

export function fingerprintOf(key: openpgp.Key): string {
  return key.getFingerprint().toUpperCase();
}

export interface PrivateKeyForStorage {
  fingerprint: string;
  /** The public part, armored: what the key directory shows and gives out. */
  publicArmored: string;
  /** The unlocked private key, armored: to be sealed at once (never logged, never stored in clear). */
  unlockedArmored: string;
  /** Addresses of the key's valid user IDs (lower-case). */
  addresses: string[];
  /** Whether the key has a subkey that can decrypt (inbound decryption needs one). */
  canDecrypt: boolean;
}

/** Reads and unlocks an agency's OpenPGP private key for the key directory, which seals what this returns. */
export async function readPrivateKeyForStorage(given: ArmoredPrivateKey): Promise<PrivateKeyForStorage> {
  const key = await unlockPrivateKey(given, 'PGP_PRIVATE_KEY_UNUSABLE');
  const addresses: string[] = [];
  for (const user of key.users) {
    const email = user.userID?.email;
    if (email) addresses.push(email.toLowerCase());
  }
  const decryptionKeys = await key.getDecryptionKeys().catch(() => []);
  return {
    fingerprint: fingerprintOf(key),
    publicArmored: key.toPublic().armor(),
    unlockedArmored: key.armor(),
    addresses: [...new Set(addresses)],
    canDecrypt: decryptionKeys.length > 0,
  };
}
