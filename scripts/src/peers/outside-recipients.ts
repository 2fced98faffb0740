// The outside recipients of the bench's encrypting paths, with their keys put into the gateway's key directory the
// way an operator puts them there: a test CA as trust anchor and a recipient certificate accepted only because it
// validates against it (what the admin API's POST /trust-anchors and POST /certificates do), and an OpenPGP key made
// by gpg, imported and approved (POST /pgp-keys, then approve). Each recipient can open what reached the sink with its
// private key (openssl, gpg), so the run can show that the outside got the load encrypted to it.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { createRevocationFetcher, inspectPublicKey, readPemCertificates } from '@smgw/crypto';
import type { TestPki } from '@smgw/crypto/testing';
import type { Pool } from '@smgw/db';
import { acceptRecipientCertificate, addPgpKey, addTrustAnchor, approvePgpKey } from '@smgw/key-directory';

const run = promisify(execFile);
const OPERATOR = 'bench';

export interface OutsideRecipient {
  address: string;
  /** What the recipient reads in one message as smtp-sink dumped it: decrypted with its private key. */
  open(dumpedFile: string): Promise<string>;
}

/** A gpg key pair made in `gnupgHome`: a certifying primary key and an encryption subkey, valid for one day. */
export async function generateGpgKey(
  gnupgHome: string,
  email: string,
  primary: string,
  encryption: string,
): Promise<{ fingerprint: string; armored: string }> {
  const gpg = (gpgArgs: string[]) =>
    run('gpg', ['--batch', ...gpgArgs], { env: { ...process.env, GNUPGHOME: gnupgHome } });
  await gpg(['--passphrase', '', '--quick-gen-key', `Bench <${email}>`, primary, 'cert', '1d']);
  const { stdout: listing } = await gpg(['--with-colons', '--fingerprint', '--list-keys', `<${email}>`]);
  const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(listing)?.[1];
  if (!fingerprint) throw new Error(`gpg made no key for ${email}`);
  await gpg(['--passphrase', '', '--quick-add-key', fingerprint, encryption, 'encr', '1d']);
  const { stdout: armored } = await gpg(['--armor', '--export', fingerprint]);
  return { fingerprint, armored };
}

/** A CA of the test PKI becomes a trust anchor, and `address` gets a certificate (RSA-3072) from it, validated in. */
export async function addSmimeRecipient(pool: Pool, pki: TestPki, address: string): Promise<OutsideRecipient> {
  const ca = await pki.ca('Bench-Outside-CA');
  const leaf = await pki.leaf(ca, address, { key: 'rsa-3072' });
  const [anchor] = readPemCertificates(await readFile(ca.certPath, 'utf8'));
  if (!anchor?.isCa) throw new Error('the bench CA is no CA certificate');
  await addTrustAnchor(pool, {
    fingerprint: anchor.fingerprint,
    subject: anchor.subject,
    der: anchor.der,
    notBefore: anchor.notBefore,
    notAfter: anchor.notAfter,
    addedBy: OPERATOR,
  });
  const now = () => new Date();
  const accepted = await acceptRecipientCertificate(pool, {
    chain: readPemCertificates(await readFile(leaf.certPath, 'utf8')),
    source: 'admin',
    by: OPERATOR,
    now: now(),
    // As the gateway runs in the bench (SMGW_REVOCATION_MODE=off): the test CA publishes no CRL.
    revocationMode: 'off',
    revocationFetcher: createRevocationFetcher({ now }),
  });
  if (!accepted.ok)
    throw new Error(`the bench certificate for ${address} was refused: ${accepted.code} ${accepted.reason}`);
  return {
    address,
    async open(dumpedFile) {
      const { stdout } = await run(
        'openssl',
        ['cms', '-decrypt', '-in', dumpedFile, '-recip', leaf.certPath, '-inkey', leaf.keyPath],
        { maxBuffer: 64 * 1024 * 1024 },
      );
      return stdout;
    },
  };
}

/** `address` gets an OpenPGP key as gpg makes one by default (ed25519, cv25519 subkey), imported and approved. */
export async function addPgpRecipient(pool: Pool, gnupgHome: string, address: string): Promise<OutsideRecipient> {
  const { armored } = await generateGpgKey(gnupgHome, address, 'ed25519', 'cv25519');
  const info = await inspectPublicKey(armored);
  if (info.problems.length > 0 || !info.addresses.includes(address)) {
    throw new Error(`the bench key for ${address} would be refused: ${info.problems.map((p) => p.code).join(', ')}`);
  }
  await addPgpKey(pool, {
    fingerprint: info.fingerprint,
    armored: info.armored,
    addresses: info.addresses,
    algorithm: info.curve ? `${info.algorithm} ${info.curve}` : `${info.algorithm} ${info.bits ?? ''}`.trim(),
    expiresAt: info.expires,
    source: 'imported',
  });
  await approvePgpKey(pool, { fingerprint: info.fingerprint, operator: OPERATOR, at: new Date() });
  return {
    address,
    async open(dumpedFile) {
      // gpg reads the armored message out of the PGP/MIME text around it.
      const { stdout } = await run('gpg', ['--batch', '--quiet', '--decrypt', dumpedFile], {
        env: { ...process.env, GNUPGHOME: gnupgHome },
        maxBuffer: 64 * 1024 * 1024,
      });
      return stdout;
    },
  };
}
