// A test CA and certificates made by the real openssl in a temporary folder (never committed), with revocation
// and CRLs through `openssl ca`: for the tests of the services that check certificates (encrypt, the portal's bring
// your own key). For tests only: `@smgw/crypto/testing`.
import { execFile, spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type KeySpec = 'rsa-2048' | 'rsa-3072' | 'rsa-4096' | 'p-256' | 'p-384';
const NEW_KEY: Record<KeySpec, string[]> = {
  'rsa-2048': ['-newkey', 'rsa:2048'],
  'rsa-3072': ['-newkey', 'rsa:3072'],
  'rsa-4096': ['-newkey', 'rsa:4096'],
  'p-256': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  'p-384': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
};

export interface TestCa {
  name: string;
  certPath: string;
  keyPath: string;
  configPath: string;
  der: Buffer;
}

export interface TestCertificate {
  address: string;
  certPath: string;
  keyPath: string;
  der: Buffer;
  keyPem: string;
  fingerprint: string;
}

export interface LeafOptions {
  key?: KeySpec;
  eku?: 'emailProtection' | 'serverAuth';
  days?: number;
  hash?: 'sha256' | 'sha1';
  /** crlDistributionPoints URL */
  crlUrl?: string;
  /** keyUsage bits (default: digitalSignature plus keyEncipherment for RSA, keyAgreement for EC) */
  keyUsage?: string;
  /** More rfc822Names in subjectAltName after the address. */
  moreAddresses?: string[];
}

export interface TestPki {
  dir: string;
  /** A self-signed CA (default an RSA 2048 key). */
  ca(name: string, options?: { key?: KeySpec }): Promise<TestCa>;
  leaf(ca: TestCa, address: string, options?: LeafOptions): Promise<TestCertificate>;
  revoke(ca: TestCa, leaf: TestCertificate): Promise<void>;
  /** The CA's current CRL (DER). */
  crl(ca: TestCa): Promise<Buffer>;
  openssl(args: string[], input?: Buffer): Promise<Buffer>;
  file(name: string, content: Buffer | string): Promise<string>;
  remove(): Promise<void>;
}

/** `prefix`: the temporary folder's name starts with it. */
export async function createTestPki(prefix = 'smgw-test-pki-'): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  let serial = 1000;
  const openssl = async (args: string[], input?: Buffer): Promise<Buffer> => {
    if (input === undefined) {
      const { stdout } = await run('openssl', args, { cwd: dir, encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 });
      return stdout;
    }
    return new Promise((resolve, reject) => {
      const child = spawn('openssl', args, { cwd: dir });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.on('error', reject);
      child.on('close', (code) =>
        code === 0
          ? resolve(Buffer.concat(out))
          : reject(new Error(`openssl ${args.join(' ')}: ${Buffer.concat(err).toString()}`)),
      );
      child.stdin.end(input);
    });
  };
  const pemToDer = (pem: string) => new X509Certificate(pem).raw;
  /** `openssl ca` acting as `ca` (its database and CRL number in its config). */
  const caCommand = (ca: TestCa) => ['ca', '-config', ca.configPath, '-keyfile', ca.keyPath, '-cert', ca.certPath];
  return {
    dir,
    openssl,
    async ca(name, options = {}) {
      const keyPath = join(dir, `${name}.key`);
      const certPath = join(dir, `${name}.pem`);
      await openssl([
        'req',
        '-x509',
        ...NEW_KEY[options.key ?? 'rsa-2048'],
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
      await writeFile(join(dir, `${name}.index`), '');
      await writeFile(join(dir, `${name}.crlnumber`), '01\n');
      const configPath = join(dir, `${name}.cnf`);
      await writeFile(
        configPath,
        [
          '[ ca ]',
          'default_ca = test_ca',
          '[ test_ca ]',
          `database = ${join(dir, `${name}.index`)}`,
          `crlnumber = ${join(dir, `${name}.crlnumber`)}`,
          'default_md = sha256',
          'default_crl_days = 30',
          '',
        ].join('\n'),
      );
      return { name, certPath, keyPath, configPath, der: pemToDer(await readFile(certPath, 'utf8')) };
    },
    async leaf(ca, address, options = {}) {
      const key = options.key ?? 'rsa-2048';
      // Taken before the first await: leaves made at once (even for one address) get files and serials of their own.
      serial += 1;
      const leafSerial = serial;
      const name = `${address.replace(/[^a-z0-9]/gi, '_')}-${leafSerial}`;
      const keyPath = join(dir, `${name}.key`);
      const csrPath = join(dir, `${name}.csr`);
      const certPath = join(dir, `${name}.pem`);
      const extPath = join(dir, `${name}.ext`);
      await openssl([
        'req',
        '-new',
        ...NEW_KEY[key],
        '-nodes',
        '-keyout',
        keyPath,
        '-out',
        csrPath,
        '-subj',
        `/CN=${address}`,
      ]);
      const usage = key.startsWith('rsa') ? 'digitalSignature,keyEncipherment' : 'digitalSignature,keyAgreement';
      await writeFile(
        extPath,
        [
          '[ leaf ]',
          'basicConstraints = critical,CA:FALSE',
          `keyUsage = critical,${options.keyUsage ?? usage}`,
          `extendedKeyUsage = ${options.eku ?? 'emailProtection'}`,
          `subjectAltName = ${[address, ...(options.moreAddresses ?? [])].map((a) => `email:${a}`).join(',')}`,
          ...(options.crlUrl ? [`crlDistributionPoints = URI:${options.crlUrl}`] : []),
          '',
        ].join('\n'),
      );
      await openssl([
        'x509',
        '-req',
        '-in',
        csrPath,
        '-CA',
        ca.certPath,
        '-CAkey',
        ca.keyPath,
        '-set_serial',
        String(leafSerial),
        '-out',
        certPath,
        '-days',
        String(options.days ?? 30),
        `-${options.hash ?? 'sha256'}`,
        '-extfile',
        extPath,
        '-extensions',
        'leaf',
      ]);
      const der = pemToDer(await readFile(certPath, 'utf8'));
      return {
        address,
        certPath,
        keyPath,
        der,
        keyPem: await readFile(keyPath, 'utf8'),
        fingerprint: createHash('sha256').update(der).digest('hex'),
      };
    },
    async revoke(ca, leaf) {
      await openssl([...caCommand(ca), '-revoke', leaf.certPath]);
    },
    async crl(ca) {
      // Issued a minute back: a CRL made on request must not have a thisUpdate (whole seconds) after the
      // validation time the gateway took a moment before fetching it.
      const lastUpdate = `${new Date(Date.now() - 60_000).toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
      const pem = await openssl([...caCommand(ca), '-gencrl', '-crl_lastupdate', lastUpdate]);
      return openssl(['crl', '-inform', 'PEM', '-outform', 'DER'], pem);
    },
    async file(name, content) {
      const path = join(dir, name);
      await writeFile(path, content);
      return path;
    },
    async remove() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}
