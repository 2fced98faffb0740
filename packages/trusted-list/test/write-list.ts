// Writes a TS 119 612 list (national list or LOTL) from a small description and signs it with xml-crypto the
// way list operators do: an enveloped signature over the whole document (URI=""), exclusive c14n, RSA-SHA256.
import { SignedXml } from 'xml-crypto';
import type { TestKeyPair } from './test-pki.ts';

export const STATUS = (s: string) => `http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/${s}`;
export const QUALIFIER = (q: string) => `http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/${q}`;
export const CA_QC = 'http://uri.etsi.org/TrstSvc/Svctype/CA/QC';
export const FOR_E_SIGNATURES = 'http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/ForeSignatures';

export interface TestQualification {
  qualifiers: string[];
  /** Certificates with this policy OID get the qualifiers (CriteriaList assert="atLeastOne"). */
  policy: string;
}

export interface TestPeriod {
  status: string;
  since: Date;
  qualifications?: TestQualification[];
}

export interface TestService {
  name: string;
  type?: string;
  cert?: Uint8Array;
  /** Identity by SKI and subject name only (as history entries often give it). */
  skiAndSubject?: { ski: Uint8Array; subject: string };
  current: TestPeriod;
  history?: TestPeriod[];
  additionalServiceInformation?: string[];
}

export interface TestPointer {
  territory: string;
  location: string;
  certs: Uint8Array[];
  mimeType?: string;
}

export interface TestList {
  territory: string;
  sequence: number;
  issued: Date;
  nextUpdate: Date;
  tslType?: string;
  providers: { name: string; services: TestService[] }[];
  pointers?: TestPointer[];
}

