// A certificate parsed once into the fields path validation needs.
import { createHash } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { holdsOverlongOid, MAX_OID_BYTES } from '../smime/ber-reader.ts';
import { emailAddressesInName, normalizeName } from './distinguished-name.ts';
import type { KeyUsageName } from './types.ts';

export const EXT = {
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  issuerAltName: '2.5.29.18',
  basicConstraints: '2.5.29.19',
  nameConstraints: '2.5.29.30',
  crlDistributionPoints: '2.5.29.31',
  certificatePolicies: '2.5.29.32',
  policyMappings: '2.5.29.33',
  authorityKeyIdentifier: '2.5.29.35',
  policyConstraints: '2.5.29.36',
  extKeyUsage: '2.5.29.37',
  freshestCrl: '2.5.29.46',
  inhibitAnyPolicy: '2.5.29.54',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
} as const;

const KEY_USAGE_BITS: KeyUsageName[] = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
];

export interface PolicyInformation {
  policy: string;
  qualifiers: unknown[];
}

export interface GeneralNameValue {
  /** GeneralName CHOICE tag: 1 rfc822Name, 2 dNSName, 4 directoryName, 6 URI, 7 iPAddress. */
  type: number;
  /** String for 1/2/6, normalized name for 4, bytes for 7. */
  value: string | Uint8Array;
}

export interface GeneralSubtreeValue {
  base: GeneralNameValue;
}

export interface ParsedCertificate {
  der: Uint8Array;
  fingerprint: string;
  certificate: pkijs.Certificate;
  subject: string;
  issuer: string;
  selfIssued: boolean;
  notBefore: Date;
  notAfter: Date;
  subjectKeyIdentifier?: string;
  authorityKeyIdentifier?: string;
  /** Extensions present, by OID, with their criticality. */
  extensions: Map<string, boolean>;
  basicConstraints?: { ca: boolean; pathLength?: number };
  keyUsage?: Set<KeyUsageName>;
  extendedKeyUsage?: string[];
  policies?: PolicyInformation[];
  policyMappings?: Array<{ issuerDomainPolicy: string; subjectDomainPolicy: string }>;
  requireExplicitPolicy?: number;
  inhibitPolicyMapping?: number;
  inhibitAnyPolicy?: number;
  nameConstraints?: { permitted?: GeneralSubtreeValue[]; excluded?: GeneralSubtreeValue[] };
  subjectAltNames: GeneralNameValue[];
  subjectRdnNormalized: string;
  subjectEmailAddresses: string[];
}

export class MalformedCertificateError extends Error {
  readonly code = 'MALFORMED_CERTIFICATE';
}

function integerValue(value: unknown): number {
  if (typeof value === 'number') return value;
  if (value instanceof asn1js.Integer) return value.valueBlock.valueDec;
  throw new MalformedCertificateError('an integer field could not be read');
}

function toHex(view: Uint8Array | ArrayBuffer): string {
  return Buffer.from(view instanceof Uint8Array ? view : new Uint8Array(view)).toString('hex');
}

export function readGeneralName(name: pkijs.GeneralName): GeneralNameValue {
  switch (name.type) {
    case 1:
    case 2:
    case 6:
      return { type: name.type, value: String(name.value) };
    case 4:
      return { type: 4, value: normalizeName(name.value as pkijs.RelativeDistinguishedNames) };
    case 7: {
      const octets = name.value as asn1js.OctetString;
      return { type: 7, value: new Uint8Array(octets.valueBlock.valueHexView) };
    }
    default:
      return { type: name.type, value: '' };
  }
}

function readSubtrees(subtrees: pkijs.GeneralSubtree[] | undefined): GeneralSubtreeValue[] | undefined {
  return subtrees?.map((subtree) => ({ base: readGeneralName(subtree.base) }));
}

/** Parsed certificates by SHA-256 of their DER: callers validate against the same bags again and again. */
const parsedCache = new Map<string, ParsedCertificate>();
const PARSED_CACHE_SIZE = 2000;

export function parseCertificate(der: Uint8Array): ParsedCertificate {
  const fingerprint = createHash('sha256').update(der).digest('hex');
  const cached = parsedCache.get(fingerprint);
  if (cached) return cached;
  const parsed = parseUncached(der, fingerprint);
  if (parsedCache.size >= PARSED_CACHE_SIZE) parsedCache.delete(parsedCache.keys().next().value as string);
  parsedCache.set(fingerprint, parsed);
  return parsed;
}

