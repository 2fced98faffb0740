// What the report says about a certificate, read once per certificate and cached by fingerprint: readable names,
// validity, the e-mail addresses it holds (SAN rfc822Name, else the subject's emailAddress: RFC 8550 §3), its public
// key for node:crypto, the fields a SignerIdentifier is matched against, and its QC statements (ETSI EN 319 412-5).
import { type KeyObject, X509Certificate } from 'node:crypto';
import { ber, parseCertificate } from '@smgw/crypto';
import type { SignerIdentifier } from './signed-data.ts';

export const QC_STATEMENTS_EXTENSION = '1.3.6.1.5.5.7.1.3';
export const QC_COMPLIANCE = '0.4.0.1862.1.1';
export const QC_SSCD = '0.4.0.1862.1.4';
export const QC_TYPE = '0.4.0.1862.1.6';
const QC_TYPE_NAMES: Readonly<Record<string, 'esign' | 'eseal' | 'web'>> = {
  '0.4.0.1862.1.6.1': 'esign',
  '0.4.0.1862.1.6.2': 'eseal',
  '0.4.0.1862.1.6.3': 'web',
};

export interface QcStatements {
  /** QcCompliance: the issuer claims this is an EU qualified certificate. */
  compliance: boolean;
  /** QcSSCD: the issuer claims the private key is in a qualified signature creation device. */
  sscd: boolean;
  /** QcType values present. */
  types: Array<'esign' | 'eseal' | 'web'>;
}

export interface CertificateFacts {
  der: Buffer;
  /** SHA-256 of the DER, lower-case hex. */
  fingerprint: string;
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  /** The addresses the certificate holds, as written in it. */
  emailAddresses: string[];
  publicKey: KeyObject;
  keyDescription: string;
  qcStatements: QcStatements;
  /** For matching a SignerIdentifier. */
  issuerDer: Buffer;
  serialNumberBytes: Buffer;
  subjectKeyIdentifier?: string;
}

const cache = new Map<string, CertificateFacts>();
const CACHE_SIZE = 2000;

/** Facts of a certificate; throws when the certificate cannot be read. */
export function certificateFacts(der: Buffer): CertificateFacts {
  const parsed = parseCertificate(der);
  const hit = cache.get(parsed.fingerprint);
  if (hit) return hit;
  const x509 = new X509Certificate(der);
  const tbs = ber.expectUniversal(ber.readBer(der).children[0], ber.UNIVERSAL_SEQUENCE, 'tbsCertificate');
  const fields = ber.isContext(tbs.children[0], 0) ? tbs.children.slice(1) : tbs.children;
  const sanAddresses = parsed.subjectAltNames.filter((name) => name.type === 1).map((name) => String(name.value));
  const publicKey = x509.publicKey;
  const details = publicKey.asymmetricKeyDetails ?? {};
  const keyDescription =
    publicKey.asymmetricKeyType === 'ec'
      ? `EC ${details.namedCurve ?? 'unknown curve'}`
      : details.modulusLength
        ? `${publicKey.asymmetricKeyType?.toUpperCase()} ${details.modulusLength} bit`
        : (publicKey.asymmetricKeyType ?? 'unknown');
  const facts: CertificateFacts = {
    der: Buffer.from(der),
    fingerprint: parsed.fingerprint,
    subject: x509.subject.split('\n').join(', '),
    issuer: x509.issuer.split('\n').join(', '),
    serialNumber: x509.serialNumber,
    notBefore: parsed.notBefore,
    notAfter: parsed.notAfter,
    emailAddresses: sanAddresses.length > 0 ? sanAddresses : parsed.subjectEmailAddresses,
    publicKey,
    keyDescription,
    qcStatements: qcStatementsOf(parsed.certificate.extensions ?? []),
    issuerDer: ber.expectUniversal(fields[2], ber.UNIVERSAL_SEQUENCE, 'issuer').raw,
    serialNumberBytes: ber.expectUniversal(fields[0], ber.UNIVERSAL_INTEGER, 'serialNumber').content,
    ...(parsed.subjectKeyIdentifier ? { subjectKeyIdentifier: parsed.subjectKeyIdentifier } : {}),
  };
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  cache.set(parsed.fingerprint, facts);
  return facts;
}

function qcStatementsOf(
  extensions: ReadonlyArray<{ extnID: string; extnValue: { valueBlock: { valueHexView: Uint8Array } } }>,
): QcStatements {
  const statements: QcStatements = { compliance: false, sscd: false, types: [] };
  const extension = extensions.find((e) => e.extnID === QC_STATEMENTS_EXTENSION);
  if (!extension) return statements;
  try {
    const sequence = ber.readBer(Buffer.from(extension.extnValue.valueBlock.valueHexView));
    for (const statement of sequence.children) {
      const id = ber.oidOf(statement.children[0], 'statementId');
      if (id === QC_COMPLIANCE) statements.compliance = true;
      else if (id === QC_SSCD) statements.sscd = true;
      else if (id === QC_TYPE) {
        for (const type of statement.children[1]?.children ?? []) {
          const name = QC_TYPE_NAMES[ber.oidOf(type, 'QcType')];
          if (name) statements.types.push(name);
        }
      }
    }
  } catch {
    // An unreadable QC statements extension claims nothing.
    return { compliance: false, sscd: false, types: [] };
  }
  return statements;
}

/** Whether the certificate is the one the SignerIdentifier names. */
export function identifies(sid: SignerIdentifier, facts: CertificateFacts): boolean {
  if (sid.kind === 'issuerAndSerialNumber') {
    return facts.issuerDer.equals(sid.issuer) && facts.serialNumberBytes.equals(sid.serialNumber);
  }
  return facts.subjectKeyIdentifier === sid.keyIdentifier.toString('hex');
}