export function esc(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

function identity(s: TestService): string {
  const ids: string[] = [];
  if (s.cert) ids.push(`<DigitalId><X509Certificate>${b64(s.cert)}</X509Certificate></DigitalId>`);
  if (s.skiAndSubject) {
    ids.push(`<DigitalId><X509SubjectName>${esc(s.skiAndSubject.subject)}</X509SubjectName></DigitalId>`);
    ids.push(`<DigitalId><X509SKI>${b64(s.skiAndSubject.ski)}</X509SKI></DigitalId>`);
  }
  return `<ServiceDigitalIdentity>${ids.join('')}</ServiceDigitalIdentity>`;
}

function extensions(p: TestPeriod, asi: string[]): string {
  const parts: string[] = [];
  for (const q of p.qualifications ?? []) {
    parts.push(
      `<Extension Critical="true"><ecc:Qualifications><ecc:QualificationElement><ecc:Qualifiers>${q.qualifiers
        .map((u) => `<ecc:Qualifier uri="${esc(u)}"/>`)
        .join(
          '',
        )}</ecc:Qualifiers><ecc:CriteriaList assert="atLeastOne"><ecc:PolicySet><ecc:PolicyIdentifier><xades:Identifier>${esc(
        q.policy,
      )}</xades:Identifier></ecc:PolicyIdentifier></ecc:PolicySet></ecc:CriteriaList></ecc:QualificationElement></ecc:Qualifications></Extension>`,
    );
  }
  for (const uri of asi) {
    parts.push(
      `<Extension Critical="true"><AdditionalServiceInformation><URI xml:lang="en">${esc(uri)}</URI></AdditionalServiceInformation></Extension>`,
    );
  }
  return parts.length ? `<ServiceInformationExtensions>${parts.join('')}</ServiceInformationExtensions>` : '';
}

function period(tag: string, s: TestService, p: TestPeriod): string {
  return `<${tag}><ServiceTypeIdentifier>${s.type ?? CA_QC}</ServiceTypeIdentifier><ServiceName><Name xml:lang="en">${esc(
    s.name,
  )}</Name></ServiceName>${identity(s)}<ServiceStatus>${esc(p.status)}</ServiceStatus><StatusStartingTime>${p.since.toISOString()}</StatusStartingTime>${extensions(
    p,
    s.additionalServiceInformation ?? [],
  )}</${tag}>`;
}

function pointer(p: TestPointer): string {
  return `<OtherTSLPointer><ServiceDigitalIdentities>${p.certs
    .map(
      (c) =>
        `<ServiceDigitalIdentity><DigitalId><X509Certificate>${b64(c)}</X509Certificate></DigitalId></ServiceDigitalIdentity>`,
    )
    .join(
      '',
    )}</ServiceDigitalIdentities><TSLLocation>${esc(p.location)}</TSLLocation><AdditionalInformation><OtherInformation><TSLType>http://uri.etsi.org/TrstSvc/TrustedList/TSLType/EUgeneric</TSLType></OtherInformation><OtherInformation><SchemeTerritory>${esc(
    p.territory,
  )}</SchemeTerritory></OtherInformation><OtherInformation><tslx:MimeType>${esc(
    p.mimeType ?? 'application/vnd.etsi.tsl+xml',
  )}</tslx:MimeType></OtherInformation></AdditionalInformation></OtherTSLPointer>`;
}

export function writeList(list: TestList): string {
  const providers = list.providers
    .map(
      (tsp) =>
        `<TrustServiceProvider><TSPInformation><TSPName><Name xml:lang="en">${esc(tsp.name)}</Name></TSPName></TSPInformation><TSPServices>${tsp.services
          .map(
            (s) =>
              `<TSPService>${period('ServiceInformation', s, s.current)}${
                s.history?.length
                  ? `<ServiceHistory>${s.history.map((h) => period('ServiceHistoryInstance', s, h)).join('')}</ServiceHistory>`
                  : ''
              }</TSPService>`,
          )
          .join('')}</TSPServices></TrustServiceProvider>`,
    )
    .join('');
  return `<?xml version="1.0" encoding="UTF-8"?>
<TrustServiceStatusList xmlns="http://uri.etsi.org/02231/v2#" xmlns:tslx="http://uri.etsi.org/02231/v2/additionaltypes#" xmlns:ecc="http://uri.etsi.org/TrstSvc/SvcInfoExt/eSigDir-1999-93-EC-TrustedList/#" xmlns:xades="http://uri.etsi.org/01903/v1.3.2#" TSLTag="http://uri.etsi.org/19612/TSLTag" Id="TSL-${esc(list.territory)}"><SchemeInformation><TSLVersionIdentifier>5</TSLVersionIdentifier><TSLSequenceNumber>${list.sequence}</TSLSequenceNumber><TSLType>${esc(
    list.tslType ?? 'http://uri.etsi.org/TrstSvc/TrustedList/TSLType/EUgeneric',
  )}</TSLType><SchemeOperatorName><Name xml:lang="en">Test supervisory body ${esc(list.territory)}</Name></SchemeOperatorName><SchemeTerritory>${esc(
    list.territory,
  )}</SchemeTerritory>${list.pointers?.length ? `<PointersToOtherTSL>${list.pointers.map(pointer).join('')}</PointersToOtherTSL>` : ''}<ListIssueDateTime>${list.issued.toISOString()}</ListIssueDateTime><NextUpdate><dateTime>${list.nextUpdate.toISOString()}</dateTime></NextUpdate></SchemeInformation>${
    providers ? `<TrustServiceProviderList>${providers}</TrustServiceProviderList>` : ''
  }</TrustServiceStatusList>`;
}

const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

/** Signs with an enveloped signature; `referenceXpath` other than the root makes a signature that covers less. */
export function signList(
  xml: string,
  signer: TestKeyPair,
  referenceXpath = '/*',
  algorithms = {
    signature: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    digest: 'http://www.w3.org/2001/04/xmlenc#sha256',
  },
): string {
  const sig = new SignedXml({
    privateKey: signer.keyPem,
    publicCert: signer.certPem,
    signatureAlgorithm: algorithms.signature,
    canonicalizationAlgorithm: EXC_C14N,
    getKeyInfoContent: SignedXml.getKeyInfoContent,
  });
  sig.addReference({
    xpath: referenceXpath,
    transforms: [ENVELOPED, EXC_C14N],
    digestAlgorithm: algorithms.digest,
    isEmptyUri: referenceXpath === '/*',
  });
  sig.computeSignature(xml, { location: { reference: '/*', action: 'append' }, prefix: 'ds' });
  return sig.getSignedXml();
}
