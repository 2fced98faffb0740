// The ETSI TS 119 102-2 signature validation report (XML), built from a plain model the verifier fills in. Every
// value that came from a message (signer name, file names, reasons) goes through `xmlText`, so it is character
// data in the report and never markup; elements of our own namespace under OtherInformation carry what the
// schema has no place for (qualification details, coverage, sentences in German and English).
import { create } from 'xmlbuilder2';
import type { XMLBuilder } from 'xmlbuilder2/lib/interfaces.js';

export const VR_NS = 'http://uri.etsi.org/19102/v1.4.1#';
export const SMGW_VR_NS = 'urn:smgw:validation-report:1';
const DS_NS = 'http://www.w3.org/2000/09/xmldsig#';
const XADES_NS = 'http://uri.etsi.org/01903/v1.3.2#';
const XML_NS = 'http://www.w3.org/XML/1998/namespace';

export type MainIndication = 'TOTAL_PASSED' | 'INDETERMINATE' | 'TOTAL_FAILED';

const MAIN_INDICATION_URI: Record<MainIndication, string> = {
  TOTAL_PASSED: 'urn:etsi:019102:mainindication:total-passed',
  INDETERMINATE: 'urn:etsi:019102:mainindication:indeterminate',
  TOTAL_FAILED: 'urn:etsi:019102:mainindication:total-failed',
};

/**
 * The sub-indications of ETSI EN 319 102-1 §5.1.3 (Table 5), and the main indications each belongs to:
 * NOT_YET_VALID is both TOTAL_FAILED (the signing time is proven before the certificate) and INDETERMINATE (the
 * certificate is not yet valid at the validation time, nothing proves more).
 */
export const SUB_INDICATIONS: Readonly<Record<string, readonly Exclude<MainIndication, 'TOTAL_PASSED'>[]>> = {
  FORMAT_FAILURE: ['TOTAL_FAILED'],
  HASH_FAILURE: ['TOTAL_FAILED'],
  SIG_CRYPTO_FAILURE: ['TOTAL_FAILED'],
  REVOKED: ['TOTAL_FAILED'],
  EXPIRED: ['TOTAL_FAILED'],
  NOT_YET_VALID: ['TOTAL_FAILED', 'INDETERMINATE'],
  SIG_CONSTRAINTS_FAILURE: ['INDETERMINATE'],
  CHAIN_CONSTRAINTS_FAILURE: ['INDETERMINATE'],
  CERTIFICATE_CHAIN_GENERAL_FAILURE: ['INDETERMINATE'],
  CRYPTO_CONSTRAINTS_FAILURE: ['INDETERMINATE'],
  POLICY_PROCESSING_ERROR: ['INDETERMINATE'],
  SIGNATURE_POLICY_NOT_AVAILABLE: ['INDETERMINATE'],
  TIMESTAMP_ORDER_FAILURE: ['INDETERMINATE'],
  NO_SIGNING_CERTIFICATE_FOUND: ['INDETERMINATE'],
  NO_CERTIFICATE_CHAIN_FOUND: ['INDETERMINATE'],
  REVOKED_NO_POE: ['INDETERMINATE'],
  REVOKED_CA_NO_POE: ['INDETERMINATE'],
  OUT_OF_BOUNDS_NO_POE: ['INDETERMINATE'],
  OUT_OF_BOUNDS_NOT_REVOKED: ['INDETERMINATE'],
  REVOCATION_OUT_OF_BOUNDS_NO_POE: ['INDETERMINATE'],
  CRYPTO_CONSTRAINTS_FAILURE_NO_POE: ['INDETERMINATE'],
  NO_POE: ['INDETERMINATE'],
  TRY_LATER: ['INDETERMINATE'],
  SIGNED_DATA_NOT_FOUND: ['INDETERMINATE'],
  CUSTOM: ['INDETERMINATE'],
};

/** Whether the report may state `subIndication` under `indication`. */
export function subIndicationBelongsTo(subIndication: string, indication: MainIndication): boolean {
  return indication !== 'TOTAL_PASSED' && (SUB_INDICATIONS[subIndication]?.includes(indication) ?? false);
}