function parseUncached(der: Uint8Array, fingerprint: string): ParsedCertificate {
  let certificate: pkijs.Certificate;
  if (holdsOverlongOid(der)) {
    throw new MalformedCertificateError(`the certificate holds an OID longer than ${MAX_OID_BYTES} bytes`);
  }
  try {
    certificate = pkijs.Certificate.fromBER(der);
  } catch (error) {
    throw new MalformedCertificateError(`the certificate could not be parsed: ${(error as Error).message}`);
  }
  const subject = normalizeName(certificate.subject);
  const issuer = normalizeName(certificate.issuer);
  const parsed: ParsedCertificate = {
    der,
    fingerprint,
    certificate,
    subject,
    issuer,
    selfIssued: subject === issuer,
    notBefore: certificate.notBefore.value,
    notAfter: certificate.notAfter.value,
    extensions: new Map(),
    subjectAltNames: [],
    subjectRdnNormalized: subject,
    subjectEmailAddresses: emailAddressesInName(certificate.subject),
  };
  for (const extension of certificate.extensions ?? []) {
    if (parsed.extensions.has(extension.extnID)) {
      throw new MalformedCertificateError(`extension ${extension.extnID} appears twice`);
    }
    parsed.extensions.set(extension.extnID, extension.critical);
    const value = extension.parsedValue as unknown;
    const known = (Object.values(EXT) as string[]).includes(extension.extnID);
    if (known && value === undefined && extension.extnID !== EXT.crlDistributionPoints) {
      throw new MalformedCertificateError(`extension ${extension.extnID} could not be parsed`);
    }
    switch (extension.extnID) {
      case EXT.subjectKeyIdentifier:
        parsed.subjectKeyIdentifier = toHex((value as asn1js.OctetString).valueBlock.valueHexView);
        break;
      case EXT.authorityKeyIdentifier: {
        const aki = value as pkijs.AuthorityKeyIdentifier;
        if (aki.keyIdentifier) parsed.authorityKeyIdentifier = toHex(aki.keyIdentifier.valueBlock.valueHexView);
        break;
      }
      case EXT.keyUsage: {
        const bits = value as asn1js.BitString;
        const bytes = bits.valueBlock.valueHexView;
        const set = new Set<KeyUsageName>();
        KEY_USAGE_BITS.forEach((name, bit) => {
          const byte = bytes[bit >> 3] ?? 0;
          if (byte & (0x80 >> (bit & 7))) set.add(name);
        });
        parsed.keyUsage = set;
        break;
      }
      case EXT.basicConstraints: {
        const bc = value as pkijs.BasicConstraints;
        parsed.basicConstraints = {
          ca: bc.cA === true,
          ...(bc.pathLenConstraint !== undefined ? { pathLength: integerValue(bc.pathLenConstraint) } : {}),
        };
        break;
      }
      case EXT.extKeyUsage:
        parsed.extendedKeyUsage = (value as pkijs.ExtKeyUsage).keyPurposes;
        break;
      case EXT.certificatePolicies: {
        const policies = (value as pkijs.CertificatePolicies).certificatePolicies.map((info) => ({
          policy: info.policyIdentifier,
          qualifiers: info.policyQualifiers ?? [],
        }));
        if (new Set(policies.map((p) => p.policy)).size !== policies.length) {
          throw new MalformedCertificateError('certificatePolicies names a policy twice');
        }
        parsed.policies = policies;
        break;
      }
      case EXT.policyMappings:
        parsed.policyMappings = (value as pkijs.PolicyMappings).mappings.map((m) => ({
          issuerDomainPolicy: m.issuerDomainPolicy,
          subjectDomainPolicy: m.subjectDomainPolicy,
        }));
        break;
      case EXT.policyConstraints: {
        const pc = value as pkijs.PolicyConstraints;
        if (pc.requireExplicitPolicy !== undefined)
          parsed.requireExplicitPolicy = integerValue(pc.requireExplicitPolicy);
        if (pc.inhibitPolicyMapping !== undefined) parsed.inhibitPolicyMapping = integerValue(pc.inhibitPolicyMapping);
        break;
      }
      case EXT.inhibitAnyPolicy:
        parsed.inhibitAnyPolicy = integerValue(value);
        break;
      case EXT.nameConstraints: {
        const nc = value as pkijs.NameConstraints;
        parsed.nameConstraints = {
          ...(nc.permittedSubtrees ? { permitted: readSubtrees(nc.permittedSubtrees) } : {}),
          ...(nc.excludedSubtrees ? { excluded: readSubtrees(nc.excludedSubtrees) } : {}),
        };
        break;
      }
      case EXT.subjectAltName:
        parsed.subjectAltNames = (value as pkijs.AltName).altNames.map(readGeneralName);
        break;
    }
  }
  return parsed;
}
