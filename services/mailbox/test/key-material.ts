// Certificates and OpenPGP keys for the bring-your-own-key tests: a CA and S/MIME leaf certificates made by openssl,
// public keys made by gpg, all in a temporary folder.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Ca {
  certPath: string;
  keyPath: string;
  der: Buffer;
}

export interface KeyMaterial {
  ca(name: string): Promise<Ca>;
  /** An S/MIME leaf for `address` under `ca` (PEM), for e-mail protection unless `eku` says otherwise. */
  leaf(ca: Ca, address: string, options?: { eku?: string; days?: number }): Promise<string>;
  /** An armored OpenPGP public key (ed25519 + cv25519) with a user ID for each address. */
  pgpKey(addresses: string[], expire?: string): Promise<string>;
  remove(): Promise<void>;
}

export async function createKeyMaterial(): Promise<KeyMaterial> {
  const dir = await mkdtemp(join(tmpdir(), 'smgw-byok-'));
  const gnupgHome = join(dir, 'gnupg');
  await run('mkdir', ['-m', '700', gnupgHome]);
  const gpgEnv = { ...process.env, GNUPGHOME: gnupgHome, LC_ALL: 'C' };
  let serial = 100;
  const openssl = (args: string[]) => run('openssl', args, { cwd: dir });
  return {
    async ca(name) {
      const keyPath = join(dir, `${name}.key`);
      const certPath = join(dir, `${name}.pem`);
      await openssl([
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        keyPath,
        '-out',
        certPath,
        '-subj',
        `/CN=${name}/O=SMGW Test`,
        '-days',
        '3650',
        '-sha256',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ]);
      return { certPath, keyPath, der: Buffer.from(new X509Certificate(await readFile(certPath)).raw) };
    },
    async leaf(ca, address, options = {}) {
      serial += 1;
      const name = `leaf-${serial}`;
      const extPath = join(dir, `${name}.ext`);
      await openssl([
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(dir, `${name}.key`),
        '-out',
        join(dir, `${name}.csr`),
        '-subj',
        `/CN=${address}`,
      ]);
      await writeFile(
        extPath,
        [
          '[ leaf ]',
          'basicConstraints = critical,CA:FALSE',
          'keyUsage = critical,digitalSignature,keyAgreement',
          `extendedKeyUsage = ${options.eku ?? 'emailProtection'}`,
          `subjectAltName = email:${address}`,
          '',
        ].join('\n'),
      );
      await openssl([
        'x509',
        '-req',
        '-in',
        join(dir, `${name}.csr`),
        '-CA',
        ca.certPath,
        '-CAkey',
        ca.keyPath,
        '-set_serial',
        String(serial),
        '-out',
        join(dir, `${name}.pem`),
        '-days',
        String(options.days ?? 30),
        '-sha256',
        '-extfile',
        extPath,
        '-extensions',
        'leaf',
      ]);
      return readFile(join(dir, `${name}.pem`), 'utf8');
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
    async remove() {
      await run('gpgconf', ['--kill', 'gpg-agent'], { env: gpgEnv }).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}
