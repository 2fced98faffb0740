// Signing before encryption, per agency (issue 4): when the sender's agency (the one owning the envelope sender's
// domain) has signing switched on, each encrypted copy is first signed with the sender address's own key of that
// form. A missing or unusable key never blocks the mail: the copy goes encrypted but unsigned, and says why.
import type { Readable } from 'node:stream';
import type { ArmoredPrivateKey, SigningKey } from '@smgw/crypto';
import type { Pool } from '@smgw/db';
import { agencyKeyAad, agencySigningFor, sealedAgencyKeys } from '@smgw/key-directory';
import { openSecret, SecretError } from '@smgw/secrets';

export type SignForm = 'smime' | 'pgp';

export interface NotSigned {
  ok: false;
  /** Stable: ENCRYPT_NO_SIGNING_KEY, a SecretError code (the key cannot be unsealed), or a signing failure code. */
  code: string;
  reason: string;
}

export type SmimeSigner = { ok: true; fingerprint: string; key: SigningKey; privateKey: Buffer } | NotSigned;
export type PgpSigner = { ok: true; fingerprint: string; key: ArmoredPrivateKey } | NotSigned;

/** Whether outbound mail from `sender` is to be signed: its domain belongs to an agency with signing on. */
export async function senderAgencySigns(pool: Pool, sender: string): Promise<boolean> {
  if (!sender.includes('@')) return false; // the null sender of a bounce belongs to no agency
  return (await agencySigningFor(pool, sender))?.signOutbound === true;
}

/**
 * The sender address's newest key of the form, unsealed. The caller zeroes `privateKey` (S/MIME) when done; the
 * armored OpenPGP key is a string and cannot be zeroed.
 */
export async function smimeSignerFor(deps: { pool: Pool; masterKey: Buffer }, sender: string): Promise<SmimeSigner> {
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

export async function pgpSignerFor(deps: { pool: Pool; masterKey: Buffer }, sender: string): Promise<PgpSigner> {
  const opened = await openSigningKey(deps, sender, 'pgp');
  if (!opened.ok) return opened;
  const armored = opened.secret.toString('utf8');
  opened.secret.fill(0);
  return { ok: true, fingerprint: opened.fingerprint, key: { armored } };
}

async function openSigningKey(
  deps: { pool: Pool; masterKey: Buffer },
  sender: string,
  form: SignForm,
): Promise<{ ok: true; fingerprint: string; certificate: Buffer | null; secret: Buffer } | NotSigned> {
  const address = sender.toLowerCase();
  const [key] = await sealedAgencyKeys(deps.pool, [address], form); // newest first
  if (!key) return { ok: false, code: 'ENCRYPT_NO_SIGNING_KEY', reason: `no ${form} key held for ${address}` };
  try {
    const secret = openSecret(deps.masterKey, key.sealedPrivateKey, {
      aad: agencyKeyAad(key.address, key.fingerprint),
    });
    return { ok: true, fingerprint: key.fingerprint, certificate: key.certificate, secret };
  } catch (err) {
    if (!(err instanceof SecretError)) throw err;
    return { ok: false, code: err.code, reason: `the ${form} key of ${address} cannot be unsealed: ${err.message}` };
  }
}

/** The whole stream in memory, or undefined once it grows past maxBytes (the stream is then destroyed). */
export async function readBounded(stream: Readable, maxBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    const bytes = Buffer.from(chunk as Uint8Array);
    length += bytes.length;
    if (length > maxBytes) {
      stream.destroy();
      return undefined;
    }
    chunks.push(bytes);
  }
  return Buffer.concat(chunks, length);
}
