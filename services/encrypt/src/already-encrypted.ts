// Outbound mail the sender already encrypted goes out as it is. The Content-Type alone is only a claim: a
// plaintext message labelled enveloped-data would otherwise leave in clear. So the start of the body must look
// like what the label says (a CMS EnvelopedData / AuthEnvelopedData, or an armored OpenPGP message); if it does
// not, the message is encrypted like any other (encrypting twice does no harm, plaintext outside does).
import type { Readable } from 'node:stream';
import { type HeaderField, headerValue } from '@smgw/mime';
import type { EncryptedForm } from './encrypted-form.ts';

/** How much of the body is looked at. */
export const BODY_HEAD_BYTES = 64 * 1024;

// DER of the contentType OIDs: id-envelopedData 1.2.840.113549.1.7.3, id-ct-authEnvelopedData 1.2.840.113549.1.9.16.1.23
const ENVELOPED_DATA_OID = Buffer.from('06092a864886f70d010703', 'hex');
const AUTH_ENVELOPED_DATA_OID = Buffer.from('060b2a864886f70d0109100117', 'hex');

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

/** Whether the start of the body matches the encrypted form the header claims. */
export function bodyLooksEncrypted(form: EncryptedForm, fields: readonly HeaderField[], bodyHead: Buffer): boolean {
  if (form === 'pgp') {
    const text = bodyHead.toString('latin1');
    return /application\/pgp-encrypted/i.test(text) && text.includes('-----BEGIN PGP MESSAGE-----');
  }
  const encoding = (headerValue(fields, 'content-transfer-encoding') ?? '').toLowerCase();
  let der: Buffer;
  if (encoding === 'base64') {
    // Enough base64 for the ContentInfo header and its OID; whole 4-character groups only.
    const base64 = bodyHead
      .toString('latin1')
      .replace(/[^A-Za-z0-9+/=]/g, '')
      .slice(0, 64);
    der = Buffer.from(base64.slice(0, base64.length - (base64.length % 4)), 'base64');
  } else {
    der = bodyHead.subarray(0, 48);
  }
  if (der[0] !== 0x30) return false;
  return der.includes(ENVELOPED_DATA_OID) || der.includes(AUTH_ENVELOPED_DATA_OID);
}
