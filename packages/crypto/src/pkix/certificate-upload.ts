// Reading certificate uploads (PEM, or one DER certificate) with node:crypto's X509Certificate: the facts the key
// directory stores. Used by the admin API's POST /certificates and the portal's bring-your-own-key page.
import { X509Certificate } from 'node:crypto';

export interface CertificateFacts {
  der: Buffer;
  /** SHA-256 of the DER, lower-case hex. */
  fingerprint: string;
  subject: string;
  issuer: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** basicConstraints cA. */
  isCa: boolean;
  /** rfc822Name entries of subjectAltName, lower-case, in order, without duplicates (how the directory finds them). */
  emailAddresses: string[];
  /** The same as written in the certificate (path validation compares the local part case-sensitively). */
  emailAddressesAsWritten: string[];
}

/** An upload that is not one or more readable certificates. */
export class PemError extends Error {
  readonly code = 'BAD_CERTIFICATE';
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n\t ]*?)-----END \1-----/g;

/** The certificates of a PEM text, in order. Anything but CERTIFICATE blocks (a private key, say) is refused. */
export function readPemCertificates(pem: string): CertificateFacts[] {
  const certificates: CertificateFacts[] = [];
  for (const match of pem.matchAll(PEM_BLOCK)) {
    const label = match[1] as string;
    if (label !== 'CERTIFICATE' && label !== 'X509 CERTIFICATE') {
      throw new PemError(`a ${label} block is not accepted here; give certificates only`);
    }
    const der = Buffer.from((match[2] as string).replace(/\s+/g, ''), 'base64');
    certificates.push(certificateFacts(der));
  }
  if (certificates.length === 0) throw new PemError('no PEM certificate in the body');
  return certificates;
}

/** PEM (one or more certificates, the recipient's first) or, without a PEM header, one DER certificate. */
export function readCertificateUpload(bytes: Buffer): CertificateFacts[] {
  const head = bytes.subarray(0, 4096).toString('latin1');
  if (head.includes('-----BEGIN')) return readPemCertificates(bytes.toString('utf8'));
  return [certificateFacts(bytes)];
}

export function certificateFacts(der: Buffer): CertificateFacts {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(der);
  } catch (cause) {
    throw new PemError(`not a readable X.509 certificate: ${(cause as Error).message}`, { cause });
  }
  return {
    der: Buffer.from(x509.raw),
    fingerprint: x509.fingerprint256.replaceAll(':', '').toLowerCase(),
    subject: oneLine(x509.subject),
    issuer: oneLine(x509.issuer),
    serial: x509.serialNumber.toUpperCase(),
    notBefore: x509.validFromDate,
    notAfter: x509.validToDate,
    isCa: x509.ca,
    emailAddresses: [...new Set(emailAddressesOf(x509.subjectAltName).map((a) => a.toLowerCase()))],
    emailAddressesAsWritten: emailAddressesOf(x509.subjectAltName),
  };
}

/** Node prints distinguished names one attribute per line; the directory stores them comma-separated. */
function oneLine(name: string): string {
  return name.split('\n').filter(Boolean).join(', ');
}

/** Node renders subjectAltName as `email:a@b, DNS:x, email:"quoted, value"`; only email entries are taken, as written. */
export function emailAddressesOf(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  const addresses = new Set<string>();
  for (const match of subjectAltName.matchAll(/(?:^|, )email:("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    let value = match[1] as string;
    if (value.startsWith('"')) value = JSON.parse(value) as string;
    if (value.includes('@')) addresses.add(value);
  }
  return [...addresses];
}
