// Certificates and OpenPGP keys for the bring-your-own-key tests: a CA and S/MIME leaf certificates (EC P-256) made
// by openssl through the shared test PKI (@smgw/crypto/testing), public keys made by gpg, all in temporary folders.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTestPki, type TestCa } from '@smgw/crypto/testing';

const run = promisify(execFile);

export type Ca = TestCa;

export interface KeyMaterial {
  ca(name: string): Promise<Ca>;
  /** An S/MIME leaf for `address` under `ca` (PEM), for e-mail protection unless `eku` says otherwise. */
  leaf(
    ca: Ca,
    address: string,
    options?: { eku?: 'emailProtection' | 'serverAuth'; days?: number; moreAddresses?: string[] },
  ): Promise<string>;
  /** An armored OpenPGP public key (ed25519 + cv25519) with a user ID for each address. */
  pgpKey(addresses: string[], expire?: string): Promise<string>;
  /** The key made by pgpKey with that fingerprint, revoked by its holder (gpg's revocation certificate), armored. */
  pgpRevoked(fingerprint: string): Promise<string>;
  remove(): Promise<void>;
}

export async function createKeyMaterial(): Promise<KeyMaterial> {
  const [pki, dir] = await Promise.all([createTestPki('smgw-byok-pki-'), mkdtemp(join(tmpdir(), 'smgw-byok-'))]);
  const gnupgHome = join(dir, 'gnupg');
  await run('mkdir', ['-m', '700', gnupgHome]);
  const gpgEnv = { ...process.env, GNUPGHOME: gnupgHome, LC_ALL: 'C' };
  return {
    ca: (name) => pki.ca(name, { key: 'p-256' }),
    async leaf(ca, address, options = {}) {
      const leaf = await pki.leaf(ca, address, { key: 'p-256', ...options });
      return readFile(leaf.certPath, 'utf8');
    },
    async pgpKey(addresses, expire = '0') {
      const [first, ...more] = addresses as [string, ...string[]];
      const gpg = (args: string[]) =>
        run('gpg', ['--batch', '--no-tty', '--yes', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], {
          env: gpgEnv,
        });
      await gpg(['--quick-gen-key', first, 'ed25519', 'sign,cert', expire]);
      const { stdout } = await gpg(['--list-keys', '--with-colons', first]);
      const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(stdout)?.[1];
      if (!fingerprint) throw new Error('gpg made no key');
      await gpg(['--quick-add-key', fingerprint, 'cv25519', 'encr', expire]);
      for (const address of more) await gpg(['--quick-add-uid', fingerprint, address]);
      return (await gpg(['--armor', '--export', fingerprint])).stdout;
    },
    async pgpRevoked(fingerprint) {
      const gpg = (args: string[]) => run('gpg', ['--batch', '--no-tty', '--yes', ...args], { env: gpgEnv });
      // gpg writes the certificate at key creation with a ':' before its armor line, so it is not imported by mistake.
      const certificate = await readFile(join(gnupgHome, 'openpgp-revocs.d', `${fingerprint}.rev`), 'utf8');
      const revocation = join(dir, `${fingerprint}.rev`);
      await writeFile(revocation, certificate.replace(':-----BEGIN', '-----BEGIN'));
      await gpg(['--import', revocation]);
      return (await gpg(['--armor', '--export', fingerprint])).stdout;
    },
    async remove() {
      await run('gpgconf', ['--kill', 'gpg-agent'], { env: gpgEnv }).catch(() => {});
      await Promise.all([rm(dir, { recursive: true, force: true }), pki.remove()]);
    },
  };
}
