// The real gpg as the independent peer of the OpenPGP tests: a throw-away GNUPGHOME per test file, keys generated
// there (never committed), and gpg run as a process with its status lines parsed.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface GpgResult {
  code: number;
  stdout: Buffer;
  stderr: string;
  /** The `[GNUPG:] ...` status lines without their prefix, e.g. 'GOODSIG 0123… Alice <a@x>'. */
  status: string[];
}

export interface KeySpec {
  kind: 'cv25519' | 'rsa3072' | 'rsa1024' | 'ed25519-sign-only';
  name: string;
  email: string;
  /** gpg Expire-Date, e.g. '1d'; default never. */
  expire?: string;
}

export interface GpgHome {
  home: string;
  run(args: string[], input?: Buffer | string): Promise<GpgResult>;
  /** Generates an unprotected key and returns its fingerprint. */
  generateKey(spec: KeySpec): Promise<string>;
  exportPublic(fingerprint: string): Promise<string>;
  exportSecret(fingerprint: string): Promise<string>;
  importKey(armored: string): Promise<void>;
  /** gpg's own revocation certificate for the key (written at generation), made importable. */
  revocationCertificate(fingerprint: string): Promise<string>;
  close(): Promise<void>;
}

const KEY_PARAMETERS: Record<KeySpec['kind'], string[]> = {
  cv25519: [
    'Key-Type: EDDSA',
    'Key-Curve: ed25519',
    'Key-Usage: sign,cert',
    'Subkey-Type: ECDH',
    'Subkey-Curve: cv25519',
    'Subkey-Usage: encrypt',
  ],
  rsa3072: [
    'Key-Type: RSA',
    'Key-Length: 3072',
    'Key-Usage: sign,cert',
    'Subkey-Type: RSA',
    'Subkey-Length: 3072',
    'Subkey-Usage: encrypt',
  ],
  rsa1024: [
    'Key-Type: RSA',
    'Key-Length: 1024',
    'Key-Usage: sign,cert',
    'Subkey-Type: RSA',
    'Subkey-Length: 1024',
    'Subkey-Usage: encrypt',
  ],
  'ed25519-sign-only': ['Key-Type: EDDSA', 'Key-Curve: ed25519', 'Key-Usage: sign,cert'],
};

export async function createGpgHome(): Promise<GpgHome> {
  // Short path: gpg-agent's socket path must stay under the Unix socket length limit.
  const home = await mkdtemp(join(tmpdir(), 'smgw-gpg-'));
  const env = { ...process.env, GNUPGHOME: home, LC_ALL: 'C' };

  const exec = (command: string, args: string[], input?: Buffer | string) =>
    new Promise<GpgResult>((resolve, reject) => {
      const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      child.on('error', reject);
      child.on('close', (code) => {
        const text = Buffer.concat(stderr).toString('utf8');
        const status = text
          .split('\n')
          .filter((line) => line.startsWith('[GNUPG:] '))
          .map((line) => line.slice(9));
        resolve({ code: code ?? -1, stdout: Buffer.concat(stdout), stderr: text, status });
      });
      child.stdin.on('error', () => {}); // gpg may exit before reading all input
      child.stdin.end(input ?? '');
    });

  const run = (args: string[], input?: Buffer | string) =>
    exec('gpg', ['--batch', '--no-tty', '--yes', '--trust-model', 'always', '--status-fd', '2', ...args], input);

  const mustRun = async (args: string[], input?: Buffer | string) => {
    const result = await run(args, input);
    if (result.code !== 0) throw new Error(`gpg ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
    return result;
  };

  return {
    home,
    run,
    async generateKey(spec) {
      const parameters = [
        '%no-protection',
        ...KEY_PARAMETERS[spec.kind],
        `Name-Real: ${spec.name}`,
        `Name-Email: ${spec.email}`,
        `Expire-Date: ${spec.expire ?? '0'}`,
        '%commit',
        '',
      ].join('\n');
      const result = await mustRun(['--gen-key'], parameters);
      const created = result.status.find((line) => line.startsWith('KEY_CREATED '));
      const fingerprint = created?.split(' ')[2];
      if (!fingerprint) throw new Error(`gpg did not report the new key: ${result.stderr}`);
      return fingerprint;
    },
    async exportPublic(fingerprint) {
      return (await mustRun(['--armor', '--export', fingerprint])).stdout.toString('utf8');
    },
    async exportSecret(fingerprint) {
      return (await mustRun(['--armor', '--export-secret-keys', fingerprint])).stdout.toString('utf8');
    },
    async importKey(armored) {
      await mustRun(['--import'], armored);
    },
    async revocationCertificate(fingerprint) {
      const text = await readFile(join(home, 'openpgp-revocs.d', `${fingerprint}.rev`), 'utf8');
      // gpg prefixes the armor line with ':' so the certificate is not imported by accident.
      return text.replace(':-----BEGIN PGP PUBLIC KEY BLOCK-----', '-----BEGIN PGP PUBLIC KEY BLOCK-----');
    },
    async close() {
      await exec('gpgconf', ['--kill', 'gpg-agent']);
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** A small RFC 5322 / MIME entity as the encrypt stage would get it. */
export function sampleEntity(body = 'Sehr geehrte Damen und Herren,\r\nanbei der Bescheid.\r\n'): Buffer {
  return Buffer.from(
    `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body}`,
    'utf8',
  );
}

/** Wraps armored OpenPGP data as a PGP/MIME message the way mail clients send it. */
export function wrapAsPgpMime(armored: string): Buffer {
  const boundary = 'b-test-1234';
  return Buffer.from(
    'From: sender@example.net\r\nTo: agency@example.gov\r\nSubject: ...\r\nMIME-Version: 1.0\r\n' +
      `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"\r\n\r\n` +
      `--${boundary}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n` +
      `--${boundary}\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n` +
      `${armored.replace(/\r?\n/g, '\r\n')}\r\n--${boundary}--\r\n`,
  );
}

/** Wraps armored OpenPGP data as inline PGP in a text/plain body. */
export function wrapAsInline(armored: string): Buffer {
  return Buffer.from(
    'From: sender@example.net\r\nTo: agency@example.gov\r\nSubject: inline\r\nMIME-Version: 1.0\r\n' +
      'Content-Type: text/plain; charset=us-ascii\r\n\r\n' +
      `${armored.replace(/\r?\n/g, '\r\n')}\r\n`,
  );
}
