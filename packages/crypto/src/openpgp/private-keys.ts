// Reading keys for encryptPgpMime/decryptPgpMime, with typed errors instead of openpgp's plain ones.
import * as openpgp from 'openpgp';
import { describeError, PgpError, type PgpErrorCode } from './errors.ts';

export interface ArmoredPrivateKey {
  armored: string;
  /** Needed when the key is protected; never logged. */
  passphrase?: string;
}

/**
 * Passphrase work a protected key may ask for before it is unlocked. openpgp.js derives each (sub)key's secret from
 * the passphrase with the parameters the key carries, in WebAssembly (Argon2) or JavaScript (iterated SHA) without
 * yielding: Argon2 at 2^21 KiB and two passes held the event loop for 25 s and took 2.5 GB of memory, and a key
 * may carry 255 passes and thousands of subkeys. Work is counted in KiB filled or hashed: Argon2 passes × memory,
 * iterated S2K its byte count (at most 62 MiB, what GnuPG uses). openpgp.js's own Argon2 default is 3 × 64 MiB.
 */
export const PASSPHRASE_WORK_LIMITS = { argon2MemoryKiB: 2 ** 17, totalKiB: 2 ** 20 } as const;

/** The S2K specifier of a protected key packet (RFC 9580 §3.7), as openpgp.js keeps it. */
interface ProtectedKeyPacket {
  isDecrypted(): boolean | null;
  s2k?: { type?: string; c?: number; t?: number; encodedM?: number } | null;
}

/** KiB of passphrase work one key packet asks for (0 for one stored in clear or without a passphrase to run). */
export function passphraseWorkKiB(packet: ProtectedKeyPacket, code: PgpErrorCode, fingerprint: string): number {
  const s2k = packet.s2k;
  if (packet.isDecrypted() !== false || !s2k) return 0;
  if (s2k.type === 'argon2') {
    const memoryKiB = 2 ** (s2k.encodedM ?? 0);
    if (memoryKiB > PASSPHRASE_WORK_LIMITS.argon2MemoryKiB) {
      throw new PgpError(
        code,
        `private key ${fingerprint} asks for ${memoryKiB} KiB of Argon2 memory (at most ` +
          `${PASSPHRASE_WORK_LIMITS.argon2MemoryKiB}); protect it with a smaller setting`,
      );
    }
    return (s2k.t ?? 1) * memoryKiB;
  }
  if (s2k.type === 'iterated') {
    // RFC 9580 §3.7.1.3: the coded count byte.
    const c = s2k.c ?? 0;
    return ((16 + (c & 15)) << ((c >> 4) + 6)) / 1024;
  }
  return 0;
}

/** Refuses a key whose (sub)keys together ask for more passphrase work than PASSPHRASE_WORK_LIMITS allow. */
function refuseCostlyPassphraseWork(key: openpgp.PrivateKey, code: PgpErrorCode): void {
  const fingerprint = fingerprintOf(key);
  let totalKiB = 0;
  for (const { keyPacket } of [key, ...key.subkeys]) {
    totalKiB += passphraseWorkKiB(keyPacket as unknown as ProtectedKeyPacket, code, fingerprint);
    if (totalKiB > PASSPHRASE_WORK_LIMITS.totalKiB) {
      throw new PgpError(
        code,
        `private key ${fingerprint} asks for more than ${PASSPHRASE_WORK_LIMITS.totalKiB} KiB of passphrase work ` +
          'to unlock its keys; protect it with a smaller setting or fewer subkeys',
      );
    }
  }
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
  refuseCostlyPassphraseWork(key, code);
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
