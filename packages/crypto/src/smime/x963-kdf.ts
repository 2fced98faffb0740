// ANSI X9.63 key derivation as RFC 5753 uses it for ECDH in CMS: KEK = H(Z || counter || SharedInfo) ..., truncated.
import { createHash } from 'node:crypto';

export function x963Kdf(hash: string, sharedSecret: Uint8Array, sharedInfo: Uint8Array, keyLength: number): Buffer {
  const blocks: Buffer[] = [];
  let produced = 0;
  const counter = Buffer.alloc(4);
  for (let i = 1; produced < keyLength; i++) {
    counter.writeUInt32BE(i);
    const block = createHash(hash).update(sharedSecret).update(counter).update(sharedInfo).digest();
    blocks.push(block);
    produced += block.length;
  }
  return Buffer.concat(blocks).subarray(0, keyLength);
}
