// Reads the model from the signed TrustServiceStatusList element. Only ever called on the XML that the signature
// check returned, so nothing unsigned (a wrapped copy, a second list) can reach the model.
import type { Element } from '@xmldom/xmldom';
import { TrustedListError } from './errors.ts';
import {
  type CriteriaList,
  type DigitalIdentity,
  ECC_NS,
  type ListProblem,
  type MultiLangName,
  type OtherListPointer,
  type Qualification,
  type ServiceExtensions,
  type ServicePeriod,
  type TrustedList,
  type TrustService,
  type TrustServiceProvider,
  TSL_NS,
  TSLX_NS,
  XADES_NS,
} from './model.ts';

const XML_NS = 'http://www.w3.org/XML/1998/namespace';

function elements(parent: Element | undefined, ns: string, localName: string): Element[] {
  if (!parent) return [];
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as Element).namespaceURI === ns && (n as Element).localName === localName) {
      out.push(n as Element);
    }
  }
  return out;
}

function element(parent: Element | undefined, ns: string, localName: string): Element | undefined {
  return elements(parent, ns, localName)[0];
}

function childElements(parent: Element): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) if (n.nodeType === 1) out.push(n as Element);
  return out;
}

function text(el: Element | undefined): string | undefined {
  const value = el?.textContent?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function names(parent: Element | undefined): MultiLangName[] {
  return elements(parent, TSL_NS, 'Name').map((n) => ({
    lang: n.getAttributeNS(XML_NS, 'lang') ?? '',
    value: (n.textContent ?? '').trim(),
  }));
}

function dateTime(value: string | undefined): Date | undefined {
  if (!value || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value)) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function base64(value: string | undefined): Uint8Array | undefined {
  const compact = value?.replace(/\s+/g, '');
  if (!compact || !BASE64.test(compact) || compact.length % 4 !== 0) return undefined;
  return new Uint8Array(Buffer.from(compact, 'base64'));
}

/**
 * Whether a value the schema types as a non-empty anyURI is well-formed: no spaces or characters URIs never
 * carry, and an authority, if present, names a host and, after a colon, a numeric port. A relative reference
 * passes, as it does in the schema; "https://https://host" (de-tl.xml) has the empty port in "https:" and fails.
 */
export function isWellFormedUri(value: string): boolean {
  if (!/^[^\s<>"{}|\\^`]+$/.test(value)) return false;
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(value)?.[1];
  if (authority === undefined) return true;
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  const port = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(hostPort);
  if (!port || port[1] === '') return false;
  return port[2] === undefined || /^\d+$/.test(port[2]);
}

const URI_ELEMENTS = new Set(['URI', 'TSLLocation', 'ServiceSupplyPoint', 'ServiceTypeIdentifier', 'ServiceStatus']);

/** Names every malformed URI in the list with the path to it, so the loader reports instead of failing. */
function findMalformedUris(root: Element): ListProblem[] {
  const problems: ListProblem[] = [];
  const walk = (el: Element, path: string): void => {
    const seen = new Map<string, number>();
    for (const child of childElements(el)) {
      const position = (seen.get(child.localName ?? '') ?? 0) + 1;
      seen.set(child.localName ?? '', position);
      const where = `${path}/${child.localName}[${position}]`;
      if (child.namespaceURI === TSL_NS && URI_ELEMENTS.has(child.localName ?? '')) {
        const value = (child.textContent ?? '').trim();
        if (!isWellFormedUri(value)) {
          problems.push({ where, problem: `not a well-formed URI: ${JSON.stringify(value.slice(0, 200))}` });
        }
      } else {
        walk(child, where);
      }
    }
  };
  walk(root, root.localName ?? '');
  return problems;
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new TrustedListError('TL_NOT_A_TRUSTED_LIST', `the list has no valid ${what}`);
  return value;
}

export function readTrustedList(root: Element): TrustedList {
  if (root.namespaceURI !== TSL_NS || root.localName !== 'TrustServiceStatusList') {
    throw new TrustedListError('TL_NOT_A_TRUSTED_LIST', 'the root element is not a TS 119 612 TrustServiceStatusList');
  }
  const scheme = required(element(root, TSL_NS, 'SchemeInformation'), 'SchemeInformation');
  const problems = findMalformedUris(root);
  const sequence = Number(text(element(scheme, TSL_NS, 'TSLSequenceNumber')));
  const version = Number(text(element(scheme, TSL_NS, 'TSLVersionIdentifier')));
  const nextUpdateEl = element(scheme, TSL_NS, 'NextUpdate');
  const nextUpdateText = text(element(nextUpdateEl, TSL_NS, 'dateTime'));
  const nextUpdate = dateTime(nextUpdateText);
  if (nextUpdateText !== undefined && nextUpdate === undefined) {
    problems.push({
      where: 'SchemeInformation/NextUpdate',
      problem: 'not a valid dateTime: the list counts as closed',
    });
  }
  const territory = required(text(element(scheme, TSL_NS, 'SchemeTerritory')), 'SchemeTerritory');
  const providers: TrustServiceProvider[] = [];
  const tspList = element(root, TSL_NS, 'TrustServiceProviderList');
  elements(tspList, TSL_NS, 'TrustServiceProvider').forEach((tsp, i) => {
    providers.push(readProvider(tsp, `TrustServiceProvider[${i + 1}]`, problems));
  });
  return {
    territory,
    sequenceNumber: required(
      Number.isSafeInteger(sequence) && sequence > 0 ? sequence : undefined,
      'TSLSequenceNumber',
    ),
    versionIdentifier: Number.isSafeInteger(version) ? version : 0,
    tslType: text(element(scheme, TSL_NS, 'TSLType')) ?? '',
    operatorName: names(element(scheme, TSL_NS, 'SchemeOperatorName')),
    issueDate: required(dateTime(text(element(scheme, TSL_NS, 'ListIssueDateTime'))), 'ListIssueDateTime'),
    nextUpdate,
    pointers: elements(element(scheme, TSL_NS, 'PointersToOtherTSL'), TSL_NS, 'OtherTSLPointer').map(readPointer),
    providers,
    problems,
  };
}

function readPointer(pointer: Element): OtherListPointer {
  const info = elements(element(pointer, TSL_NS, 'AdditionalInformation'), TSL_NS, 'OtherInformation');
  const inInfo = (ns: string, name: string): string | undefined => {
    for (const other of info) {
      const found = text(element(other, ns, name));
      if (found !== undefined) return found;
    }
    return undefined;
  };
  const signerCertificates: Uint8Array[] = [];
  for (const identity of elements(
    element(pointer, TSL_NS, 'ServiceDigitalIdentities'),
    TSL_NS,
    'ServiceDigitalIdentity',
  )) {
    for (const id of readDigitalIdentities(identity)) if (id.kind === 'certificate') signerCertificates.push(id.der);
  }
  return {
    territory: inInfo(TSL_NS, 'SchemeTerritory'),
    location: text(element(pointer, TSL_NS, 'TSLLocation')) ?? '',
    mimeType: inInfo(TSLX_NS, 'MimeType'),
    tslType: inInfo(TSL_NS, 'TSLType'),
    signerCertificates,
  };
}

function readDigitalIdentities(identity: Element | undefined): DigitalIdentity[] {
  const out: DigitalIdentity[] = [];
  for (const id of elements(identity, TSL_NS, 'DigitalId')) {
    const cert = element(id, TSL_NS, 'X509Certificate');
    const subject = element(id, TSL_NS, 'X509SubjectName');
    const ski = element(id, TSL_NS, 'X509SKI');
    if (cert) {
      const der = base64(cert.textContent ?? '');
      out.push(der ? { kind: 'certificate', der } : { kind: 'other' });
    } else if (subject) {
      out.push({ kind: 'subjectName', name: (subject.textContent ?? '').trim() });
    } else if (ski) {
      const bytes = base64(ski.textContent ?? '');
      out.push(bytes ? { kind: 'ski', ski: bytes } : { kind: 'other' });
    } else {
      out.push({ kind: 'other' });
    }
  }
  return out;
}

function readProvider(tsp: Element, where: string, problems: ListProblem[]): TrustServiceProvider {
  const info = element(tsp, TSL_NS, 'TSPInformation');
  const services: TrustService[] = [];
  elements(element(tsp, TSL_NS, 'TSPServices'), TSL_NS, 'TSPService').forEach((svc, i) => {
    const at = `${where}/TSPService[${i + 1}]`;
    const current = readPeriod(element(svc, TSL_NS, 'ServiceInformation'), at, problems);
    if (!current) return; // a service that cannot be read cannot vouch for anything
    const history: ServicePeriod[] = [];
    elements(element(svc, TSL_NS, 'ServiceHistory'), TSL_NS, 'ServiceHistoryInstance').forEach((h, j) => {
      const period = readPeriod(h, `${at}/ServiceHistoryInstance[${j + 1}]`, problems);
      if (period) history.push(period);
    });
    history.sort((a, b) => b.statusStartingTime.getTime() - a.statusStartingTime.getTime());
    services.push({ current, history });
  });
  return {
    name: names(element(info, TSL_NS, 'TSPName')),
    tradeName: names(element(info, TSL_NS, 'TSPTradeName')),
    services,
  };
}

function readPeriod(el: Element | undefined, where: string, problems: ListProblem[]): ServicePeriod | undefined {
  const serviceType = text(element(el, TSL_NS, 'ServiceTypeIdentifier'));
  const status = text(element(el, TSL_NS, 'ServiceStatus'));
  const start = dateTime(text(element(el, TSL_NS, 'StatusStartingTime')));
  if (!el || !serviceType || !status || !start) {
    problems.push({
      where,
      problem: 'service type, status or status starting time missing or malformed: service ignored',
    });
    return undefined;
  }
  return {
    serviceType,
    serviceName: names(element(el, TSL_NS, 'ServiceName')),
    status,
    statusStartingTime: start,
    digitalIdentities: readDigitalIdentities(element(el, TSL_NS, 'ServiceDigitalIdentity')),
    extensions: readExtensions(element(el, TSL_NS, 'ServiceInformationExtensions')),
  };
}

const KNOWN_EXTENSIONS = new Set([
  `${ECC_NS} Qualifications`,
  `${TSL_NS} AdditionalServiceInformation`,
  `${TSLX_NS} TakenOverBy`,
  `${TSL_NS} ExpiredCertsRevocationInfo`,
]);

function readExtensions(el: Element | undefined): ServiceExtensions {
  const out: ServiceExtensions = { qualifications: [], additionalServiceInformation: [], unknownCritical: [] };
  for (const ext of elements(el, TSL_NS, 'Extension')) {
    const critical = ext.getAttribute('Critical') === 'true';
    for (const content of childElements(ext)) {
      const key = `${content.namespaceURI} ${content.localName}`;
      if (key === `${ECC_NS} Qualifications`) {
        for (const q of elements(content, ECC_NS, 'QualificationElement'))
          out.qualifications.push(readQualification(q));
      } else if (key === `${TSL_NS} AdditionalServiceInformation`) {
        const uri = text(element(content, TSL_NS, 'URI'));
        if (uri) out.additionalServiceInformation.push(uri);
      } else if (critical && !KNOWN_EXTENSIONS.has(key)) {
        out.unknownCritical.push(`{${content.namespaceURI}}${content.localName}`);
      }
    }
  }
  return out;
}

function readQualification(el: Element): Qualification {
  const qualifiers = elements(element(el, ECC_NS, 'Qualifiers'), ECC_NS, 'Qualifier')
    .map((q) => q.getAttribute('uri') ?? '')
    .filter((uri) => uri !== '');
  const criteria = element(el, ECC_NS, 'CriteriaList');
  return { qualifiers, criteria: criteria ? readCriteria(criteria) : emptyCriteria() };
}

function emptyCriteria(): CriteriaList {
  return { assert: 'all', policySets: [], keyUsages: [], nested: [], unsupported: ['(no CriteriaList)'] };
}

function readCriteria(el: Element): CriteriaList {
  const assertion = el.getAttribute('assert');
  const out: CriteriaList = {
    assert: assertion === 'atLeastOne' || assertion === 'none' ? assertion : 'all',
    policySets: [],
    keyUsages: [],
    nested: [],
    unsupported: [],
  };
  for (const child of childElements(el)) {
    if (child.namespaceURI === ECC_NS && child.localName === 'PolicySet') {
      out.policySets.push(
        elements(child, ECC_NS, 'PolicyIdentifier')
          .map((p) => text(element(p, XADES_NS, 'Identifier')) ?? '')
          .map((oid) => oid.replace(/^urn:oid:/i, '')),
      );
    } else if (child.namespaceURI === ECC_NS && child.localName === 'KeyUsage') {
      const bits: Record<string, boolean> = {};
      for (const bit of elements(child, ECC_NS, 'KeyUsageBit')) {
        bits[bit.getAttribute('name') ?? ''] = text(bit) === 'true';
      }
      out.keyUsages.push(bits);
    } else if (child.namespaceURI === ECC_NS && child.localName === 'CriteriaList') {
      out.nested.push(readCriteria(child));
    } else if (child.namespaceURI === ECC_NS && child.localName === 'Description') {
      // free text, no criterion
    } else {
      out.unsupported.push(`{${child.namespaceURI}}${child.localName}`);
    }
  }
  return out;
}
