// A test PKI made by the real openssl in a temporary directory (never committed): a trusted root with a signing CA,
// an untrusted root, signers of each key type, an expired one, a revoked one with its CRL, a qualified one with QC
// statements, and `openssl cms -sign` as the independent signer. Messages are assembled here byte for byte.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Authority {
  name: string;
  dir: string;
  certificatePath: string;
  keyPath: string;
  der: Buffer;
}

export interface Signer {
  name: string;
  email: string;
  certificatePath: string;
  keyPath: string;
  der: Buffer;
}

export type KeySpec = 'rsa' | 'p-256' | 'p-384';

const NEW_KEY: Record<KeySpec, string[]> = {
  rsa: ['-newkey', 'rsa:2048'],
  'p-256': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  'p-384': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
};

/** QCStatements with QcCompliance and QcSSCD (ETSI EN 319 412-5), DER as hex. */
const QC_STATEMENTS_HEX = '30143008060604008e4601013008060604008e460104';

export class TestPki {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  static async create(): Promise<TestPki> {
    return new TestPki(await mkdtemp(join(tmpdir(), 'smgw-sigverify-')));
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  async openssl(args: readonly string[], input?: Buffer): Promise<Buffer> {
    const child = run('openssl', [...args], { cwd: this.dir, encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 });
    if (input) {
      child.child.stdin?.end(input);
    }
    const { stdout } = await child;
    return stdout;
  }

  async file(name: string, content: Uint8Array | string): Promise<string> {
    const path = join(this.dir, name);
    await writeFile(path, content);
    return path;
  }

  private async der(certificatePath: string): Promise<Buffer> {
    return Buffer.from(new X509Certificate(await readFile(certificatePath)).raw);
  }

