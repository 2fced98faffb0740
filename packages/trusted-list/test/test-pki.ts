// A small PKI made with the openssl command line (an independent tool) for the trusted-list tests: a root, a
// qualified CA that the test's own list names, a signer with QC statements and a policy OID, a signer of an
// unlisted CA, and the keys that sign the lists.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const QUALIFIED_POLICY = '1.3.6.1.4.1.99999.1.1';
export const OTHER_POLICY = '1.3.6.1.4.1.99999.1.2';

export interface TestKeyPair {
  name: string;
  keyPem: string;
  certPem: string;
  der: Uint8Array;
  cert: X509Certificate;
}

export class TestPki {
  readonly dir: string;
  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'smgw-tl-pki-'));
  }

  openssl(args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  }

  private load(name: string): TestKeyPair {
    const certPem = readFileSync(join(this.dir, `${name}.crt`), 'utf8');
    const cert = new X509Certificate(certPem);
    return {
      name,
      keyPem: readFileSync(join(this.dir, `${name}.key`), 'utf8'),
      certPem,
      der: new Uint8Array(cert.raw),
      cert,
    };
  }

  /** A self-signed certificate (a root, or a list signer as the operator configures it). */
  selfSigned(
    name: string,
    extensions: string[] = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'],
  ): TestKeyPair {
    this.openssl([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-subj',
      `/C=XA/O=SMGW Test/CN=${name}`,
      '-days',
      '3650',
      '-sha256',
      ...extensions.flatMap((e) => ['-addext', e]),
    ]);
    return this.load(name);
  }

  /** A certificate issued by `issuer`, with the extensions given as an openssl extension section. */
  issued(
    name: string,
    issuer: TestKeyPair,
    extensionSection: string,
    subject = `/C=XA/O=SMGW Test/CN=${name}`,
  ): TestKeyPair {
    this.openssl([
      'req',
      '-new',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      subject,
    ]);
    writeFileSync(join(this.dir, `${name}.ext`), `[ext]\n${extensionSection}\n`);
    this.openssl([
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${issuer.name}.crt`,
      '-CAkey',
      `${issuer.name}.key`,
      '-set_serial',
      `0x${Buffer.from(name).toString('hex').slice(0, 16)}`,
      '-days',
      '3000',
      '-sha256',
      '-extfile',
      `${name}.ext`,
      '-extensions',
      'ext',
      '-out',
      `${name}.crt`,
    ]);
    return this.load(name);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const CA_EXTENSIONS = [
  'basicConstraints=critical,CA:TRUE',
  'keyUsage=critical,keyCertSign,cRLSign',
  'subjectKeyIdentifier=hash',
  'authorityKeyIdentifier=keyid',
].join('\n');

/** QC statements (EN 319 412-5) written with openssl's ASN1 generator: QcCompliance, optionally QcSSCD, QcType esign. */
export function signerExtensions(options: { policy: string; qcCompliance: boolean; qcSSCD: boolean }): string {
  const statements = [
    options.qcCompliance ? 'compliance = SEQUENCE:qc_compliance' : '',
    options.qcSSCD ? 'sscd = SEQUENCE:qc_sscd' : '',
    'type = SEQUENCE:qc_type',
  ].filter((l) => l !== '');
  return [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,nonRepudiation',
    `certificatePolicies=${options.policy}`,
    'subjectKeyIdentifier=hash',
    '1.3.6.1.5.5.7.1.3=ASN1:SEQUENCE:qc_statements',
    '[qc_statements]',
    ...statements,
    '[qc_compliance]',
    'id = OID:0.4.0.1862.1.1',
    '[qc_sscd]',
    'id = OID:0.4.0.1862.1.4',
    '[qc_type]',
    'id = OID:0.4.0.1862.1.6',
    'types = SEQUENCE:qc_types',
    '[qc_types]',
    'esign = OID:0.4.0.1862.1.6.1',
  ].join('\n');
}
