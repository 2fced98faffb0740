// What the key directory stores about an OpenPGP public key, and what is wrong with it at a given time. The trust
// state (pending → approved) is not decided here: a key without problems is still only a candidate.
import * as openpgp from 'openpgp';
import { describeError, PgpKeyBeyondLimitsError, PgpKeyMalformedError } from './errors.ts';
import { keyBeyondLimits } from './key-limits.ts';

export type PgpKeyProblemCode =
  | 'PGP_KEY_EXPIRED'
  | 'PGP_KEY_REVOKED'
  | 'PGP_NO_ENCRYPTION_KEY'
  | 'PGP_WEAK_KEY'
  | 'PGP_KEY_MALFORMED';

export interface PgpKeyProblem {
  code: PgpKeyProblemCode;
  detail: string;
}

export interface PgpKeyInfo {
  /** The key re-armored by us: exactly what was inspected, nothing that came around it. */
  armored: string;
  /** Primary key fingerprint, upper-case hex (40 characters for v4 keys). */
  fingerprint: string;
  /** Long key id of the primary key, upper-case hex. */
  keyId: string;
  /** Every user ID as written in the key, including revoked ones. */
  userIds: string[];
  /** Lower-case e-mail addresses of the user IDs that are valid (self-certified, not revoked) at `now`. */
  addresses: string[];
  /** openpgp's algorithm name of the primary key, e.g. 'rsaEncryptSign', 'eddsaLegacy'. */
  algorithm: string;
  bits?: number;
  curve?: string;
  created: Date;
  /** Expiry of the primary key; null when it never expires. */
  expires: Date | null;
  revoked: boolean;
  /** True when openpgp would encrypt to this key at `now` (a valid, strong enough encryption (sub)key exists). */
  canEncrypt: boolean;
  problems: PgpKeyProblem[];
}

/** Weakest key size accepted for RSA, DSA and ElGamal key material. */
export const MIN_FINITE_FIELD_BITS = 2048;

const FINITE_FIELD_ALGORITHMS = new Set(['rsaEncryptSign', 'rsaEncrypt', 'rsaSign', 'dsa', 'elgamal']);

/** Largest RSA modulus, in bits, whose signatures are checked at all. */
export const MAX_RSA_BITS = 8192;

/**
 * Why checking this key's signatures would cost too much, before any is checked; undefined when it would not. openpgp
 * verifies DSA and ElGamal in plain JavaScript with no bound on their numbers (one self-signature over a 65,535-bit p
 * is tens of seconds on the event loop, checked again on every look at the key), and refuses both algorithms only
 * after verifying; an RSA key of a huge modulus or exponent is slow as well. Such keys cannot be encrypted to anyway.
 */
export function costlyKeyMaterial(key: openpgp.Key): string | undefined {
  for (const packet of [key.keyPacket, ...key.subkeys.map((subkey) => subkey.keyPacket)]) {
    if (openpgp.config.rejectPublicKeyAlgorithms.has(packet.algorithm)) {
      return `${openpgp.enums.read(openpgp.enums.publicKey, packet.algorithm)} key material (not supported)`;
    }
    const params = (packet as unknown as { publicParams?: { n?: unknown; e?: unknown } }).publicParams;
    if (params?.n instanceof Uint8Array && params.n.length * 8 > MAX_RSA_BITS) {
      return `an RSA modulus of ${params.n.length * 8} bits (at most ${MAX_RSA_BITS})`;
    }
    if (params?.e instanceof Uint8Array && params.e.length > 4) return 'an RSA exponent over 32 bits';
  }
  return undefined;
}

/**
 * Reads one armored OpenPGP public key and reports it at `now` (default: the current time).
 * Throws PgpKeyMalformedError (code PGP_KEY_MALFORMED) when the text is not exactly one readable public key;
 * a key that reads but has no valid self-signature is reported with the problem PGP_KEY_MALFORMED instead.
 * With `withinLimits` (a key from outside: the portal's upload), throws PgpKeyBeyondLimitsError for a key beyond
 * HARVESTED_KEY_LIMITS, as harvesting skips one, before any of its signatures is verified.
 */
export async function inspectPublicKey(
  armored: string,
  options: { now?: Date; withinLimits?: boolean } = {},
): Promise<PgpKeyInfo> {
  const now = options.now ?? new Date();
  const key = await readSinglePublicKey(armored);
  if (options.withinLimits) {
    const beyond = keyBeyondLimits(key);
    if (beyond) throw new PgpKeyBeyondLimitsError(`the key holds ${beyond}`);
  }
  const { problems, expires, revoked, canEncrypt } = await publicKeyProblems(key, now);
  const info = key.getAlgorithmInfo();
  return {
    armored: key.armor(),
    fingerprint: key.getFingerprint().toUpperCase(),
    keyId: key.getKeyID().toHex().toUpperCase(),
    userIds: key.getUserIDs(),
    addresses: await validAddresses(key, now),
    algorithm: info.algorithm,
    ...(info.bits === undefined ? {} : { bits: info.bits }),
    ...(info.curve === undefined ? {} : { curve: info.curve }),
    created: key.getCreationTime(),
    expires,
    revoked,
    canEncrypt,
    problems,
  };
}

