// Key harvesting (inbound): OpenPGP public keys a sender offers (application/pgp-keys attachments, Autocrypt
// headers) enter the key directory as `pending`, source `harvested`, for the sender's address alone. A pending key is
// never used for encryption: an operator approves it first (SPEC.md admin API). A key already in the directory is left
// as it is.
import { findPgpKeysInMessage, inspectPublicKey } from '@smgw/crypto';
import type { Pool } from '@smgw/db';
import { storeHarvestedPgpKey } from '@smgw/key-directory';

/** Messages larger than this are not read for keys or certificates (each is read whole, in memory). */
export const HARVEST_MAX_BYTES = 5 * 1024 * 1024;

export interface HarvestedKey {
  fingerprint: string;
  addresses: string[];
}

/**
 * Stores the keys `message` offers as pending, for `sender` (the one From address: decrypt-inbound.ts decides it as for
 * S/MIME) alone; returns those that were new. A key is taken only when one of its valid (self-certified, not revoked)
 * user IDs names the sender. The message vouches for who sent it, not for the other addresses a key names: stored for
 * them, a stranger's key naming a citizen's address would, once an operator approved it with the stranger, encrypt
 * that citizen's mail to the stranger.
 */
export async function harvestPgpKeys(pool: Pool, message: Buffer, sender: string, now: Date): Promise<HarvestedKey[]> {
  const address = sender.toLowerCase();
  const harvested: HarvestedKey[] = [];
  for (const found of await findPgpKeysInMessage(message)) {
    let info: Awaited<ReturnType<typeof inspectPublicKey>>;
    try {
      info = await inspectPublicKey(found.armored, { now });
    } catch {
      continue; // not exactly one readable public key: nothing to offer an operator
    }
    if (!info.addresses.includes(address)) continue;
    const { created } = await storeHarvestedPgpKey(pool, {
      fingerprint: info.fingerprint,
      armored: info.armored,
      addresses: [address],
      algorithm: info.algorithm,
      expiresAt: info.expires,
    });
    if (created) harvested.push({ fingerprint: info.fingerprint, addresses: [address] });
  }
  return harvested;
}
