// Test key material made by the real tools: a CA hierarchy with `openssl ca` (so dates, extensions and CRLs are
// exactly what openssl writes) and OpenPGP keys with gpg in a temporary GNUPGHOME.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  name: string;
  dir: string;
  certPem: string;
  crlUrl: string | undefined;
}

export interface LeafOptions {
  cn: string;
  email?: string;
  /** Default emailProtection. */
  eku?: string;
  /** keyUsage bits; default digitalSignature,keyEncipherment. */
  keyUsage?: string;
  /** openssl ca dates (YYYYMMDDHHMMSSZ); default: from now for 365 days. */
  start?: string;
  end?: string;
}

export interface KeyMaterial {
  dir: string;
  root: TestCa;
  intermediate: TestCa;
  /** A CA nobody trusts. */
  stranger: TestCa;
  /** A leaf signed by `ca` with its key; returns PEM of the certificate and the key's file. */
  leaf(ca: TestCa, options: LeafOptions): { certPem: string; keyFile: string; certFile: string };
  /** The current CRL of a CA, DER. */
  crl(ca: TestCa): Buffer;
  /** PKCS#12 of a leaf with its key (and the chain) under `password`; `exportOptions` go to `openssl pkcs12 -export`. */
  pkcs12(
    leaf: { certFile: string; keyFile: string },
    password: string,
    chain?: TestCa[],
    exportOptions?: readonly string[],
  ): Buffer;
  cleanup(): void;
}

const run = (cmd: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv): string =>
  execFileSync(cmd, args, { cwd, env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] }).toString();

