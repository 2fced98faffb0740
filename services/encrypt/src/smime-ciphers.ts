// Which algorithms an S/MIME copy uses, from what its recipients announced (smime_capabilities of their current
// certificate, harvested from their signed mail). Defaults are the widest-supported ones (AES-256-CBC EnvelopedData,
// RSA PKCS#1 v1.5); stronger ones only where announced. The choices are tables, not branches.
import type { ContentCipher, KeyTransport } from '@smgw/crypto';
import type { StoredCapabilities } from '@smgw/key-directory';

/** RSA key transport per announcement (SmimeCapabilities.keyTransport); anything else gets the default. */
const KEY_TRANSPORT_BY_ANNOUNCEMENT: Readonly<Record<string, KeyTransport>> = {
  'rsa-oaep': 'rsa-oaep-sha256',
};
const DEFAULT_KEY_TRANSPORT: KeyTransport = 'rsa-pkcs1v15';

/**
 * Content ciphers we write, most preferred first. One copy is shared by the S/MIME group, so a cipher that needs an
 * announcement is used only when every recipient of the group announced it; the last entry needs none.
 */
const CONTENT_CIPHER_PREFERENCE: ReadonlyArray<{ cipher: ContentCipher; needsAnnouncement: boolean }> = [
  { cipher: 'aes-256-gcm', needsAnnouncement: true }, // AuthEnvelopedData (RFC 5083 / RFC 5084)
  { cipher: 'aes-256-cbc', needsAnnouncement: false }, // EnvelopedData
];

export type RecipientKeyAlgorithm = KeyTransport | 'ecdh';

/** The key management for one recipient: ECDH for EC certificates, else RSA key transport as announced. */
export function keyTransportFor(keyType: 'rsa' | 'ec', capabilities: StoredCapabilities | null): RecipientKeyAlgorithm {
  if (keyType === 'ec') return 'ecdh';
  return KEY_TRANSPORT_BY_ANNOUNCEMENT[capabilities?.keyTransport ?? ''] ?? DEFAULT_KEY_TRANSPORT;
}

/** The content cipher of a group's shared copy. */
export function contentCipherFor(group: ReadonlyArray<StoredCapabilities | null>): ContentCipher {
  const chosen = CONTENT_CIPHER_PREFERENCE.find(
    (entry) => !entry.needsAnnouncement || group.every((c) => c?.contentCiphers?.includes(entry.cipher) === true),
  );
  return chosen?.cipher ?? 'aes-256-cbc';
}
