// Which digest and signature algorithms a CMS SignerInfo may name, what node:crypto calls them, and whether they are
// still acceptable (ETSI TS 119 312, BSI TR-02102-1). A table, not branches: acceptability is policy, and integrity
// is always checked first with whatever algorithm was used, so a tampered SHA-1 signature fails as tampered.

export interface DigestAlgorithm {
  oid: string;
  /** node:crypto name. */
  hash: string;
  name: string;
  acceptable: boolean;
}

export const DIGEST_ALGORITHMS: Readonly<Record<string, DigestAlgorithm>> = Object.fromEntries(
  (
    [
      ['1.2.840.113549.2.5', 'md5', 'MD5', false],
      ['1.3.14.3.2.26', 'sha1', 'SHA-1', false],
      ['2.16.840.1.101.3.4.2.4', 'sha224', 'SHA-224', false],
      ['2.16.840.1.101.3.4.2.1', 'sha256', 'SHA-256', true],
      ['2.16.840.1.101.3.4.2.2', 'sha384', 'SHA-384', true],
      ['2.16.840.1.101.3.4.2.3', 'sha512', 'SHA-512', true],
      ['2.16.840.1.101.3.4.2.8', 'sha3-256', 'SHA3-256', true],
      ['2.16.840.1.101.3.4.2.9', 'sha3-384', 'SHA3-384', true],
      ['2.16.840.1.101.3.4.2.10', 'sha3-512', 'SHA3-512', true],
    ] as const
  ).map(([oid, hash, name, acceptable]) => [oid, { oid, hash, name, acceptable }]),
);

export type SignatureFamily = 'rsa' | 'rsa-pss' | 'ec' | 'ed25519';

export interface SignatureAlgorithm {
  oid: string;
  name: string;
  family: SignatureFamily;
  /** The hash the algorithm fixes; undefined when the SignerInfo's digest algorithm (or PSS parameters) decide. */
  hash?: string;
}

export const RSA_PSS_OID = '1.2.840.113549.1.1.10';

export const SIGNATURE_ALGORITHMS: Readonly<Record<string, SignatureAlgorithm>> = Object.fromEntries(
  (
    [
      // rsaEncryption is what OpenSSL writes: PKCS#1 v1.5 with the SignerInfo's digest algorithm.
      ['1.2.840.113549.1.1.1', 'RSA PKCS#1 v1.5', 'rsa', undefined],
      ['1.2.840.113549.1.1.4', 'RSA PKCS#1 v1.5 with MD5', 'rsa', 'md5'],
      ['1.2.840.113549.1.1.5', 'RSA PKCS#1 v1.5 with SHA-1', 'rsa', 'sha1'],
      ['1.2.840.113549.1.1.14', 'RSA PKCS#1 v1.5 with SHA-224', 'rsa', 'sha224'],
      ['1.2.840.113549.1.1.11', 'RSA PKCS#1 v1.5 with SHA-256', 'rsa', 'sha256'],
      ['1.2.840.113549.1.1.12', 'RSA PKCS#1 v1.5 with SHA-384', 'rsa', 'sha384'],
      ['1.2.840.113549.1.1.13', 'RSA PKCS#1 v1.5 with SHA-512', 'rsa', 'sha512'],
      [RSA_PSS_OID, 'RSASSA-PSS', 'rsa-pss', undefined],
      // id-ecPublicKey, as some clients write it: the digest algorithm decides.
      ['1.2.840.10045.2.1', 'ECDSA', 'ec', undefined],
      ['1.2.840.10045.4.1', 'ECDSA with SHA-1', 'ec', 'sha1'],
      ['1.2.840.10045.4.3.1', 'ECDSA with SHA-224', 'ec', 'sha224'],
      ['1.2.840.10045.4.3.2', 'ECDSA with SHA-256', 'ec', 'sha256'],
      ['1.2.840.10045.4.3.3', 'ECDSA with SHA-384', 'ec', 'sha384'],
      ['1.2.840.10045.4.3.4', 'ECDSA with SHA-512', 'ec', 'sha512'],
      ['1.3.101.112', 'Ed25519', 'ed25519', undefined],
    ] as const
  ).map(([oid, name, family, hash]) => [oid, { oid, name, family, ...(hash ? { hash } : {}) }]),
);

/** The pkix OID that means "this family with this hash", so pkix's verifySignature can check it. */
export const PKIX_SIGNATURE_OID: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  rsa: {
    md5: '1.2.840.113549.1.1.4',
    sha1: '1.2.840.113549.1.1.5',
    sha224: '1.2.840.113549.1.1.14',
    sha256: '1.2.840.113549.1.1.11',
    sha384: '1.2.840.113549.1.1.12',
    sha512: '1.2.840.113549.1.1.13',
  },
  ec: {
    sha1: '1.2.840.10045.4.1',
    sha224: '1.2.840.10045.4.3.1',
    sha256: '1.2.840.10045.4.3.2',
    sha384: '1.2.840.10045.4.3.3',
    sha512: '1.2.840.10045.4.3.4',
  },
};

const ACCEPTABLE_HASHES = new Set(
  Object.values(DIGEST_ALGORITHMS)
    .filter((d) => d.acceptable)
    .map((d) => d.hash),
);

export function hashAcceptable(hash: string): boolean {
  return ACCEPTABLE_HASHES.has(hash);
}

export function hashName(hash: string): string {
  return Object.values(DIGEST_ALGORITHMS).find((d) => d.hash === hash)?.name ?? hash.toUpperCase();
}

export interface AlgorithmConstraints {
  /** Smallest RSA modulus accepted for a signer key; default 2048. */
  minRsaBits: number;
}

export const DEFAULT_ALGORITHM_CONSTRAINTS: AlgorithmConstraints = { minRsaBits: 2048 };
