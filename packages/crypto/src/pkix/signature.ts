// Signature verification with node:crypto (RSA PKCS#1 v1.5 and PSS, ECDSA, DSA, Ed25519) and the
// algorithm-strength policy: WebCrypto has no DSA, and node:crypto gives us key sizes directly.
import { createPublicKey, constants as cryptoConstants, type KeyObject, verify } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { AlgorithmPolicy } from './types.ts';

const HASH_BY_OID: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

const SIGNATURE_ALGORITHMS: Record<string, { hash: string | null; family: 'rsa' | 'ec' | 'dsa' | 'ed' }> = {
  '1.2.840.113549.1.1.2': { hash: 'md2', family: 'rsa' },
  '1.2.840.113549.1.1.4': { hash: 'md5', family: 'rsa' },
  '1.2.840.113549.1.1.5': { hash: 'sha1', family: 'rsa' },
  '1.2.840.113549.1.1.14': { hash: 'sha224', family: 'rsa' },
  '1.2.840.113549.1.1.11': { hash: 'sha256', family: 'rsa' },
  '1.2.840.113549.1.1.12': { hash: 'sha384', family: 'rsa' },
  '1.2.840.113549.1.1.13': { hash: 'sha512', family: 'rsa' },
  '1.2.840.10045.4.1': { hash: 'sha1', family: 'ec' },
  '1.2.840.10045.4.3.1': { hash: 'sha224', family: 'ec' },
  '1.2.840.10045.4.3.2': { hash: 'sha256', family: 'ec' },
  '1.2.840.10045.4.3.3': { hash: 'sha384', family: 'ec' },
  '1.2.840.10045.4.3.4': { hash: 'sha512', family: 'ec' },
  '1.2.840.10040.4.3': { hash: 'sha1', family: 'dsa' },
  '2.16.840.1.101.3.4.3.2': { hash: 'sha256', family: 'dsa' },
  '1.3.101.112': { hash: null, family: 'ed' },
};
const RSA_PSS_OID = '1.2.840.113549.1.1.10';
const DSA_KEY_OID = '1.2.840.10040.4.1';
const STRONG_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1', 'P-256', 'P-384', 'P-521']);

export type SignatureProblem = 'BAD_SIGNATURE' | 'WEAK_SIGNATURE' | 'UNSUPPORTED_ALGORITHM';

export interface SignatureCheck {
  ok: boolean;
  problem?: SignatureProblem;
  reason?: string;
}

/** Public key of a certificate; a DSA key without parameters inherits them from its issuer (RFC 3279 §2.3.2). */
export function publicKeyOf(spki: pkijs.PublicKeyInfo, inheritedDsaParameters?: asn1js.AsnType): KeyObject {
  let der = new Uint8Array(spki.toSchema().toBER());
  if (
    spki.algorithm.algorithmId === DSA_KEY_OID &&
    spki.algorithm.algorithmParams === undefined &&
    inheritedDsaParameters
  ) {
    const rebuilt = new asn1js.Sequence({
      value: [
        new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: DSA_KEY_OID }), inheritedDsaParameters] }),
        spki.subjectPublicKey,
      ],
    });
    der = new Uint8Array(rebuilt.toBER());
  }
  return createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
}

/** The DSA parameters in force for this key: its own, else (RFC 3279 §2.3.2) those inherited from a DSA issuer. */
export function dsaParametersOf(spki: pkijs.PublicKeyInfo, inherited?: asn1js.AsnType): asn1js.AsnType | undefined {
  if (spki.algorithm.algorithmId !== DSA_KEY_OID) return undefined;
  return spki.algorithm.algorithmParams ?? inherited;
}

/** WEAK_KEY reason, or undefined when the key is strong enough. */
export function weakKeyReason(key: KeyObject, policy: AlgorithmPolicy): string | undefined {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss' || key.asymmetricKeyType === 'dsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < policy.minRsaBits)
      return `its ${key.asymmetricKeyType?.toUpperCase()} key has ${bits} bits, fewer than ${policy.minRsaBits}`;
    return undefined;
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = details.namedCurve ?? 'unknown';
    return STRONG_CURVES.has(curve) ? undefined : `its EC key is on curve ${curve}, which is not accepted`;
  }
  if (key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448') return undefined;
  return `its key type ${key.asymmetricKeyType ?? 'unknown'} is not accepted`;
}