export interface ReportCertificate {
  /** DER, embedded as base64 in the report's validation objects when given. */
  der?: Uint8Array;
  subject: string;
  issuer?: string;
  serialNumber?: string;
  notBefore: Date;
  notAfter: Date;
  /** Within notBefore..notAfter at the (best) signing time. */
  validAtSigningTime: boolean;
  /** From the trusted list at signing time; undefined when not judged (e.g. a root). */
  qualified?: boolean;
  revocation: {
    /** notApplicable: a trust anchor, whose revocation is not checked. */
    status: 'good' | 'revoked' | 'unknown' | 'notChecked' | 'notApplicable';
    /** e.g. "OCSP", "CRL", "OCSP (embedded in the signature)". */
    source?: string;
    /** When the answer was produced (OCSP producedAt / CRL thisUpdate). */
    time?: Date;
    revokedAt?: Date;
    reason?: string;
  };
}

export interface ReportAlgorithm {
  /** Human name, e.g. "SHA-256", "RSA-PSS with SHA-256". */
  name: string;
  /** The algorithm's URI, or its OID (written as urn:oid:…). One of them is needed. */
  uri?: string;
  oid?: string;
  acceptable: boolean;
  /** Acceptable only until this date (ETSI TS 119 312). */
  notAfter?: Date;
}

export interface ReportQualification {
  qualified: boolean;
  qscd: boolean | 'unknown';
  type: string;
  serviceName?: string;
  providerName?: string;
  territory?: string;
  status?: string;
  statusSince?: Date;
  qualifiersApplied: string[];
  listSource?: string;
  listStale: boolean;
  reason: string;
}

export interface ReportSignature {
  /** Where the signature sits, e.g. "layer 1 / signer 1" or "document.pdf, field Signature1". */
  id: string;
  indication: MainIndication;
  subIndication?: string;
  signer: { name: string; emailAddresses?: string[] };
  /** e.g. "CAdES (S/MIME multipart/signed)", "PAdES". */
  format: string;
  level: 'QES' | 'AdESqc' | 'AdES' | 'unknown';
  claimedSigningTime?: Date;
  /** Time proven by a signature timestamp, if any. */
  timestampTime?: Date;
  covers: {
    description: string;
    partial: boolean;
    digestAlgorithmUri?: string;
    digest?: Uint8Array;
  };
  /** Signer certificate first, then intermediates, the trust anchor last (if known). */
  chain: ReportCertificate[];
  trustAnchorKnown: boolean;
  algorithms: ReportAlgorithm[];
  qualification?: ReportQualification;
  /** Plain-language sentences. */
  messages: { de: string; en: string }[];
}

/**
 * What the validator found about the message rather than a signature (e.g. parts that imitate its report): written
 * as `smgw:Notice` under the SignatureValidator's OtherInformation, the one place of the schema (lax, any namespace)
 * that belongs to the report as a whole rather than to one signature.
 */
export interface ReportNotice {
  /** A stable code of ours, e.g. REPORT_IMITATION. */
  code: string;
  de: string;
  en: string;
  /** Values from the message the notice names (a file name) and where they stand (a MIME path): character data only. */
  values?: { text: string; path?: string }[];
}

export interface ReportInput {
  validationTime: Date;
  signatures: ReportSignature[];
  validatorName?: string;
  trustedLists?: { source: string; territory: string; sequenceNumber: number; stale: boolean }[];
  notices?: ReportNotice[];
}

const QUALITY_URI: Record<ReportSignature['level'], string> = {
  QES: 'urn:cef:dss:signatureQualification:QESig',
  AdESqc: 'urn:cef:dss:signatureQualification:AdESqc',
  AdES: 'urn:cef:dss:signatureQualification:AdES',
  unknown: 'urn:cef:dss:signatureQualification:NA',
};

