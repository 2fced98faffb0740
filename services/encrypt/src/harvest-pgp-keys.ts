// Key harvesting (inbound): OpenPGP public keys a sender offers (application/pgp-keys attachments, Autocrypt
// headers) enter the key directory as `pending`, source `harvested`. A pending key is never used for encryption:
// an operator approves it first (SPEC.md admin API). A key already in the directory is left as it is.
import { findPgpKeysInMessage, inspectPublicKey } from '@smgw/crypto';
import type { Pool } from '@smgw/db';
import { storeHarvestedPgpKey } from '@smgw/key-directory';

/** Messages larger than this are not parsed for keys (mailparser holds the message several times). */
export const HARVEST_MAX_BYTES = 5 * 1024 * 1024;

export interface HarvestedKey {
  fingerprint: string;
  addresses: string[];
}

/** Stores the keys `message` offers as pending; returns those that were new. Keys without a valid address are skipped. */
export async function harvestPgpKeys(pool: Pool, message: Buffer, now: Date): Promise<HarvestedKey[]> {
  const harvested: HarvestedKey[] = [];
  for (const found of await findPgpKeysInMessage(message)) {
    let info: Awaited<ReturnType<typeof inspectPublicKey>>;
    try {
      info = await inspectPublicKey(found.armored, { now });
    } catch {
      continue; // not exactly one readable public key: nothing to offer an operator
    }
    if (info.addresses.length === 0) continue;
    const { created } = await storeHarvestedPgpKey(pool, {
      fingerprint: info.fingerprint,
      armored: info.armored,
      addresses: info.addresses,
      algorithm: info.algorithm,
      expiresAt: info.expires,
    });
    if (created) harvested.push({ fingerprint: info.fingerprint, addresses: info.addresses });
  }
  return harvested;
}
