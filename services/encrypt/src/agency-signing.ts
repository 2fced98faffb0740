// Signing before encryption, per agency (issue 4): when the sender's agency (the one owning the envelope sender's
// domain) has signing switched on, each encrypted copy is first signed with the sender address's own key of that
// form. A missing or unusable key never blocks the mail: the copy goes encrypted but unsigned, and says why.
import { Readable } from 'node:stream';
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

/**
 * The sender's signing keys of both forms when its agency signs: each unsealed, or why it cannot be used. The caller
 * zeroes them with forgetSigningKeys when done.
 */
export type SenderSigning = { signs: false } | { signs: true; smime: SmimeSigner; pgp: PgpSigner };

export async function senderSigningKeys(
  deps: { pool: Pool; masterKey: Buffer },
  sender: string,
): Promise<SenderSigning> {
  if (!(await senderAgencySigns(deps.pool, sender))) return { signs: false };
  // OpenPGP first: should the second lookup fail, no unsealed S/MIME key is left behind unzeroed.
  const pgp = await pgpSignerFor(deps, sender);
  return { signs: true, smime: await smimeSignerFor(deps, sender), pgp };
}

/** Zeroes the unsealed S/MIME private key (the armored OpenPGP key is a string and cannot be zeroed). */
export function forgetSigningKeys(signing: SenderSigning): void {
  if (signing.signs && signing.smime.ok) signing.smime.privateKey.fill(0);
}

/** Whether outbound mail from `sender` is to be signed: its domain belongs to an agency with signing on. */
async function senderAgencySigns(pool: Pool, sender: string): Promise<boolean> {
  if (!sender.includes('@')) return false; // the null sender of a bounce belongs to no agency
  return (await agencySigningFor(pool, sender))?.signOutbound === true;
}

/**
 * The sender address's newest key of the form, unsealed. The caller zeroes `privateKey` (S/MIME) when done; the
 * armored OpenPGP key is a string and cannot be zeroed.
 */
async function smimeSignerFor(deps: { pool: Pool; masterKey: Buffer }, sender: string): Promise<SmimeSigner> {
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

async function pgpSignerFor(deps: { pool: Pool; masterKey: Buffer }, sender: string): Promise<PgpSigner> {
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

/** The entity with every line end as CRLF: what an S/MIME signature covers (RFC 8551 §3.1.1). */
export function canonicalLineEnds(entity: Buffer): Buffer {
  if (!/\r(?!\n)|(?<!\r)\n/.test(entity.toString('latin1'))) return entity;
  return Buffer.from(entity.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
}

/**
 * The whole stream in memory when it is at most maxBytes long. Past that, what was read and the rest of the stream
 * as one stream again, so an unsigned copy can still be made of it without reading the message a second time.
 */
export async function readWholeUpTo(
  stream: Readable,
  maxBytes: number,
): Promise<{ whole: Buffer } | { tooLarge: Readable }> {
  const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  const chunks: Buffer[] = [];
  let length = 0;
  for (;;) {
    const chunk = await iterator.next();
    if (chunk.done) return { whole: Buffer.concat(chunks, length) };
    const bytes = Buffer.from(chunk.value);
    chunks.push(bytes);
    length += bytes.length;
    if (length > maxBytes) {
      const again = Readable.from(replay(chunks, iterator), { objectMode: false });
      // Destroyed before it was read, the generator never runs its finally: release the source here too.
      again.once('close', () => stream.destroy());
      return { tooLarge: again };
    }
  }
}

async function* replay(read: Buffer[], rest: AsyncIterator<Uint8Array>): AsyncGenerator<Buffer> {
  try {
    yield* read;
    for (;;) {
      const chunk = await rest.next();
      if (chunk.done) return;
      yield Buffer.from(chunk.value);
    }
  } finally {
    await rest.return?.();
  }
}
