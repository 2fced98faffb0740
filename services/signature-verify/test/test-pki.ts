// A test PKI made by the real openssl in a temporary directory (never committed): a root CA with a CA database (for
// revoking and CRLs), signers issued by it, and `openssl cms -sign` as the independent signer of S/MIME mail.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Signer {
  name: string;
  email: string;
  certificatePath: string;
  keyPath: string;
  der: Buffer;
}

export class TestPki {
  readonly dir: string;
  readonly ca: { certificatePath: string; keyPath: string; der: Buffer; config: string };

  private constructor(dir: string, ca: TestPki['ca']) {
    this.dir = dir;
    this.ca = ca;
  }

  static async create(name: string): Promise<TestPki> {
    const dir = await mkdtemp(join(tmpdir(), 'smgw-verify-service-'));
    await mkdir(join(dir, 'issued'));
    await writeFile(join(dir, 'index.txt'), '');
    await writeFile(join(dir, 'serial'), '1000\n');
    await writeFile(join(dir, 'crlnumber'), '1000\n');
    const config = join(dir, 'ca.cnf');
    await writeFile(
      config,
      [
        '[ca]',
        'default_ca = ca_default',
        '[ca_default]',
        `dir = ${dir}`,
        'database = $dir/index.txt',
        'new_certs_dir = $dir/issued',
        'serial = $dir/serial',
        'crlnumber = $dir/crlnumber',
        'default_md = sha256',
        'default_days = 365',
        'default_crl_days = 30',
        'policy = policy_any',
        'unique_subject = no',
        'copy_extensions = none',
        '[policy_any]',
        'commonName = supplied',
        'organizationName = optional',
        '',
      ].join('\n'),
    );
    const certificatePath = join(dir, 'ca.cert.pem');
    const keyPath = join(dir, 'ca.key.pem');
    await openssl(dir, [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certificatePath,
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
    return new TestPki(dir, { certificatePath, keyPath, der: await derOf(certificatePath), config });
  }

  remove(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true });
  }

  async signer(name: string, email: string, crlUrl: string): Promise<Signer> {
    const keyPath = join(this.dir, `${name}.key.pem`);
    const requestPath = join(this.dir, `${name}.csr.pem`);
    const certificatePath = join(this.dir, `${name}.cert.pem`);
    await openssl(this.dir, [
      'req',
      '-new',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      requestPath,
      '-subj',
      `/CN=${name}/O=SMGW Test`,
    ]);
    const extfile = join(this.dir, `${name}.ext`);
    await writeFile(
      extfile,
      [
        '[ext]',
        'basicConstraints = critical,CA:FALSE',
        'keyUsage = critical,digitalSignature,nonRepudiation',
        'extendedKeyUsage = emailProtection',
        `subjectAltName = email:${email}`,
        `crlDistributionPoints = URI:${crlUrl}`,
        '',
      ].join('\n'),
    );
    await openssl(this.dir, [
      'ca',
      '-batch',
      '-config',
      this.ca.config,
      '-cert',
      this.ca.certificatePath,
      '-keyfile',
      this.ca.keyPath,
      '-in',
      requestPath,
      '-out',
      certificatePath,
      '-extfile',
      extfile,
      '-extensions',
      'ext',
      '-notext',
      '-days',
      '365',
    ]);
    return { name, email, certificatePath, keyPath, der: await derOf(certificatePath) };
  }

  async revoke(signer: Signer): Promise<void> {
    await openssl(this.dir, [
      'ca',
      '-config',
      this.ca.config,
      '-cert',
      this.ca.certificatePath,
      '-keyfile',
      this.ca.keyPath,
      '-revoke',
      signer.certificatePath,
    ]);
  }

  /** The CA's current CRL, DER. */
  async crl(): Promise<Buffer> {
    const pem = join(this.dir, 'ca.crl.pem');
    const args = ['-config', this.ca.config, '-cert', this.ca.certificatePath, '-keyfile', this.ca.keyPath];
    await openssl(this.dir, ['ca', ...args, '-gencrl', '-out', pem]);
    return openssl(this.dir, ['crl', '-in', pem, '-outform', 'DER']);
  }

  /**
   * An S/MIME message as a mail client sends it: `openssl cms -sign` (detached, multipart/signed) over `entity`
   * exactly as given, with the header fields in front.
   */
  async signedMail(header: readonly string[], entity: Buffer, signer: Signer): Promise<Buffer> {
    const input = join(this.dir, `entity-${Math.random().toString(36).slice(2)}.eml`);
    await writeFile(input, entity);
    const signed = await openssl(this.dir, [
      'cms',
      '-sign',
      '-binary',
      '-crlfeol',
      '-in',
      input,
      '-signer',
      signer.certificatePath,
      '-inkey',
      signer.keyPath,
    ]);
    // openssl writes the signature's base64 with bare LF even with -crlfeol; a mail client sends CRLF lines (the
    // signed entity is CRLF already, so its bytes do not change).
    const lines = Buffer.from(signed.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
    return Buffer.concat([Buffer.from(header.map((h) => `${h}\r\n`).join(''), 'utf8'), lines]);
  }

  /** `openssl cms -verify` of a whole message against the CA: true when openssl says the signature holds. */
  async opensslVerifies(message: Buffer): Promise<boolean> {
    const input = join(this.dir, `verify-${Math.random().toString(36).slice(2)}.eml`);
    await writeFile(input, message);
    try {
      await openssl(this.dir, [
        'cms',
        '-verify',
        '-in',
        input,
        '-CAfile',
        this.ca.certificatePath,
        '-out',
        '/dev/null',
      ]);
      return true;
    } catch {
      return false;
    }
  }

  async file(name: string, content: Uint8Array | string): Promise<string> {
    const path = join(this.dir, name);
    await writeFile(path, content);
    return path;
  }
}

async function openssl(cwd: string, args: readonly string[]): Promise<Buffer> {
  const { stdout } = await run('openssl', [...args], { cwd, encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

async function derOf(certificatePath: string): Promise<Buffer> {
  return Buffer.from(new X509Certificate(await readFile(certificatePath)).raw);
}
