// Whether a message is encrypted, read from its top-level header fields (the fields come from splitMessage of
// @smgw/mime, which reads them from the stream without buffering the body).
import { type HeaderField, headerValue } from '@smgw/mime';

export type EncryptedForm = 'smime' | 'pgp';

/**
 * Whether a message with these top-level fields is encrypted, and how: S/MIME enveloped-data or
 * authEnveloped-data, or multipart/encrypted (PGP/MIME, RFC 1847/3156). Signed-only S/MIME is not encrypted.
 */
export function encryptedFormOf(fields: readonly HeaderField[]): EncryptedForm | undefined {
  const contentType = (headerValue(fields, 'content-type') ?? '').toLowerCase();
  if (/^multipart\/encrypted\s*(;|$)/.test(contentType)) return 'pgp';
  if (/^application\/(x-)?pkcs7-mime\s*(;|$)/.test(contentType)) {
    const smimeType = /;\s*smime-type\s*=\s*"?([a-z-]+)"?/.exec(contentType)?.[1];
    if (smimeType === 'enveloped-data' || smimeType === 'authenveloped-data') return 'smime';
  }
  return undefined;
}
