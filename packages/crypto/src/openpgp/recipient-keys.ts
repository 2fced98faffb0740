// Recipient public keys for encryption: read once per distinct armored text and kept in a small in-process cache
// (openpgp also remembers which self-signatures it has verified on a key object, so a cached key is checked cheaply),
// then checked at the given time on every call: expired, revoked, weak or unusable keys are refused as always.
import { createHash } from 'node:crypto';
import * as openpgp from 'openpgp';
import { describeError, PgpError } from './errors.ts';
import { fingerprintOf } from './private-keys.ts';

const CACHE_ENTRIES = 512;
// RFC 9580 §5.2.3.32 feature flag: the key holder's software reads SEIPDv2; openpgp then writes SEIPDv2.
const FEATURE_SEIPD_V2 = 0x08;

// Keyed by the SHA-256 of the armored text (which fixes the fingerprint too): a changed key (new subkey, new
// revocation) is a new entry, so nothing stale is ever used.
const parsedKeys = new Map<string, openpgp.PublicKey>();

export interface RecipientKey {
  publicKey: openpgp.PublicKey;
  /** The (sub)key packet openpgp chose for encryption at the given time. */
  encryptionKeyPacket: openpgp.PublicKeyPacket | openpgp.PublicSubkeyPacket;
}

/** The armored key parsed (cached) and checked at `now`; PGP_RECIPIENT_KEY_UNUSABLE when it cannot encrypt. */
export async function readRecipientKey(armored: string, now: Date): Promise<RecipientKey> {
  const publicKey = await parseCached(armored);
  try {
    // The same check openpgp.encrypt makes (expiry, revocation, minRSABits), but with the fingerprint in the error.
    const encryptionKey = await publicKey.getEncryptionKey(undefined, now);
    return {
      publicKey,
      encryptionKeyPacket: encryptionKey.keyPacket as openpgp.PublicKeyPacket | openpgp.PublicSubkeyPacket,
    };
  } catch (error) {
    throw new PgpError(
      'PGP_RECIPIENT_KEY_UNUSABLE',
      `key ${fingerprintOf(publicKey)} cannot encrypt: ${describeError(error)}`,
      { cause: error },
    );
  }
}

/**
 * True when openpgp itself would encrypt to this (already checked) key with SEIPDv1 and AES-256: a v4 key whose
 * primary self-signature lists AES-256 and does not announce SEIPDv2. Anything else is left to openpgp.
 */
export async function takesSeipdV1Aes256(key: openpgp.PublicKey, now: Date): Promise<boolean> {
  if (key.keyPacket.version !== 4) return false;
  try {
    const { selfCertification } = await key.getPrimaryUser(now);
    const features = selfCertification.features?.[0] ?? 0;
    if (features & FEATURE_SEIPD_V2) return false;
    return selfCertification.preferredSymmetricAlgorithms?.includes(openpgp.enums.symmetric.aes256) ?? false;
  } catch {
    return false;
  }
}

async function parseCached(armored: string): Promise<openpgp.PublicKey> {
  const digest = createHash('sha256').update(armored).digest('hex');
  const cached = parsedKeys.get(digest);
  if (cached) {
    // Most recently used last, so the entry evicted is the one unused the longest.
    parsedKeys.delete(digest);
    parsedKeys.set(digest, cached);
    return cached;
  }
  let key: openpgp.Key;
  try {
    key = await openpgp.readKey({ armoredKey: armored });
  } catch (error) {
    throw new PgpError('PGP_RECIPIENT_KEY_UNUSABLE', `not a readable OpenPGP key: ${describeError(error)}`, {
      cause: error,
    });
  }
  const publicKey = key.isPrivate() ? key.toPublic() : key;
  parsedKeys.set(digest, publicKey);
  if (parsedKeys.size > CACHE_ENTRIES) {
    const oldest = parsedKeys.keys().next().value;
    if (oldest !== undefined) parsedKeys.delete(oldest);
  }
  return publicKey;
}
