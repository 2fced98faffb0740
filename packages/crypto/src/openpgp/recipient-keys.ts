// Recipient public keys for encryption: read once per distinct armored text and kept in a small in-process cache
// (openpgp also remembers which self-signatures it has verified on a key object, so a cached key is checked cheaply),
// then checked at the given time on every call: expired, revoked, weak or unusable keys are refused as always.
import { createHash } from 'node:crypto';
import * as openpgp from 'openpgp';
import { describeError, PgpError } from './errors.ts';
import { type PgpKeyProblemCode, publicKeyProblems } from './inspect-public-key.ts';
import { fingerprintOf } from './private-keys.ts';

const CACHE_ENTRIES = 512;
// RFC 9580 §5.2.3.32 feature flag: the key holder's software reads SEIPDv2; openpgp then writes SEIPDv2.
const FEATURE_SEIPD_V2 = 0x08;

// Keyed by the SHA-256 of the armored text (which fixes the fingerprint too): a changed key (new subkey, new
// revocation) is a new entry, so nothing stale is ever used.
const parsedKeys = new Map<string, openpgp.PublicKey>();

type EncryptionKeyPacket = openpgp.PublicKeyPacket | openpgp.PublicSubkeyPacket;

/**
 * openpgp's verdict on a key at one time. openpgp judges every time in whole seconds (util.normalizeDate; creation,
 * expiry and revocation times are whole seconds in the packets), so the verdict on a key object cannot change within
 * one second: the last successful one per key is kept with its second and reused only for that same second. Any
 * check at another second replaces it. The checks cost more than the key wrap itself (openpgp builds and discards an
 * Error for every key without direct-key signatures), and a busy gateway encrypts to the same keys many times a second.
 */
interface Verdict {
  readonly second: number;
  readonly encryptionKeyPacket: EncryptionKeyPacket;
  takesSeipdV1Aes256?: boolean;
}
const verdicts = new WeakMap<openpgp.PublicKey, Verdict>();

const secondOf = (date: Date): number => Math.floor(date.getTime() / 1000);

export interface RecipientKey {
  publicKey: openpgp.PublicKey;
  /** The (sub)key packet openpgp chose for encryption at the given time. */
  encryptionKeyPacket: EncryptionKeyPacket;
}

/** The armored key parsed (cached) and checked at `now`; PGP_RECIPIENT_KEY_UNUSABLE when it cannot encrypt. */
export async function readRecipientKey(armored: string, now: Date): Promise<RecipientKey> {
  const publicKey = cachedKey(armored) ?? (await parseAndCache(armored));
  const second = secondOf(now);
  const known = verdicts.get(publicKey);
  if (known?.second === second) return { publicKey, encryptionKeyPacket: known.encryptionKeyPacket };
  try {
    // The same check openpgp.encrypt makes (expiry, revocation, minRSABits), but with the fingerprint in the error.
    const encryptionKey = await publicKey.getEncryptionKey(undefined, now);
    const encryptionKeyPacket = encryptionKey.keyPacket as EncryptionKeyPacket;
    verdicts.set(publicKey, { second, encryptionKeyPacket });
    return { publicKey, encryptionKeyPacket };
  } catch (error) {
    verdicts.delete(publicKey);
    throw new PgpError(
      'PGP_RECIPIENT_KEY_UNUSABLE',
      `key ${fingerprintOf(publicKey)} cannot encrypt: ${describeError(error)}`,
      { cause: error },
    );
  }
}

/** A key's problems at one second (inspectPublicKey's rule), kept with it for that second as its verdict is. */
const inspections = new WeakMap<
  openpgp.PublicKey,
  { readonly second: number; readonly problems: PgpKeyProblemCode[] }
>();

/**
 * What is wrong with a recipient's key at `now`, as inspectPublicKey reports it, for every message encrypted to it:
 * read through the same cache as readRecipientKey, and judged once per key and second (openpgp judges in whole
 * seconds, see Verdict). Inspecting afresh read the key and verified every signature again for each message (1.5 ms
 * for a gpg ed25519 key here). A key that cannot be read, or whose key material is too costly to check, is
 * PGP_KEY_MALFORMED.
 */
export async function recipientKeyProblems(armored: string, now: Date): Promise<PgpKeyProblemCode[]> {
  let publicKey: openpgp.PublicKey;
  try {
    publicKey = cachedKey(armored) ?? (await parseAndCache(armored));
  } catch {
    return ['PGP_KEY_MALFORMED'];
  }
  const second = secondOf(now);
  const known = inspections.get(publicKey);
  if (known?.second === second) return [...known.problems];
  let problems: PgpKeyProblemCode[];
  try {
    problems = (await publicKeyProblems(publicKey, now)).problems.map((problem) => problem.code);
  } catch {
    problems = ['PGP_KEY_MALFORMED'];
  }
  inspections.set(publicKey, { second, problems });
  return [...problems];
}

/**
 * True when openpgp itself would encrypt to this (already checked) key with SEIPDv1 and AES-256: a v4 key whose
 * primary self-signature lists AES-256 and does not announce SEIPDv2. Anything else is left to openpgp.
 */
export async function takesSeipdV1Aes256(key: openpgp.PublicKey, now: Date): Promise<boolean> {
  if (key.keyPacket.version !== 4) return false;
  const verdict = verdicts.get(key);
  const sameSecond = verdict?.second === secondOf(now);
  if (sameSecond && verdict.takesSeipdV1Aes256 !== undefined) return verdict.takesSeipdV1Aes256;
  const takes = await primaryUserTakesSeipdV1Aes256(key, now);
  if (sameSecond) verdict.takesSeipdV1Aes256 = takes;
  return takes;
}

async function primaryUserTakesSeipdV1Aes256(key: openpgp.PublicKey, now: Date): Promise<boolean> {
  try {
    const { selfCertification } = await key.getPrimaryUser(now);
    const features = selfCertification.features?.[0] ?? 0;
    if (features & FEATURE_SEIPD_V2) return false;
    return selfCertification.preferredSymmetricAlgorithms?.includes(openpgp.enums.symmetric.aes256) ?? false;
  } catch {
    return false;
  }
}

const digestOf = (armored: string): string => createHash('sha256').update(armored).digest('hex');

/** The cached key for this armored text, if any (most recently used last, so eviction drops the oldest). */
function cachedKey(armored: string): openpgp.PublicKey | undefined {
  const digest = digestOf(armored);
  const cached = parsedKeys.get(digest);
  if (cached) {
    parsedKeys.delete(digest);
    parsedKeys.set(digest, cached);
  }
  return cached;
}

async function parseAndCache(armored: string): Promise<openpgp.PublicKey> {
  let key: openpgp.Key;
  try {
    key = await openpgp.readKey({ armoredKey: armored });
  } catch (error) {
    throw new PgpError('PGP_RECIPIENT_KEY_UNUSABLE', `not a readable OpenPGP key: ${describeError(error)}`, {
      cause: error,
    });
  }
  const publicKey = key.isPrivate() ? key.toPublic() : key;
  parsedKeys.set(digestOf(armored), publicKey);
  if (parsedKeys.size > CACHE_ENTRIES) {
    const oldest = parsedKeys.keys().next().value;
    if (oldest !== undefined) parsedKeys.delete(oldest);
  }
  return publicKey;
}
