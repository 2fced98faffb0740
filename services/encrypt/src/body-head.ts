// The start of a message body, for telling inline PGP from plain text in inbound mail (decrypt-inbound.ts). Whether
// outbound mail is already encrypted is decided on the whole message by @smgw/crypto's checkWholeMessageEncrypted.
import type { Readable } from 'node:stream';
import { BODY_HEAD_BYTES } from '@smgw/crypto';

/** The first bytes of `body` (at most 64 KiB); the stream is destroyed afterwards. */
export async function readBodyHead(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of body) {
      chunks.push(Buffer.from(chunk as Uint8Array));
      length += (chunk as Uint8Array).length;
      if (length >= BODY_HEAD_BYTES) break;
    }
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).subarray(0, BODY_HEAD_BYTES);
}