function pssParameters(params: unknown): { hash: string; saltLength: number } | undefined {
  try {
    const pss = new pkijs.RSASSAPSSParams({ schema: params });
    const hash = HASH_BY_OID[pss.hashAlgorithm.algorithmId];
    const mgfHashParams = pss.maskGenAlgorithm.algorithmParams;
    const mgfHash = mgfHashParams
      ? HASH_BY_OID[new pkijs.AlgorithmIdentifier({ schema: mgfHashParams }).algorithmId]
      : 'sha1';
    if (!hash || mgfHash !== hash || pss.trailerField !== 1) return undefined;
    return { hash, saltLength: pss.saltLength };
  } catch {
    return undefined;
  }
}

/**
 * The largest RSA public exponent verified: OpenSSL's own bound for moduli above 3072 bits (RSA_MAX_PUBEXP_BITS),
 * here for every size. A verification costs a modular exponentiation by e: a stranger's key with a 2046-bit e costs
 * about 120 times one with 65537, and a signature from mail may ask for hundreds of such checks.
 */
const MAX_RSA_PUBLIC_EXPONENT = 2n ** 64n - 1n;

/**
 * The largest RSA modulus and DSA prime verified. A check's cost grows with the cube of the size: a 15,360-bit RSA key
 * costs about 26 times a 3072-bit one (openssl speed: 0.87 against 0.033 ms), and a message may ask for hundreds of
 * checks. 8192 bits is above every key in use for mail (CAs issue up to 4096); DSA stops at 3072 (FIPS 186).
 */
const MAX_RSA_MODULUS_BITS = 8192;
const MAX_DSA_PRIME_BITS = 3072;

/** Verifies `signature` over `data` made with algorithm `algorithm` by `key`, applying the strength policy. */
export function verifySignature(
  algorithm: pkijs.AlgorithmIdentifier,
  data: Uint8Array,
  signature: Uint8Array,
  key: KeyObject,
  policy: AlgorithmPolicy,
): SignatureCheck {
  let hash: string | null;
  let options: Parameters<typeof verify>[2];
  if (algorithm.algorithmId === RSA_PSS_OID) {
    const pss = pssParameters(algorithm.algorithmParams);
    if (!pss)
      return { ok: false, problem: 'UNSUPPORTED_ALGORITHM', reason: 'its RSASSA-PSS parameters are not supported' };
    hash = pss.hash;
    if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'rsa-pss') {
      return { ok: false, problem: 'BAD_SIGNATURE', reason: 'the signature algorithm does not match the issuer key' };
    }
    options = { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: pss.saltLength };
  } else {
    const known = SIGNATURE_ALGORITHMS[algorithm.algorithmId];
    if (!known)
      return {
        ok: false,
        problem: 'UNSUPPORTED_ALGORITHM',
        reason: `signature algorithm ${algorithm.algorithmId} is not supported`,
      };
    const expectedKey = { rsa: ['rsa'], ec: ['ec'], dsa: ['dsa'], ed: ['ed25519'] }[known.family];
    if (!expectedKey.includes(key.asymmetricKeyType ?? '')) {
      return { ok: false, problem: 'BAD_SIGNATURE', reason: 'the signature algorithm does not match the issuer key' };
    }
    hash = known.hash;
    options =
      known.family === 'rsa' ? { key, padding: cryptoConstants.RSA_PKCS1_PADDING } : { key, dsaEncoding: 'der' };
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  const maxBits = key.asymmetricKeyType === 'dsa' ? MAX_DSA_PRIME_BITS : MAX_RSA_MODULUS_BITS;
  if (bits > maxBits) {
    return {
      ok: false,
      problem: 'UNSUPPORTED_ALGORITHM',
      reason: `its ${key.asymmetricKeyType?.toUpperCase()} key has ${bits} bits, more than ${maxBits}: not verified`,
    };
  }
  const exponent = key.asymmetricKeyDetails?.publicExponent;
  if (exponent !== undefined && exponent > MAX_RSA_PUBLIC_EXPONENT) {
    return {
      ok: false,
      problem: 'UNSUPPORTED_ALGORITHM',
      reason: `its RSA public exponent has ${exponent.toString(2).length} bits, more than 64: not verified`,
    };
  }
  if (hash === 'md2' || hash === 'md5')
    return { ok: false, problem: 'WEAK_SIGNATURE', reason: `it is signed with ${hash.toUpperCase()}` };
  if (hash === 'sha1' && !policy.allowSha1)
    return { ok: false, problem: 'WEAK_SIGNATURE', reason: 'it is signed with SHA-1' };
  let valid = false;
  try {
    valid = verify(hash, data, options, signature);
  } catch {
    valid = false;
  }
  return valid
    ? { ok: true }
    : { ok: false, problem: 'BAD_SIGNATURE', reason: 'its signature does not verify with the issuer key' };
}
