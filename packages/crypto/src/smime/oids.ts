// Object identifiers used by the S/MIME layer, named after the RFCs that define them.

// RFC 5652 / RFC 5083: content types.
export const ID_DATA = '1.2.840.113549.1.7.1';
export const ID_ENVELOPED_DATA = '1.2.840.113549.1.7.3';
export const ID_AUTH_ENVELOPED_DATA = '1.2.840.113549.1.9.16.1.23';

// RFC 8017 / RFC 4055: RSA key transport.
export const RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
export const ID_RSAES_OAEP = '1.2.840.113549.1.1.7';
export const ID_MGF1 = '1.2.840.113549.1.1.8';
export const ID_P_SPECIFIED = '1.2.840.113549.1.1.9';

// Hash functions (as used in OAEP parameters).
export const HASH_BY_OID: Readonly<Record<string, string>> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};
export const ID_SHA256 = '2.16.840.1.101.3.4.2.1';

// RFC 5753 / SEC 1: ECDH ephemeral-static key agreement schemes (standard and cofactor DH; equal on prime curves).
export const ECDH_KDF_HASH_BY_OID: Readonly<Record<string, string>> = {
  '1.3.133.16.840.63.0.2': 'sha1', // dhSinglePass-stdDH-sha1kdf-scheme (OpenSSL's default)
  '1.3.132.1.11.0': 'sha224',
  '1.3.132.1.11.1': 'sha256', // dhSinglePass-stdDH-sha256kdf-scheme (what we write)
  '1.3.132.1.11.2': 'sha384',
  '1.3.132.1.11.3': 'sha512',
  '1.3.133.16.840.63.0.3': 'sha1', // dhSinglePass-cofactorDH-sha1kdf-scheme
  '1.3.132.1.14.0': 'sha224',
  '1.3.132.1.14.1': 'sha256',
  '1.3.132.1.14.2': 'sha384',
  '1.3.132.1.14.3': 'sha512',
};
export const DH_SINGLE_PASS_STD_DH_SHA256_KDF = '1.3.132.1.11.1';
export const ID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';

// RFC 3394 / RFC 3565: AES key wrap (fixed initial value), and RFC 3217 Triple-DES key wrap (OpenSSL pairs it
// with its 3DES content default), by OID → node cipher and key length.
export interface KeyWrapSpec {
  readonly cipher: string;
  readonly keyLength: number;
  readonly aesInitialValue: boolean;
}
export const KEY_WRAP_BY_OID: Readonly<Record<string, KeyWrapSpec>> = {
  '2.16.840.1.101.3.4.1.5': { cipher: 'id-aes128-wrap', keyLength: 16, aesInitialValue: true },
  '2.16.840.1.101.3.4.1.25': { cipher: 'id-aes192-wrap', keyLength: 24, aesInitialValue: true },
  '2.16.840.1.101.3.4.1.45': { cipher: 'id-aes256-wrap', keyLength: 32, aesInitialValue: true },
  '1.2.840.113549.1.9.16.3.6': { cipher: 'des3-wrap', keyLength: 24, aesInitialValue: false },
};
export const ID_AES256_WRAP = '2.16.840.1.101.3.4.1.45';

// RFC 3565 / RFC 5084 / RFC 3370: content-encryption algorithms we open, by OID → node cipher.
export interface ContentCipherSpec {
  readonly cipher: string;
  readonly keyLength: number;
  readonly mode: 'cbc' | 'gcm';
}
export const CONTENT_CIPHER_BY_OID: Readonly<Record<string, ContentCipherSpec>> = {
  '2.16.840.1.101.3.4.1.2': { cipher: 'aes-128-cbc', keyLength: 16, mode: 'cbc' },
  '2.16.840.1.101.3.4.1.22': { cipher: 'aes-192-cbc', keyLength: 24, mode: 'cbc' },
  '2.16.840.1.101.3.4.1.42': { cipher: 'aes-256-cbc', keyLength: 32, mode: 'cbc' },
  '1.2.840.113549.3.7': { cipher: 'des-ede3-cbc', keyLength: 24, mode: 'cbc' }, // OpenSSL 3.0's cms -encrypt default
  '2.16.840.1.101.3.4.1.6': { cipher: 'aes-128-gcm', keyLength: 16, mode: 'gcm' },
  '2.16.840.1.101.3.4.1.26': { cipher: 'aes-192-gcm', keyLength: 24, mode: 'gcm' },
  '2.16.840.1.101.3.4.1.46': { cipher: 'aes-256-gcm', keyLength: 32, mode: 'gcm' },
};
export const ID_AES256_CBC = '2.16.840.1.101.3.4.1.42';
export const ID_AES256_GCM = '2.16.840.1.101.3.4.1.46';

// RFC 5280: subjectKeyIdentifier extension.
export const ID_CE_SUBJECT_KEY_IDENTIFIER = '2.5.29.14';
