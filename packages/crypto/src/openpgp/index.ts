// OpenPGP for the gateway: PGP/MIME (RFC 3156) encryption and decryption, key inspection for the key directory,
// and harvesting of offered keys. Built on openpgp 6 (LIBRARY-NOTES.md §5).

export type {
  DecryptedPgpMessage,
  DecryptPgpMimeInput,
  PgpSignatureInfo,
  PgpSignatureStatus,
} from './decrypt-pgp-mime.ts';
export { decryptPgpMime, MAX_SESSION_KEY_PACKETS, MAX_SESSION_KEYS_TRIED } from './decrypt-pgp-mime.ts';
export type { EncryptPgpMimeInput } from './encrypt-pgp-mime.ts';
export { encryptPgpMime } from './encrypt-pgp-mime.ts';
export type { PgpErrorCode } from './errors.ts';
export { PgpError, PgpKeyBeyondLimitsError, PgpKeyMalformedError } from './errors.ts';
export type { FoundPgpKey } from './find-pgp-keys.ts';
export { findPgpKeysInMessage, parseAutocryptHeader } from './find-pgp-keys.ts';
export type { PgpKeyInfo, PgpKeyProblem, PgpKeyProblemCode } from './inspect-public-key.ts';
export { inspectPublicKey, MIN_FINITE_FIELD_BITS } from './inspect-public-key.ts';
export { HARVESTED_KEY_LIMITS, keyBeyondLimits } from './key-limits.ts';
export { mergePublicKeyUpdate } from './key-update.ts';
export type { OuterHeaders } from './outer-headers.ts';
export type { ArmoredPrivateKey, PrivateKeyForStorage } from './private-keys.ts';
export { readPrivateKeyForStorage } from './private-keys.ts';
export { recipientKeyProblems } from './recipient-keys.ts';
