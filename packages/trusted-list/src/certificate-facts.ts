// What qualified-status matching needs to know about a certificate: subject, key, SKI, policies, key usage and
// QC statements (ETSI EN 319 412-5). Parsed with pkijs/asn1js from DER.
import { X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

export const QC_STATEMENT = {
  compliance: '0.4.0.1862.1.1',
  sscd: '0.4.0.1862.1.4',
  type: '0.4.0.1862.1.6',
} as const;

const QC_TYPES: Record<string, QcType> = {
  '0.4.0.1862.1.6.1': 'esign',
  '0.4.0.1862.1.6.2': 'eseal',
  '0.4.0.1862.1.6.3': 'web',
};

export type QcType = 'esign' | 'eseal' | 'web';

/** The certificate's own QC statements; a field left undefined is not known to the caller. */
export interface QcStatements {
  qcCompliance?: boolean;
  qcSSCD?: boolean;
  qcTypes?: QcType[];
}

const KEY_USAGE_BITS = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'crlSign',
  'encipherOnly',
  'decipherOnly',
] as const;

export interface CertificateFacts {
  der: Uint8Array;
  /** Relative distinguished names as lower-cased "type=value" strings, order ignored. */
  subjectRdns: string[];
  subjectText: string;
  spki: Uint8Array;
  ski: Uint8Array | undefined;
  policies: string[];
  /** Undefined when the certificate has no keyUsage extension. */
  keyUsage: Record<string, boolean> | undefined;
  qcStatements: QcStatements;
}

export type CertificateInput = Uint8Array | string | X509Certificate;

function toDer(input: CertificateInput): Uint8Array {
  if (input instanceof X509Certificate) return new Uint8Array(input.raw);
  if (typeof input === 'string') return new Uint8Array(new X509Certificate(input).raw);
  return input;
}

/**
 * Splits a DN into normalised RDN strings: one "type=value" per line as node:crypto prints a subject (values
 * unescaped), or "CN=a, O=b\, c" as a trusted list writes an X509SubjectName.
 */
export function normaliseDistinguishedName(dn: string): string[] {
  const parts: string[] = [];
  if (dn.includes('\n')) return normaliseParts(dn.split('\n'));
  let current = '';
  for (let i = 0; i < dn.length; i++) {
    const ch = dn[i] as string;
    if (ch === '\\' && i + 1 < dn.length) {
      current += dn[++i];
    } else if (ch === ',' || ch === '\n' || ch === ';') {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return normaliseParts(parts);
}

function normaliseParts(parts: string[]): string[] {
  return parts
    .map((p) => p.trim().replace(/\s+/g, ' '))
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      return eq < 0
        ? p.toLowerCase()
        : `${p.slice(0, eq).trim().toLowerCase()}=${p
            .slice(eq + 1)
            .trim()
            .toLowerCase()}`;
    })
    .sort();
}

export function readQcStatements(extensionValue: ArrayBuffer): QcStatements {
  const parsed = asn1js.fromBER(extensionValue);
  const out: QcStatements = { qcCompliance: false, qcSSCD: false, qcTypes: [] };
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Sequence)) return out;
  for (const statement of parsed.result.valueBlock.value) {
    if (!(statement instanceof asn1js.Sequence)) continue;
    const [id, info] = statement.valueBlock.value;
    if (!(id instanceof asn1js.ObjectIdentifier)) continue;
    const oid = id.valueBlock.toString();
    if (oid === QC_STATEMENT.compliance) out.qcCompliance = true;
    if (oid === QC_STATEMENT.sscd) out.qcSSCD = true;
    if (oid === QC_STATEMENT.type && info instanceof asn1js.Sequence) {
      for (const t of info.valueBlock.value) {
        const type = t instanceof asn1js.ObjectIdentifier ? QC_TYPES[t.valueBlock.toString()] : undefined;
        if (type) out.qcTypes?.push(type);
      }
    }
  }
  return out;
}

export function certificateFacts(input: CertificateInput): CertificateFacts {
  const der = toDer(input);
  const node = new X509Certificate(Buffer.from(der));
  const cert = pkijs.Certificate.fromBER(der);
  let ski: Uint8Array | undefined;
  let policies: string[] = [];
  let keyUsage: Record<string, boolean> | undefined;
  let qcStatements: QcStatements = { qcCompliance: false, qcSSCD: false, qcTypes: [] };
  for (const ext of cert.extensions ?? []) {
    const value = ext.extnValue.valueBlock.valueHexView;
    if (ext.extnID === '2.5.29.14') {
      const parsed = asn1js.fromBER(value);
      if (parsed.result instanceof asn1js.OctetString) ski = new Uint8Array(parsed.result.valueBlock.valueHexView);
    } else if (ext.extnID === '2.5.29.32') {
      const parsed = ext.parsedValue as pkijs.CertificatePolicies | undefined;
      policies = parsed?.certificatePolicies.map((p) => p.policyIdentifier) ?? [];
    } else if (ext.extnID === '2.5.29.15') {
      const parsed = asn1js.fromBER(value);
      if (parsed.result instanceof asn1js.BitString) {
        const bytes = parsed.result.valueBlock.valueHexView;
        keyUsage = {};
        KEY_USAGE_BITS.forEach((name, bit) => {
          const byte = bytes[bit >> 3] ?? 0;
          (keyUsage as Record<string, boolean>)[name] = (byte & (0x80 >> (bit & 7))) !== 0;
        });
      }
    } else if (ext.extnID === '1.3.6.1.5.5.7.1.3') {
      qcStatements = readQcStatements(value.slice().buffer);
    }
  }
  return {
    der,
    subjectRdns: normaliseDistinguishedName(node.subject),
    subjectText: node.subject.split('\n').join(', '),
    spki: new Uint8Array(node.publicKey.export({ type: 'spki', format: 'der' })),
    ski,
    policies,
    keyUsage,
    qcStatements,
  };
}