  private async caConfig(dir: string): Promise<string> {
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
        'emailAddress = optional',
        '',
      ].join('\n'),
    );
    return config;
  }

  /** A self-signed root CA, with a CA database for issuing, revoking and CRLs. */
  async root(name: string): Promise<Authority> {
    const dir = join(this.dir, name);
    await mkdir(join(dir, 'issued'), { recursive: true });
    await writeFile(join(dir, 'index.txt'), '');
    await writeFile(join(dir, 'serial'), '1000\n');
    await writeFile(join(dir, 'crlnumber'), '1000\n');
    const keyPath = join(dir, 'ca.key.pem');
    const certificatePath = join(dir, 'ca.cert.pem');
    await this.openssl([
      'req',
      '-x509',
      ...NEW_KEY.rsa,
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
    return { name, dir, certificatePath, keyPath, der: await this.der(certificatePath) };
  }

  /** A certificate issued by `issuer` with `openssl ca` (which lets us pick start and end dates). */
  private async issue(
    issuer: Authority,
    name: string,
    spec: KeySpec,
    subject: string,
    extensions: string[],
    dates?: { start: string; end: string },
  ): Promise<{ certificatePath: string; keyPath: string; der: Buffer }> {
    const keyPath = join(this.dir, `${name}.key.pem`);
    const requestPath = join(this.dir, `${name}.csr.pem`);
    const certificatePath = join(this.dir, `${name}.cert.pem`);
    await this.openssl([
      'req',
      '-new',
      ...NEW_KEY[spec],
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      requestPath,
      '-subj',
      subject,
    ]);
    const extfile = await this.file(`${name}.ext`, `[ext]\n${extensions.join('\n')}\n`);
    await this.openssl([
      'ca',
      '-batch',
      '-config',
      await this.caConfig(issuer.dir),
      '-cert',
      issuer.certificatePath,
      '-keyfile',
      issuer.keyPath,
      '-in',
      requestPath,
      '-out',
      certificatePath,
      '-extfile',
      extfile,
      '-extensions',
      'ext',
      '-notext',
      ...(dates ? ['-startdate', dates.start, '-enddate', dates.end] : ['-days', '365']),
    ]);
    return { certificatePath, keyPath, der: await this.der(certificatePath) };
  }

  async intermediate(issuer: Authority, name: string): Promise<Authority> {
    const dir = join(this.dir, name);
    await mkdir(join(dir, 'issued'), { recursive: true });
    await writeFile(join(dir, 'index.txt'), '');
    await writeFile(join(dir, 'serial'), '2000\n');
    await writeFile(join(dir, 'crlnumber'), '2000\n');
    const issued = await this.issue(issuer, name, 'rsa', `/CN=${name}/O=SMGW Test`, [
      'basicConstraints = critical,CA:TRUE,pathlen:0',
      'keyUsage = critical,keyCertSign,cRLSign',
    ]);
    return { name, dir, ...issued };
  }

  async signer(
    issuer: Authority,
    name: string,
    options: {
      spec?: KeySpec;
      email?: string;
      /** The address only as the subject's emailAddress attribute, no SAN. */
      subjectEmailOnly?: boolean;
      qualified?: boolean;
      crlUrl?: string;
      dates?: { start: string; end: string };
    } = {},
  ): Promise<Signer> {
    const email = options.email ?? `${name}@partner.example`;
    const extensions = [
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature,nonRepudiation',
      'extendedKeyUsage = emailProtection',
      ...(options.subjectEmailOnly ? [] : [`subjectAltName = email:${email}`]),
      ...(options.qualified ? [`1.3.6.1.5.5.7.1.3 = DER:${QC_STATEMENTS_HEX}`] : []),
      ...(options.crlUrl ? [`crlDistributionPoints = URI:${options.crlUrl}`] : []),
    ];
    const subject = `/CN=${name}/O=SMGW Test${options.subjectEmailOnly ? `/emailAddress=${email}` : ''}`;
    const issued = await this.issue(issuer, name, options.spec ?? 'rsa', subject, extensions, options.dates);
    return { name, email, ...issued };
  }

  /** A time-stamping authority (RFC 3161 §2.3: extendedKeyUsage timeStamping, critical). */
  async timestampAuthority(issuer: Authority, name: string, dates?: { start: string; end: string }): Promise<Signer> {
    const issued = await this.issue(
      issuer,
      name,
      'rsa',
      `/CN=${name}/O=SMGW Test`,
      [
        'basicConstraints = critical,CA:FALSE',
        'keyUsage = critical,digitalSignature,nonRepudiation',
        'extendedKeyUsage = critical,timeStamping',
      ],
      dates,
    );
    return { name, email: '', ...issued };
  }

  /** An RFC 3161 time-stamp token (DER ContentInfo) over `data`, SHA-256, by `openssl ts -reply`. */
  async timestamp(data: Buffer, tsa: Signer, certfile?: string): Promise<Buffer> {
    const id = Math.random().toString(36).slice(2);
    const dataPath = await this.file(`ts-${id}.bin`, data);
    const query = join(this.dir, `ts-${id}.tsq`);
    const token = join(this.dir, `ts-${id}.tst`);
    await this.openssl(['ts', '-query', '-data', dataPath, '-sha256', '-cert', '-out', query]);
    const config = await this.file(
      `ts-${id}.cnf`,
      [
        '[tsa]',
        'default_tsa = tsa_config',
        '[tsa_config]',
        `serial = ${join(this.dir, `ts-${id}.serial`)}`,
        'default_policy = 1.2.3.4.1',
        'digests = sha256',
        'accuracy = secs:1',
        'ess_cert_id_alg = sha256',
        'ess_cert_id_chain = no',
        'signer_digest = sha256',
        '',
      ].join('\n'),
    );
    await this.file(`ts-${id}.serial`, '01\n');
    await this.openssl([
      'ts',
      '-reply',
      '-config',
      config,
      '-queryfile',
      query,
      '-signer',
      tsa.certificatePath,
      '-inkey',
      tsa.keyPath,
      ...(certfile ? ['-chain', certfile] : []),
      '-token_out',
      '-out',
      token,
    ]);
    return readFile(token);
  }

  /** The signer's key and certificate (and the chain file) as PKCS#12 that node-forge reads (3DES, SHA-1 MAC). */
  async p12(signer: Signer, chainPath: string, passphrase: string): Promise<Buffer> {
    return this.openssl([
      'pkcs12',
      '-export',
      '-inkey',
      signer.keyPath,
      '-in',
      signer.certificatePath,
      '-certfile',
      chainPath,
      '-keypbe',
      'PBE-SHA1-3DES',
      '-certpbe',
      'PBE-SHA1-3DES',
      '-macalg',
      'sha1',
      '-passout',
      `pass:${passphrase}`,
    ]);
  }

  async revoke(issuer: Authority, signer: Signer): Promise<void> {
    const config = await this.caConfig(issuer.dir);
    await this.openssl([
      'ca',
      '-config',
      config,
      '-cert',
      issuer.certificatePath,
      '-keyfile',
      issuer.keyPath,
      '-revoke',
      signer.certificatePath,
    ]);
  }

  /** The issuer's current CRL, DER; `dates` (YYYYMMDDHHMMSSZ) set thisUpdate and nextUpdate (a stale one). */
  async crl(issuer: Authority, dates?: { lastUpdate: string; nextUpdate: string }): Promise<Buffer> {
    const config = await this.caConfig(issuer.dir);
    const pem = join(this.dir, `${issuer.name}.crl.pem`);
    await this.openssl([
      'ca',
      '-config',
      config,
      '-cert',
      issuer.certificatePath,
      '-keyfile',
      issuer.keyPath,
      '-gencrl',
      ...(dates ? ['-crl_lastupdate', dates.lastUpdate, '-crl_nextupdate', dates.nextUpdate] : []),
      '-out',
      pem,
    ]);
    return this.openssl(['crl', '-in', pem, '-outform', 'DER']);
  }

  /** An OCSP response (DER OCSPResponse) for `certificate` from `issuer`'s database, signed by the issuer itself. */
  async ocspResponse(issuer: Authority, certificate: { certificatePath: string }): Promise<Buffer> {
    const id = Math.random().toString(36).slice(2);
    const request = join(this.dir, `ocsp-${id}.req`);
    const response = join(this.dir, `ocsp-${id}.resp`);
    await this.openssl([
      'ocsp',
      '-issuer',
      issuer.certificatePath,
      '-cert',
      certificate.certificatePath,
      '-no_nonce',
      '-reqout',
      request,
    ]);
    await this.openssl([
      'ocsp',
      '-index',
      join(issuer.dir, 'index.txt'),
      '-rsigner',
      issuer.certificatePath,
      '-rkey',
      issuer.keyPath,
      '-CA',
      issuer.certificatePath,
      '-reqin',
      request,
      '-respout',
      response,
      '-ndays',
      '1',
    ]);
    return readFile(response);
  }

  /**
   * `openssl cms -sign` over exactly these bytes (binary: no canonicalisation by openssl), DER out. `detached`
   * unless `opaque`; more signers sign side by side; `extra` is passed through (-md sha1, -cades, -keyopt …).
   */
  async sign(
    content: Buffer,
    signers: ReadonlyArray<Signer>,
    options: { opaque?: boolean; certfile?: string; extra?: string[] } = {},
  ): Promise<Buffer> {
    const input = await this.file(`content-${Math.random().toString(36).slice(2)}.bin`, content);
    return this.openssl([
      'cms',
      '-sign',
      '-binary',
      '-in',
      input,
      '-outform',
      'DER',
      ...(options.opaque ? ['-nodetach'] : []),
      ...signers.flatMap((s) => ['-signer', s.certificatePath, '-inkey', s.keyPath]),
      ...(options.certfile ? ['-certfile', options.certfile] : []),
      ...(options.extra ?? []),
    ]);
  }
}

/** The header block and CRLF line ends of a message; `headers` as [name, value] or written lines. */
export function header(fields: ReadonlyArray<string>): string {
  return fields.map((f) => `${f}\r\n`).join('');
}

export function base64Lines(bytes: Buffer): string {
  return (bytes.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

/** multipart/signed (RFC 1847) around `entity` with the DER signature as its second part. */
export function multipartSigned(entity: Buffer, signature: Buffer, boundary = 'sig-boundary-1'): Buffer {
  return Buffer.concat([
    Buffer.from(
      header([
        `Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="${boundary}"`,
      ]),
    ),
    Buffer.from(`\r\n--${boundary}\r\n`),
    entity,
    Buffer.from(
      `\r\n--${boundary}\r\n${header([
        'Content-Type: application/pkcs7-signature; name=smime.p7s',
        'Content-Transfer-Encoding: base64',
        'Content-Disposition: attachment; filename=smime.p7s',
      ])}\r\n${base64Lines(signature)}\r\n--${boundary}--\r\n`,
    ),
  ]);
}

/** application/pkcs7-mime; smime-type=signed-data around the DER SignedData. */
export function opaqueSigned(signedData: Buffer): Buffer {
  return Buffer.from(
    `${header([
      'Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m',
      'Content-Transfer-Encoding: base64',
      'Content-Disposition: attachment; filename=smime.p7m',
    ])}\r\n${base64Lines(signedData)}\r\n`,
  );
}

/** A multipart/mixed entity of the given parts. */
export function multipartMixed(parts: ReadonlyArray<Buffer>, boundary = 'mixed-boundary-1'): Buffer {
  return Buffer.concat([
    Buffer.from(header([`Content-Type: multipart/mixed; boundary="${boundary}"`])),
    ...parts.flatMap((part) => [Buffer.from(`\r\n--${boundary}\r\n`), part]),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
}

/** An attachment part with a base64 body. */
export function attachment(filename: string, contentType: string, bytes: Buffer): Buffer {
  return Buffer.from(
    `${header([
      `Content-Type: ${contentType}; name="${filename}"`,
      'Content-Transfer-Encoding: base64',
      `Content-Disposition: attachment; filename="${filename}"`,
    ])}\r\n${base64Lines(bytes)}`,
  );
}

/** A whole message: the top-level fields, then the entity (which starts with its own Content-* fields). */
export function message(fields: ReadonlyArray<string>, entity: Buffer): Buffer {
  return Buffer.concat([Buffer.from(header(['MIME-Version: 1.0', ...fields])), entity]);
}

export function textPart(text: string): Buffer {
  return Buffer.from(
    `${header(['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit'])}\r\n${text}`,
  );
}
