// The parts of an ETSI TS 119 612 trusted list that qualified-status decisions and the report need, read only
// from the signed bytes of a list whose signature verified.

export const TSL_NS = 'http://uri.etsi.org/02231/v2#';
export const TSLX_NS = 'http://uri.etsi.org/02231/v2/additionaltypes#';
export const ECC_NS = 'http://uri.etsi.org/TrstSvc/SvcInfoExt/eSigDir-1999-93-EC-TrustedList/#';
export const XADES_NS = 'http://uri.etsi.org/01903/v1.3.2#';
export const DSIG_NS = 'http://www.w3.org/2000/09/xmldsig#';

export const SERVICE_TYPE = {
  caQc: 'http://uri.etsi.org/TrstSvc/Svctype/CA/QC',
  caPkc: 'http://uri.etsi.org/TrstSvc/Svctype/CA/PKC',
  tsaQtst: 'http://uri.etsi.org/TrstSvc/Svctype/TSA/QTST',
} as const;

export const STATUS_PREFIX = 'http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/';
export const QUALIFIER_PREFIX = 'http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/';

/** A name in several languages, as the list gives it (xml:lang → text), in document order. */
export interface MultiLangName {
  lang: string;
  value: string;
}

/** One DigitalId of a ServiceDigitalIdentity. */
export type DigitalIdentity =
  | { kind: 'certificate'; der: Uint8Array }
  | { kind: 'subjectName'; name: string }
  | { kind: 'ski'; ski: Uint8Array }
  | { kind: 'other' };

/** One QualificationElement: qualifiers that apply to certificates meeting the criteria. */
export interface Qualification {
  /** Qualifier URIs, e.g. …/SvcInfoExt/QCWithSSCD. */
  qualifiers: string[];
  criteria: CriteriaList;
}

export interface CriteriaList {
  assert: 'all' | 'atLeastOne' | 'none';
  /** Each set is met when the certificate carries every policy OID in it. */
  policySets: string[][];
  /** Each entry is met when every bit named (e.g. nonRepudiation: true) has that value in the key usage. */
  keyUsages: Record<string, boolean>[];
  /** Nested CriteriaList elements. */
  nested: CriteriaList[];
  /** Criteria this package cannot evaluate (otherCriteriaList, ExtendedKeyUsage, CertSubjectDNAttribute …). */
  unsupported: string[];
}

export interface ServiceExtensions {
  qualifications: Qualification[];
  /** AdditionalServiceInformation URIs, e.g. …/SvcInfoExt/ForeSignatures. */
  additionalServiceInformation: string[];
  /** Unknown extensions marked Critical="true": the service must not be relied on for what it would change. */
  unknownCritical: string[];
}

/** The service's information at one period: the current one, or a ServiceHistoryInstance. */
export interface ServicePeriod {
  serviceType: string;
  serviceName: MultiLangName[];
  status: string;
  statusStartingTime: Date;
  digitalIdentities: DigitalIdentity[];
  extensions: ServiceExtensions;
}

export interface TrustService {
  current: ServicePeriod;
  /** ServiceHistoryInstance entries, newest first. */
  history: ServicePeriod[];
}

export interface TrustServiceProvider {
  name: MultiLangName[];
  tradeName: MultiLangName[];
  services: TrustService[];
}

/** An OtherTSLPointer: where another list is and which certificates may sign it. */
export interface OtherListPointer {
  territory: string | undefined;
  location: string;
  mimeType: string | undefined;
  tslType: string | undefined;
  signerCertificates: Uint8Array[];
}

/** A value the schema would refuse but the list was still read (e.g. de-tl.xml's "https://https://…"). */
export interface ListProblem {
  where: string;
  problem: string;
}

export interface TrustedList {
  territory: string;
  sequenceNumber: number;
  versionIdentifier: number;
  tslType: string;
  operatorName: MultiLangName[];
  issueDate: Date;
  /** Absent when the list is closed (NextUpdate without dateTime). */
  nextUpdate: Date | undefined;
  pointers: OtherListPointer[];
  providers: TrustServiceProvider[];
  problems: ListProblem[];
}

/** A list whose signature verified, with what the report needs about it. */
export interface LoadedTrustedList {
  list: TrustedList;
  /** Where the operator's file was (path or name); for the report. */
  source: string;
  /** DER of the configured or LOTL-given certificate that verified the signature. */
  signerCertificate: Uint8Array;
  /** True when the clock was past NextUpdate (or the list is closed): still used, named in the report. */
  stale: boolean;
}

/** The short name of a status URI ("granted", "withdrawn" …). */
export function statusName(uri: string): string {
  return uri.startsWith(STATUS_PREFIX) ? uri.slice(STATUS_PREFIX.length) : uri;
}

/** The short name of a qualifier URI ("QCWithSSCD" …). */
export function qualifierName(uri: string): string {
  return uri.startsWith(QUALIFIER_PREFIX) ? uri.slice(QUALIFIER_PREFIX.length) : uri;
}
