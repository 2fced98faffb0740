// Signing before encryption, per agency (issue 4): when the author's agency (the one owning the author's domain) has
// signing switched on, each encrypted copy is first signed with the author address's own key of that form. The
// author is the From address that ingest checked the submitting account may use (envelope.author, issue 8 finding
// 5); the envelope sender never chooses the key. A missing or unusable key never blocks the mail: the copy goes
// encrypted but unsigned, and says why.
import type { ArmoredPrivateKey, SigningKey } from '@smgw/crypto';
import type { Pool } from '@smgw/db';
import { agencyKeyAad, type KeyDirectoryCache, sealedAgencyKeys } from '@smgw/key-directory';
import { openSecretWithAny, SecretError } from '@smgw/secrets';

export type SignForm = 'smime' | 'pgp';

export interface NotSigned {
  ok: false;
  /** Stable: ENCRYPT_NO_SIGNING_KEY, a SecretError code (the key cannot be unsealed), or a signing failure code. */
  code: string;
  reason: string;
}

export type SmimeSigner = { ok: true; fingerprint: string; key: SigningKey; privateKey: Buffer } | NotSigned;
export type PgpSigner = { ok: true; fingerprint: string; key: ArmoredPrivateKey } | NotSigned;

/**
 * The author's signing keys of both forms when its agency signs: each unsealed, or why it cannot be used. The caller
 * zeroes them with forgetSigningKeys when done.
 */
export type SenderSigning = { signs: false } | { signs: true; smime: SmimeSigner; pgp: PgpSigner };

/**
 * An envelope without an author (accepted before ingest checked From) is never signed with the envelope sender's
 * key instead: when that sender's agency signs, its copies go unsigned and say why.
 */
export async function senderSigningKeys(
  deps: SealedKeyDeps,
  message: { mailFrom: string; author?: string | undefined },
): Promise<SenderSigning> {
  const { author } = message;
  if (!author) {
    if (!(await senderAgencySigns(deps, message.mailFrom))) return { signs: false };
    const why: NotSigned = {
      ok: false,
      code: 'ENCRYPT_NO_CHECKED_AUTHOR',
      reason: 'no From address checked at submission: the envelope sender does not choose the signing key',
    };
    return { signs: true, smime: why, pgp: why };
  }
  if (!(await senderAgencySigns(deps, author))) return { signs: false };
  // OpenPGP first: should the second lookup fail, no unsealed S/MIME key is left behind unzeroed.
  const pgp = await pgpSignerFor(deps, author);
  return { signs: true, smime: await smimeSignerFor(deps, author), pgp };
}

/** Zeroes the unsealed S/MIME private key (the armored OpenPGP key is a string and cannot be zeroed). */
export function forgetSigningKeys(signing: SenderSigning): void {
  if (signing.signs && signing.smime.ok) signing.smime.privateKey.fill(0);
}

/** Whether outbound mail by `sender` is to be signed: its domain belongs to an agency with signing on. */
async function senderAgencySigns(deps: SealedKeyDeps, sender: string): Promise<boolean> {
  if (!sender.includes('@')) return false; // the null sender of a bounce belongs to no agency
  return (await deps.keyDirectory.agencySigningFor(sender))?.signOutbound === true;
}

/**
 * The sender address's newest key of the form, unsealed. The caller zeroes `privateKey` (S/MIME) when done; the
 * armored OpenPGP key is a string and cannot be zeroed.
 */
async function smimeSignerFor(deps: SealedKeyDeps, sender: string): Promise<SmimeSigner> {
  const opened = await openSigningKey(deps, sender, 'smime');
  if (!opened.ok) return opened;
  if (!opened.certificate) {
    opened.secret.fill(0);
    return { ok: false, code: 'ENCRYPT_NO_SIGNING_KEY', reason: `the smime key of ${sender} has no certificate` };
  }
  return {
    ok: true,
    fingerprint: opened.fingerprint,
    key: { certificate: opened.certificate, privateKey: opened.secret },
    privateKey: opened.secret,
  };
}

async function pgpSignerFor(deps: SealedKeyDeps, sender: string): Promise<PgpSigner> {
  const opened = await openSigningKey(deps, sender, 'pgp');
  if (!opened.ok) return opened;
  const armored = opened.secret.toString('utf8');
  opened.secret.fill(0);
  return { ok: true, fingerprint: opened.fingerprint, key: { armored } };
}

async function openSigningKey(
  deps: SealedKeyDeps,
  sender: string,
  form: SignForm,
): Promise<{ ok: true; fingerprint: string; certificate: Buffer | null; secret: Buffer } | NotSigned> {
  const address = sender.toLowerCase();
  const [key] = await sealedAgencyKeys(deps.pool, [address], form); // newest first
  if (!key) return { ok: false, code: 'ENCRYPT_NO_SIGNING_KEY', reason: `no ${form} key held for ${address}` };
  try {
    const secret = openSecretWithAny(masterKeyRing(deps), key.sealedPrivateKey, {
      aad: agencyKeyAad(key.address, key.fingerprint),
    });
    return { ok: true, fingerprint: key.fingerprint, certificate: key.certificate, secret };
  } catch (err) {
    if (!(err instanceof SecretError)) throw err;
    return { ok: false, code: err.code, reason: `the ${form} key of ${address} cannot be unsealed: ${err.message}` };
  }
}

/** What opening a sealed agency key needs: the master key and, during a rotation, the previous one. */
export interface SealedKeyDeps {
  pool: Pool;
  /** The key directory's rarely changed tables, in memory while their changes are heard (cachedKeyDirectory). */
  keyDirectory: Pick<KeyDirectoryCache, 'agencySigningFor'>;
  masterKey: Buffer;
  /** SMGW_MASTER_KEY_PREVIOUS while a master key rotation is under way (keys still sealed under it open too). */
  masterKeyPrevious?: Buffer | undefined;
}

export function masterKeyRing(deps: Pick<SealedKeyDeps, 'masterKey' | 'masterKeyPrevious'>): Buffer[] {
  return deps.masterKeyPrevious ? [deps.masterKey, deps.masterKeyPrevious] : [deps.masterKey];
}