const ALGORITHM_URI: Record<string, string> = {
  'SHA-1': 'http://www.w3.org/2000/09/xmldsig#sha1',
  'SHA-256': 'http://www.w3.org/2001/04/xmlenc#sha256',
  'SHA-384': 'http://www.w3.org/2001/04/xmldsig-more#sha384',
  'SHA-512': 'http://www.w3.org/2001/04/xmlenc#sha512',
};

/**
 * Makes any string safe character data for XML 1.0: characters XML cannot carry (C0 controls other than tab,
 * LF and CR, U+FFFE/U+FFFF, lone surrogates) are shown as [U+XXXX]. Markup characters are escaped by the
 * builder; CDATA is never used, so "]]>" stays text.
 */
export function xmlText(value: string): string {
  return value.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
    /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g,
    (ch) => `[U+${(ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}]`,
  );
}

/**
 * xs:dateTime as XML Schema 1.0 writes it. toISOString's `+010000-…` and `0000-…` are not: a certificate's dates are
 * the sender's, and a report failing its schema would be attached all the same. Schema 1.0 has no year 0, so the
 * years before 1 count back from -0001 (1 BC, toISOString's year 0).
 */
function iso(d: Date): string {
  if (Number.isNaN(d.getTime())) throw new Error('the report input holds an invalid date');
  const text = d.toISOString();
  const year = d.getUTCFullYear();
  if (year >= 1 && year <= 9999) return text;
  const rest = text.slice(text.indexOf('-', 1));
  return `${year > 0 ? year : `-${String(1 - year).padStart(4, '0')}`}${rest}`;
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

function algorithmUri(a: ReportAlgorithm): string {
  if (a.uri && /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(a.uri)) return a.uri;
  if (a.oid && /^\d+(\.\d+)+$/.test(a.oid)) return `urn:oid:${a.oid}`;
  const known = ALGORITHM_URI[a.name];
  if (known) return known;
  throw new Error(`the report needs a URI or OID for algorithm ${JSON.stringify(a.name)}`);
}

function checkIndication(sig: ReportSignature): void {
  if (!(sig.indication in MAIN_INDICATION_URI)) throw new Error(`unknown main indication ${sig.indication}`);
  if (sig.indication === 'TOTAL_PASSED') {
    if (sig.subIndication !== undefined) throw new Error('TOTAL_PASSED has no sub-indication');
    return;
  }
  if (sig.subIndication === undefined) return;
  if (!subIndicationBelongsTo(sig.subIndication, sig.indication)) {
    // Indeterminate is never shown as failed and failed never as passed: a mismatch is a verifier bug.
    throw new Error(`sub-indication ${sig.subIndication} does not belong to ${sig.indication}`);
  }
}

/** Builds the report; throws on an input that would make it say something inconsistent. */
export function buildValidationReport(input: ReportInput): string {
  const doc = create({ version: '1.0', encoding: 'UTF-8' });
  const root = doc.ele(VR_NS, 'ValidationReport', {
    'xmlns:ds': DS_NS,
    'xmlns:XAdES': XADES_NS,
    'xmlns:smgw': SMGW_VR_NS,
  });
  const objects: ((parent: XMLBuilder) => void)[] = [];
  input.signatures.forEach((sig, i) => {
    checkIndication(sig);
    const sid = `S-${i + 1}`;
    const report = root.ele(VR_NS, 'SignatureValidationReport');
    const ident = report.ele(VR_NS, 'SignatureIdentifier', { id: sid });
    ident.ele(VR_NS, 'HashOnly').txt('false');
    ident.ele(VR_NS, 'DocHashOnly').txt('false');
    ident.ele(VR_NS, 'DAIdentifier').txt(xmlText(sig.id));

    const best = sig.timestampTime ?? input.validationTime;
    const time = report.ele(VR_NS, 'ValidationTimeInfo');
    time.ele(VR_NS, 'ValidationTime').txt(iso(input.validationTime));
    const poe = time.ele(VR_NS, 'BestSignatureTime');
    poe.ele(VR_NS, 'POETime').txt(iso(best));
    poe.ele(VR_NS, 'TypeOfProof').txt(`urn:etsi:019102:poetype:${sig.timestampTime ? 'provided' : 'validation'}`);

    const docId = `D-${i + 1}`;
    const signersDocument = report.ele(VR_NS, 'SignersDocument');
    if (sig.covers.digest && sig.covers.digestAlgorithmUri) {
      const dv = signersDocument.ele(VR_NS, 'DigestAlgAndValue');
      dv.ele(DS_NS, 'ds:DigestMethod', { Algorithm: xmlText(sig.covers.digestAlgorithmUri) });
      dv.ele(DS_NS, 'ds:DigestValue').txt(b64(sig.covers.digest));
      signersDocument.ele(VR_NS, 'SignersDocumentRepresentation', { VOReference: docId });
    } else {
      signersDocument.ele(VR_NS, 'SignersDocumentRepresentation', { VOReference: docId });
    }
    objects.push((list) => {
      const vo = list.ele(VR_NS, 'ValidationObject', { id: docId });
      vo.ele(VR_NS, 'ObjectType').txt('urn:etsi:019102:validationObject:signedData');
      vo.ele(VR_NS, 'ValidationObjectRepresentation').ele(VR_NS, 'direct').txt(xmlText(sig.covers.description));
    });

    const attributes = report.ele(VR_NS, 'SignatureAttributes');
    if (sig.claimedSigningTime) {
      attributes.ele(VR_NS, 'SigningTime', { Signed: 'true' }).ele(VR_NS, 'Time').txt(iso(sig.claimedSigningTime));
    }
    if (sig.timestampTime) {
      attributes
        .ele(VR_NS, 'SignatureTimeStamp', { Signed: 'false' })
        .ele(VR_NS, 'TimeStampValue')
        .txt(iso(sig.timestampTime));
    }
    attributes.ele(VR_NS, 'OtherInformation').ele(SMGW_VR_NS, 'smgw:Format').txt(xmlText(sig.format));

    const certIds = sig.chain.map((_, j) => `C-${i + 1}-${j + 1}`);
    const signerInfo = report.ele(VR_NS, 'SignerInformation');
    signerInfo.ele(VR_NS, 'SignerCertificate', { VOReference: certIds[0] ?? docId });
    signerInfo.ele(VR_NS, 'Signer').txt(xmlText(sig.signer.name));
    if (sig.signer.emailAddresses?.length) {
      const other = signerInfo.ele(VR_NS, 'OtherInformation');
      for (const address of sig.signer.emailAddresses) other.ele(SMGW_VR_NS, 'smgw:EmailAddress').txt(xmlText(address));
    }

    report.ele(VR_NS, 'SignatureQuality').ele(VR_NS, 'SignatureQualityInformation').txt(QUALITY_URI[sig.level]);
    report
      .ele(VR_NS, 'SignatureValidationProcess')
      .ele(VR_NS, 'SignatureValidationProcessID')
      .txt(`urn:etsi:019102:validationprocess:${sig.timestampTime ? 'LTVM' : 'Basic'}`);

    const status = report.ele(VR_NS, 'SignatureValidationStatus');
    status.ele(VR_NS, 'MainIndication').txt(MAIN_INDICATION_URI[sig.indication]);
    if (sig.subIndication) status.ele(VR_NS, 'SubIndication').txt(`urn:etsi:019102:subindication:${sig.subIndication}`);
    if (sig.chain.length > 0) {
      const data = status.ele(VR_NS, 'AssociatedValidationReportData');
      const chain = data.ele(VR_NS, 'CertificateChain');
      chain.ele(VR_NS, 'SigningCertificate', { VOReference: certIds[0] });
      const last = sig.chain.length - 1;
      certIds.slice(1).forEach((id, k) => {
        if (k + 1 === last && sig.trustAnchorKnown) return;
        chain.ele(VR_NS, 'IntermediateCertificate', { VOReference: id });
      });
      if (sig.trustAnchorKnown && last > 0) chain.ele(VR_NS, 'TrustAnchor', { VOReference: certIds[last] });
    }
    for (const algorithm of sig.algorithms) {
      const crypto = status.ele(VR_NS, 'AssociatedValidationReportData').ele(VR_NS, 'CryptoInformation');
      crypto.ele(VR_NS, 'ValidationObjectId', { VOReference: sid });
      crypto.ele(VR_NS, 'Algorithm').txt(xmlText(algorithmUri(algorithm)));
      crypto.ele(VR_NS, 'SecureAlgorithm').txt(String(algorithm.acceptable));
      if (algorithm.notAfter) crypto.ele(VR_NS, 'NotAfter').txt(iso(algorithm.notAfter));
      crypto.ele(VR_NS, 'OtherInformation').ele(SMGW_VR_NS, 'smgw:AlgorithmName').txt(xmlText(algorithm.name));
    }

    const other = report.ele(VR_NS, 'OtherInformation');
    other.ele(SMGW_VR_NS, 'smgw:Covers', { partial: String(sig.covers.partial) }).txt(xmlText(sig.covers.description));
    if (sig.qualification) writeQualification(other, sig.qualification);
    for (const message of sig.messages) {
      for (const lang of ['de', 'en'] as const) {
        other.ele(SMGW_VR_NS, 'smgw:Message').att(XML_NS, 'xml:lang', lang).txt(xmlText(message[lang]));
      }
    }

    sig.chain.forEach((cert, j) => {
      objects.push((list) => writeCertificate(list, certIds[j] as string, cert));
    });
  });

  if (objects.length > 0) {
    const list = root.ele(VR_NS, 'SignatureValidationObjects');
    for (const write of objects) write(list);
  }
  if (input.validatorName || input.trustedLists?.length || input.notices?.length) {
    const validator = root.ele(VR_NS, 'SignatureValidator');
    validator
      .ele(VR_NS, 'DigitalId')
      .ele('http://uri.etsi.org/02231/v2#', 'tsl:X509SubjectName', {
        'xmlns:tsl': 'http://uri.etsi.org/02231/v2#',
      })
      .txt(xmlText(input.validatorName ?? 'SecureMail Gateway'));
    if (input.trustedLists?.length || input.notices?.length) {
      const other = validator.ele(VR_NS, 'OtherInformation');
      for (const tl of input.trustedLists ?? []) {
        other
          .ele(SMGW_VR_NS, 'smgw:TrustedList', {
            territory: xmlText(tl.territory),
            sequenceNumber: String(tl.sequenceNumber),
            stale: String(tl.stale),
          })
          .txt(xmlText(tl.source));
      }
      for (const notice of input.notices ?? []) writeNotice(other, notice);
    }
  }
  return doc.end({ prettyPrint: true, wellFormed: true });
}

function writeNotice(parent: XMLBuilder, notice: ReportNotice): void {
  const el = parent.ele(SMGW_VR_NS, 'smgw:Notice', { code: xmlText(notice.code) });
  for (const lang of ['de', 'en'] as const) {
    el.ele(SMGW_VR_NS, 'smgw:Message').att(XML_NS, 'xml:lang', lang).txt(xmlText(notice[lang]));
  }
  for (const value of notice.values ?? []) {
    el.ele(SMGW_VR_NS, 'smgw:Value', value.path === undefined ? {} : { path: xmlText(value.path) }).txt(
      xmlText(value.text),
    );
  }
}

function writeQualification(parent: XMLBuilder, q: ReportQualification): void {
  const el = parent.ele(SMGW_VR_NS, 'smgw:Qualification', {
    qualified: String(q.qualified),
    qscd: String(q.qscd),
    type: xmlText(q.type),
  });
  if (q.territory) el.ele(SMGW_VR_NS, 'smgw:Territory').txt(xmlText(q.territory));
  if (q.providerName) el.ele(SMGW_VR_NS, 'smgw:ServiceProvider').txt(xmlText(q.providerName));
  if (q.serviceName) el.ele(SMGW_VR_NS, 'smgw:Service').txt(xmlText(q.serviceName));
  if (q.status) {
    el.ele(SMGW_VR_NS, 'smgw:ServiceStatus', q.statusSince ? { since: iso(q.statusSince) } : {}).txt(xmlText(q.status));
  }
  for (const qualifier of q.qualifiersApplied) el.ele(SMGW_VR_NS, 'smgw:Qualifier').txt(xmlText(qualifier));
  if (q.listSource) {
    el.ele(SMGW_VR_NS, 'smgw:TrustedList', { stale: String(q.listStale) }).txt(xmlText(q.listSource));
  }
  el.ele(SMGW_VR_NS, 'smgw:Reason').txt(xmlText(q.reason));
}

function writeCertificate(list: XMLBuilder, id: string, cert: ReportCertificate): void {
  const vo = list.ele(VR_NS, 'ValidationObject', { id });
  vo.ele(VR_NS, 'ObjectType').txt('urn:etsi:019102:validationObject:certificate');
  const representation = vo.ele(VR_NS, 'ValidationObjectRepresentation');
  if (cert.der) representation.ele(VR_NS, 'base64').txt(b64(cert.der));
  else representation.ele(VR_NS, 'direct').txt(xmlText(cert.subject));

  // The certificate's own result: validity at signing time and revocation, as a nested report.
  const report = vo.ele(VR_NS, 'ValidationReport');
  const failed = cert.revocation.status === 'revoked' || !cert.validAtSigningTime;
  const indeterminate = !failed && (cert.revocation.status === 'unknown' || cert.revocation.status === 'notChecked');
  const status = report.ele(VR_NS, 'SignatureValidationStatus');
  status
    .ele(VR_NS, 'MainIndication')
    .txt(MAIN_INDICATION_URI[failed ? 'TOTAL_FAILED' : indeterminate ? 'INDETERMINATE' : 'TOTAL_PASSED']);
  if (cert.revocation.status === 'revoked') {
    status.ele(VR_NS, 'SubIndication').txt('urn:etsi:019102:subindication:REVOKED');
  } else if (!cert.validAtSigningTime) {
    status.ele(VR_NS, 'SubIndication').txt('urn:etsi:019102:subindication:OUT_OF_BOUNDS_NO_POE');
  }
  if (cert.revocation.status === 'revoked' && cert.revocation.revokedAt) {
    const revoked = status.ele(VR_NS, 'AssociatedValidationReportData').ele(VR_NS, 'RevocationStatusInformation');
    revoked.ele(VR_NS, 'ValidationObjectId', { VOReference: id });
    revoked.ele(VR_NS, 'RevocationTime').txt(iso(cert.revocation.revokedAt));
    if (cert.revocation.reason) {
      revoked
        .ele(VR_NS, 'RevocationReason')
        .txt(`urn:etsi:019102:revocationReason:${encodeURIComponent(cert.revocation.reason)}`);
    }
  }
  const details = report.ele(VR_NS, 'OtherInformation').ele(SMGW_VR_NS, 'smgw:Certificate', {
    validAtSigningTime: String(cert.validAtSigningTime),
    ...(cert.qualified === undefined ? {} : { qualified: String(cert.qualified) }),
  });
  details.ele(SMGW_VR_NS, 'smgw:Subject').txt(xmlText(cert.subject));
  if (cert.issuer) details.ele(SMGW_VR_NS, 'smgw:Issuer').txt(xmlText(cert.issuer));
  if (cert.serialNumber) details.ele(SMGW_VR_NS, 'smgw:SerialNumber').txt(xmlText(cert.serialNumber));
  details.ele(SMGW_VR_NS, 'smgw:NotBefore').txt(iso(cert.notBefore));
  details.ele(SMGW_VR_NS, 'smgw:NotAfter').txt(iso(cert.notAfter));
  const revocation = details.ele(SMGW_VR_NS, 'smgw:Revocation', { status: cert.revocation.status });
  if (cert.revocation.source) revocation.ele(SMGW_VR_NS, 'smgw:Source').txt(xmlText(cert.revocation.source));
  if (cert.revocation.time) revocation.ele(SMGW_VR_NS, 'smgw:Time').txt(iso(cert.revocation.time));
}
