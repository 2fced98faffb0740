// Test fixtures for the S/MIME tests: keys and certificates made by the real openssl in a temporary directory
// (never committed), and openssl cms as the independent peer.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type KeySpec = 'rsa-2048' | 'rsa-3072' | 'rsa-4096' | 'p-256' | 'p-384';

export interface TestIdentity {
  readonly name: string;
  readonly certificatePath: string;
  readonly keyPath: string;
  readonly certificatePem: string;
  readonly keyPem: string;
}

export interface OpensslWorkspace {
  readonly dir: string;
  identity(spec: KeySpec, name?: string): Promise<TestIdentity>;
  file(name: string, content: Uint8Array | string): Promise<string>;
  /** Runs openssl with the given arguments and returns its stdout as bytes. */
  openssl(args: readonly string[]): Promise<Buffer>;
  remove(): Promise<void>;
}

const NEW_KEY: Record<KeySpec, string[]> = {
  'rsa-2048': ['-newkey', 'rsa:2048'],
  'rsa-3072': ['-newkey', 'rsa:3072'],
  'rsa-4096': ['-newkey', 'rsa:4096'],
  'p-256': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  'p-384': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
};

export async function createOpensslWorkspace(): Promise<OpensslWorkspace> {
  const dir = await mkdtemp(join(tmpdir(), 'smgw-smime-'));
  const openssl = async (args: readonly string[]): Promise<Buffer> => {
    const { stdout } = await run('openssl', [...args], { cwd: dir, encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  };
  return {
    dir,
    openssl,
    async identity(spec, name = spec) {
      const keyPath = join(dir, `${name}.key.pem`);
      const certificatePath = join(dir, `${name}.cert.pem`);
      const usage = spec.startsWith('rsa') ? 'keyEncipherment' : 'keyAgreement';
      await openssl([
        'req',
        '-x509',
        ...NEW_KEY[spec],
        '-nodes',
        '-keyout',
        keyPath,
        '-out',
        certificatePath,
        '-subj',
        `/CN=${name}/O=SMGW Test`,
        '-days',
        '2',
        '-sha256',
        '-addext',
        `keyUsage=critical,${usage}`,
        '-addext',
        'extendedKeyUsage=emailProtection',
        '-addext',
        `subjectAltName=email:${name}@behoerde.example`,
      ]);
      return {
        name,
        keyPath,
        certificatePath,
        certificatePem: await readFile(certificatePath, 'utf8'),
        keyPem: await readFile(keyPath, 'utf8'),
      };
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
