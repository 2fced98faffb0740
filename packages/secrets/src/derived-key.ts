// Keys derived from SMGW_MASTER_KEY for one purpose each (HKDF-SHA256): an HMAC key for names in Redis, the portal's
// draft tokens. A derived key is never the master key, and one purpose's key tells nothing of another's.
import { hkdfSync } from 'node:crypto';

/** The 32-byte key of `purpose` (a fixed string naming the use: changing it changes the key). */
export function keyFromMasterKey(masterKey: Uint8Array, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), purpose, 32));
}
