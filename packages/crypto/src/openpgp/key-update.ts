// A newer copy of an OpenPGP public key already in the key directory (same fingerprint): its holder extended the
// expiry, added an encryption subkey or revoked the key or a subkey. The stored key takes only what the new copy adds
// and the primary key signed (openpgp's Key.update verifies new self-signatures and revocations), never loses
// anything: an older copy offered again cannot take a revocation back. Certifications by other keys are left out (we
// never use them, and anyone can make them: a flooded key costs every later message).
import { PgpKeyMalformedError } from './errors.ts';
import { exceedsHarvestLimits } from './find-pgp-keys.ts';
import { costlyKeyMaterial, readSinglePublicKey } from './inspect-public-key.ts';

/**
 * The stored key with the update merged in, armored. Throws PgpKeyMalformedError when the update is not one readable
 * public key of the same fingerprint, holds key material too costly to check, or the merged key would exceed
 * HARVESTED_KEY_LIMITS.
 */
export async function mergePublicKeyUpdate(storedArmored: string, updateArmored: string, now: Date): Promise<string> {
  const [stored, update] = await Promise.all([readSinglePublicKey(storedArmored), readSinglePublicKey(updateArmored)]);
  if (stored.getFingerprint() !== update.getFingerprint()) {
    throw new PgpKeyMalformedError('the update is another key (its fingerprint differs)');
  }
  const costly = costlyKeyMaterial(update);
  if (costly) throw new PgpKeyMalformedError(`the update holds ${costly}: not accepted`);
  for (const user of update.users) user.otherCertifications = [];
  const merged = await stored.update(update, now);
  if (exceedsHarvestLimits(merged)) {
    throw new PgpKeyMalformedError('the key with the update holds too many user IDs, subkeys or self-signatures');
  }
  return merged.armor();
}