/**
 * What is wrong with a key already read, at `now` (inspectPublicKey's problems). Throws PgpKeyMalformedError for key
 * material too costly to check (costlyKeyMaterial) before any signature is verified.
 */
export async function publicKeyProblems(
  key: openpgp.PublicKey,
  now: Date,
): Promise<Pick<PgpKeyInfo, 'problems' | 'expires' | 'revoked' | 'canEncrypt'>> {
  const costly = costlyKeyMaterial(key);
  if (costly) throw new PgpKeyMalformedError(`the key holds ${costly}: not accepted`);
  const problems: PgpKeyProblem[] = [];

  const expiration = await key.getExpirationTime();
  const revoked = await key.isRevoked(undefined, undefined, now);

  let expires: Date | null = null;
  if (expiration === null) {
    problems.push({ code: 'PGP_KEY_MALFORMED', detail: 'no valid self-signature on the primary key' });
  } else if (expiration instanceof Date) {
    expires = expiration;
    if (now.getTime() >= expiration.getTime()) {
      problems.push({ code: 'PGP_KEY_EXPIRED', detail: `the key expired at ${expiration.toISOString()}` });
    }
  }
  if (revoked) problems.push({ code: 'PGP_KEY_REVOKED', detail: 'the primary key is revoked' });

  for (const weak of weakKeyMaterial(key)) problems.push({ code: 'PGP_WEAK_KEY', detail: weak });

  const canEncrypt = await hasEncryptionKey(key, now, openpgp.config);
  const expiredOrRevoked = problems.some((p) => p.code === 'PGP_KEY_EXPIRED' || p.code === 'PGP_KEY_REVOKED');
  if (!canEncrypt && !expiredOrRevoked) {
    // Ask again without the strength rule, so a weak encryption subkey is reported as weak, not as missing.
    const weakButPresent = await hasEncryptionKey(key, now, { ...openpgp.config, minRSABits: 512 });
    if (!weakButPresent) {
      problems.push({ code: 'PGP_NO_ENCRYPTION_KEY', detail: 'no valid encryption key or subkey at this time' });
    }
  }
  if (!expiredOrRevoked && expiration !== null) {
    try {
      await key.verifyPrimaryKey(now);
    } catch (error) {
      problems.push({ code: 'PGP_KEY_MALFORMED', detail: `the primary key does not verify: ${describeError(error)}` });
    }
  }
  return { problems, expires, revoked, canEncrypt };
}

/** The one public key of an armored text (PgpKeyMalformedError when it is not exactly one). */
export async function readSinglePublicKey(armored: string): Promise<openpgp.PublicKey> {
  // openpgp reads the first armor block and silently ignores any after it.
  const blocks = armored.match(/-----BEGIN PGP /g)?.length ?? 0;
  if (blocks > 1) throw new PgpKeyMalformedError(`expected one armored block, found ${blocks}`);
  let keys: openpgp.Key[];
  try {
    keys = await openpgp.readKeys({ armoredKeys: armored });
  } catch (error) {
    throw new PgpKeyMalformedError(`not a readable OpenPGP key: ${describeError(error)}`, { cause: error });
  }
  if (keys.length !== 1) throw new PgpKeyMalformedError(`expected one key, found ${keys.length}`);
  const key = keys[0] as openpgp.Key;
  // Secret material never goes into the key directory.
  if (key.isPrivate()) throw new PgpKeyMalformedError('this is a private key; give the public key');
  return key as openpgp.PublicKey;
}

async function hasEncryptionKey(key: openpgp.PublicKey, now: Date, config: openpgp.Config): Promise<boolean> {
  try {
    await key.getEncryptionKey(undefined, now, undefined, config);
    return true;
  } catch {
    return false;
  }
}

function weakKeyMaterial(key: openpgp.PublicKey): string[] {
  const weak: string[] = [];
  const parts = [
    { label: 'primary key', info: key.getAlgorithmInfo() },
    ...key
      .getSubkeys()
      .map((subkey) => ({ label: `subkey ${subkey.getKeyID().toHex()}`, info: subkey.getAlgorithmInfo() })),
  ];
  for (const { label, info } of parts) {
    if (FINITE_FIELD_ALGORITHMS.has(info.algorithm) && (info.bits ?? 0) < MIN_FINITE_FIELD_BITS) {
      weak.push(`${label}: ${info.algorithm} ${info.bits ?? '?'} bits (< ${MIN_FINITE_FIELD_BITS})`);
    }
  }
  return weak;
}

async function validAddresses(key: openpgp.PublicKey, now: Date): Promise<string[]> {
  const addresses = new Set<string>();
  for (const user of key.users) {
    const email = user.userID?.email;
    if (!email) continue;
    try {
      await user.verify(now);
      addresses.add(email.toLowerCase());
    } catch {
      // revoked or not self-certified: this address is not vouched for by the key holder
    }
  }
  return [...addresses];
}