/** `crlBase`: http://host:port/ of the test's CRL server; each CA's CRL is served at <crlBase><name>.crl. */
export function createKeyMaterial(crlBase: string | undefined): KeyMaterial {
  const dir = mkdtempSync(join(tmpdir(), 'smgw-keydir-'));
  let serial = 0x1000;

  function caConfig(ca: { dir: string; name: string; crlUrl: string | undefined }, extra: string): string {
    const file = join(ca.dir, `ext-${serial}.cnf`);
    writeFileSync(
      file,
      `[ca]
default_ca = ca_default
[ca_default]
dir = ${ca.dir}
database = ${ca.dir}/index.txt
new_certs_dir = ${ca.dir}/new
serial = ${ca.dir}/serial
crlnumber = ${ca.dir}/crlnumber
default_md = sha256
default_crl_days = 7
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
commonName = supplied
[ext]
authorityKeyIdentifier = keyid
subjectKeyIdentifier = hash
${ca.crlUrl ? `crlDistributionPoints = URI:${ca.crlUrl}` : ''}
${extra}
`,
    );
    return file;
  }

  function newCa(name: string, issuer?: TestCa): TestCa {
    const caDir = join(dir, name);
    mkdirSync(join(caDir, 'new'), { recursive: true });
    writeFileSync(join(caDir, 'index.txt'), '');
    writeFileSync(join(caDir, 'serial'), `${(serial++).toString(16)}\n`);
    writeFileSync(join(caDir, 'crlnumber'), '01\n');
    const crlUrl = crlBase ? `${crlBase}${name}.crl` : undefined;
    const ca: TestCa = { name, dir: caDir, certPem: '', crlUrl };
    if (!issuer) {
      run(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-sha256',
          '-days',
          '3650',
          '-subj',
          `/CN=${name}`,
          '-keyout',
          'ca.key',
          '-out',
          'ca.pem',
          '-addext',
          'basicConstraints=critical,CA:true',
          '-addext',
          'keyUsage=critical,keyCertSign,cRLSign',
        ],
        caDir,
      );
    } else {
      run(
        'openssl',
        ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', 'ca.key', '-out', 'ca.csr'],
        caDir,
      );
      // The intermediate's own CRL distribution point is its issuer's (who revokes it).
      const config = caConfig(issuer, 'basicConstraints = critical,CA:true\nkeyUsage = critical,keyCertSign,cRLSign');
      run(
        'openssl',
        [
          'ca',
          '-batch',
          '-notext',
          '-config',
          config,
          '-cert',
          join(issuer.dir, 'ca.pem'),
          '-keyfile',
          join(issuer.dir, 'ca.key'),
          '-in',
          'ca.csr',
          '-out',
          'ca.pem',
          '-days',
          '1825',
          '-extensions',
          'ext',
        ],
        caDir,
      );
    }
    ca.certPem = readFileSync(join(caDir, 'ca.pem'), 'utf8');
    return ca;
  }

  const root = newCa('root');
  const intermediate = newCa('intermediate', root);
  const stranger = newCa('stranger');
  let leaves = 0;

  return {
    dir,
    root,
    intermediate,
    stranger,
    leaf(ca, options) {
      const base = join(dir, `leaf-${++leaves}`);
      run(
        'openssl',
        [
          'req',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-subj',
          `/CN=${options.cn}`,
          '-keyout',
          `${base}.key`,
          '-out',
          `${base}.csr`,
        ],
        dir,
      );
      const extensions = [
        'basicConstraints = critical,CA:false',
        `keyUsage = critical,${options.keyUsage ?? 'digitalSignature,keyEncipherment'}`,
        `extendedKeyUsage = ${options.eku ?? 'emailProtection'}`,
        options.email ? `subjectAltName = email:${options.email}` : '',
      ].join('\n');
      const config = caConfig(ca, extensions);
      const dates = options.start
        ? ['-startdate', options.start, '-enddate', options.end ?? '20991231000000Z']
        : ['-days', '365'];
      run(
        'openssl',
        [
          'ca',
          '-batch',
          '-notext',
          '-config',
          config,
          '-cert',
          join(ca.dir, 'ca.pem'),
          '-keyfile',
          join(ca.dir, 'ca.key'),
          '-in',
          `${base}.csr`,
          '-out',
          `${base}.pem`,
          '-extensions',
          'ext',
          ...dates,
        ],
        dir,
      );
      return { certPem: readFileSync(`${base}.pem`, 'utf8'), keyFile: `${base}.key`, certFile: `${base}.pem` };
    },
    crl(ca) {
      const config = caConfig(ca, '');
      run(
        'openssl',
        [
          'ca',
          '-gencrl',
          '-config',
          config,
          '-cert',
          join(ca.dir, 'ca.pem'),
          '-keyfile',
          join(ca.dir, 'ca.key'),
          '-out',
          'crl.pem',
        ],
        ca.dir,
      );
      run('openssl', ['crl', '-in', 'crl.pem', '-outform', 'DER', '-out', 'crl.der'], ca.dir);
      return readFileSync(join(ca.dir, 'crl.der'));
    },
    pkcs12(leaf, password, chain = [], exportOptions = []) {
      const out = join(dir, `p12-${++leaves}.p12`);
      const chainFile = join(dir, `chain-${leaves}.pem`);
      writeFileSync(chainFile, chain.map((c) => c.certPem).join(''));
      run(
        'openssl',
        [
          'pkcs12',
          '-export',
          '-inkey',
          leaf.keyFile,
          '-in',
          leaf.certFile,
          ...(chain.length ? ['-certfile', chainFile] : []),
          '-passout',
          `pass:${password}`,
          '-out',
          out,
          ...exportOptions,
        ],
        dir,
      );
      return readFileSync(out);
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface GpgKeys {
  /** Armored public keys. */
  usable: string;
  usableFingerprint: string;
  /** The usable key's secret part, armored and unprotected (a test fixture made on the spot). */
  usableSecret: string;
  expired: string;
  signOnly: string;
  /** A second usable key naming bob@example.org and dora@example.org (bob's new key, or a stranger's). */
  second: string;
  secondFingerprint: string;
  /** A usable key of carla@example.org alone (one her portal upload brought first). */
  carla: string;
  carlaFingerprint: string;
  cleanup(): void;
}

/**
 * OpenPGP public keys made by gpg: a usable one (ed25519 + cv25519 subkey), an expired one, a sign-only one, a second
 * usable one that also names the first one's address, and a usable one of another address.
 */
export function createGpgKeys(): GpgKeys {
  const home = mkdtempSync(join(tmpdir(), 'smgw-gpg-'));
  const env = { ...process.env, GNUPGHOME: home };
  const gpg = (...args: string[]): string =>
    run('gpg', ['--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], home, env);
  gpg('--quick-gen-key', 'Bob Buerger <bob@example.org>', 'future-default', 'default', '1y');
  gpg(
    '--faked-system-time',
    '20200101T000000',
    '--quick-gen-key',
    'Old Key <old@example.org>',
    'future-default',
    'default',
    '1d',
  );
  gpg('--quick-gen-key', 'Signer Only <signer@example.org>', 'ed25519', 'sign', '1y');
  gpg('--quick-gen-key', 'Dora <dora@example.org>', 'future-default', 'default', '1y');
  gpg('--quick-gen-key', 'Carla <carla@example.org>', 'future-default', 'default', '1y');
  const exportKey = (uid: string): string => gpg('--armor', '--export', uid);
  const fingerprintOf = (uid: string): string => {
    const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(gpg('--with-colons', '--fingerprint', uid))?.[1];
    if (!fingerprint) throw new Error('gpg printed no fingerprint');
    return fingerprint;
  };
  const fingerprint = fingerprintOf('Bob Buerger <bob@example.org>');
  const secondFingerprint = fingerprintOf('dora@example.org');
  gpg('--quick-add-uid', secondFingerprint, 'Bob Neu <bob@example.org>');
  return {
    usable: exportKey(fingerprint),
    usableFingerprint: fingerprint,
    usableSecret: gpg('--armor', '--export-secret-keys', fingerprint),
    expired: exportKey('old@example.org'),
    signOnly: exportKey('signer@example.org'),
    second: exportKey(secondFingerprint),
    secondFingerprint,
    carla: exportKey('carla@example.org'),
    carlaFingerprint: fingerprintOf('carla@example.org'),
    cleanup() {
      try {
        run('gpgconf', ['--kill', 'all'], home, env);
      } catch {}
      // The agent may still be removing its sockets while we delete the directory.
      rmSync(home, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    },
  };
}
