// How much an OpenPGP public key from outside may hold: one from mail (harvested) or one a citizen uploads on the
// portal go into the same key directory and cost the same verifications.
import * as openpgp from 'openpgp';

/**
 * What one offered key may be, checked before any of its signatures is verified (inspectPublicKey verifies every user
 * ID's and subkey's self-signatures, several times over): a stranger's key with 6,000 user IDs (1.9 MiB) kept the
 * encrypt worker's event loop busy for 4 s. A key a person uses fits: gpg's default is one user ID, one subkey and two
 * signatures, and the limits leave room for years of extended expiry (old self-signatures stay in an export), rotated
 * subkeys and certifications by others (counted in the bytes, never verified). Bytes are counted as offered (armored
 * text or binary). What one signature costs is bounded by costlyKeyMaterial (no DSA or ElGamal, RSA up to 8192 bits).
 */
export const HARVESTED_KEY_LIMITS = { bytes: 256 * 1024, userIds: 16, subkeys: 16, selfSignatures: 128 } as const;

/**
 * What `key` holds beyond HARVESTED_KEY_LIMITS (user IDs, subkeys, signatures by the key itself), in words, or
 * undefined when it fits. Counted on the parsed key, before any signature is verified; certifications by others are
 * never verified, so they do not count (only in the bytes).
 */
export function keyBeyondLimits(key: openpgp.Key): string | undefined {
  const signatures = key.toPacketList().filterByTag(openpgp.enums.packet.signature).length;
  const selfSignatures = signatures - key.users.reduce((n, user) => n + user.otherCertifications.length, 0);
  const { userIds, subkeys } = HARVESTED_KEY_LIMITS;
  if (key.users.length > userIds) return `${key.users.length} user IDs (at most ${userIds})`;
  if (key.subkeys.length > subkeys) return `${key.subkeys.length} subkeys (at most ${subkeys})`;
  if (selfSignatures > HARVESTED_KEY_LIMITS.selfSignatures) {
    return `${selfSignatures} self-signatures (at most ${HARVESTED_KEY_LIMITS.selfSignatures})`;
  }
  return undefined;
}
