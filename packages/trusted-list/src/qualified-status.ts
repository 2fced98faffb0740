// Qualified status of a signer's certificate at signing time from the trusted lists, after ETSI TS 119 615 in
// simplified form (README "What is simplified"): find the CA/QC service whose identity is the issuer, take the
// service's status at the signing time from its history, and let the service's qualifiers override or complete
// the certificate's own QC statements.
import { timingSafeEqual } from 'node:crypto';
import {
  type CertificateFacts,
  type CertificateInput,
  certificateFacts,
  normaliseDistinguishedName,
  type QcStatements,
  type QcType,
} from './certificate-facts.ts';
import {
  type CriteriaList,
  type DigitalIdentity,
  type LoadedTrustedList,
  QUALIFIER_PREFIX,
  qualifierName,
  SERVICE_TYPE,
  type ServicePeriod,
  STATUS_PREFIX,
  statusName,
  type TrustService,
  type TrustServiceProvider,
} from './model.ts';

/** eIDAS applies from 1 July 2016; before it the Directive 1999/93/EC statuses count. */
export const EIDAS_START = new Date('2016-07-01T00:00:00Z');

const GRANTED = `${STATUS_PREFIX}granted`;
const PRE_EIDAS_QUALIFIED = new Set(
  ['undersupervision', 'supervisionincessation', 'accredited', 'setbynationallaw'].map((s) => STATUS_PREFIX + s),
);

const Q = (name: string) => QUALIFIER_PREFIX + name;
const ADDS_QSCD = new Set([Q('QCWithSSCD'), Q('QCWithQSCD'), Q('QCQSCDManagedOnBehalf')]);
const REMOVES_QSCD = new Set([Q('QCNoSSCD'), Q('QCNoQSCD')]);
const QSCD_AS_IN_CERT = new Set([Q('QCSSCDStatusAsInCert'), Q('QCQSCDStatusAsInCert')]);
/** Qualifiers that take something away: applied even when their criteria cannot be evaluated. */
const RESTRICTIVE = new Set([Q('NotQualified'), Q('QCForLegalPerson'), ...REMOVES_QSCD]);

const ASI = 'http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/';
const ASI_TYPE: Record<string, QcType> = {
  [`${ASI}ForeSignatures`]: 'esign',
  [`${ASI}ForeSeals`]: 'eseal',
  [`${ASI}ForWebSiteAuthentication`]: 'web',
};

export type CertificatePath = { issuer: CertificateInput } | { chain: readonly CertificateInput[] };

export interface QualifiedStatus {
  /** A qualified certificate at signing time (for the type below). */
  qualified: boolean;
  /** Whether the private key sat in a QSCD/SSCD; 'unknown' when neither list nor certificate says. */
  qscd: boolean | 'unknown';
  /** What the certificate is qualified for, from qualifiers, QcType or the service's additional information. */
  type: QcType | 'unknown';
  /** Qualified, for electronic signatures, with a QSCD: what a QES needs from the certificate. */
  qualifiedForESignatureWithQscd: boolean;
  territory: string | undefined;
  providerName: string | undefined;
  serviceName: string | undefined;
  /** Short status name at signing time ("granted", "withdrawn" …) and its URI and start. */
  status: string | undefined;
  statusUri: string | undefined;
  statusSince: Date | undefined;
  /** How the issuer was found in the list: by its key, or only by SKI and subject name. */
  matchedBy: 'certificate' | 'skiAndSubject' | undefined;
  /** Short names of the qualifiers that were applied. */
  qualifiersApplied: string[];
  /** The list the answer came from was past its NextUpdate. */
  listStale: boolean;
  reason: string;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

function sameRdns(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function firstName(names: { lang: string; value: string }[]): string | undefined {
  return (names.find((n) => n.lang === 'en') ?? names[0])?.value;
}

// Listed certificates are parsed once per loaded list, not once per signature.
const listedFacts = new WeakMap<Uint8Array, CertificateFacts | null>();

function factsOfListed(der: Uint8Array): CertificateFacts | null {
  let facts = listedFacts.get(der);
  if (facts === undefined) {
    try {
      facts = certificateFacts(der);
    } catch {
      facts = null; // an unreadable listed certificate matches nothing
    }
    listedFacts.set(der, facts);
  }
  return facts;
}

/** How the issuer matches one ServiceDigitalIdentity, if it does. */
function matchIdentity(ids: DigitalIdentity[], issuer: CertificateFacts): 'certificate' | 'skiAndSubject' | undefined {
  for (const id of ids) {
    if (id.kind !== 'certificate') continue;
    if (sameBytes(id.der, issuer.der)) return 'certificate';
    const listed = factsOfListed(id.der);
    if (listed && sameBytes(listed.spki, issuer.spki) && sameRdns(listed.subjectRdns, issuer.subjectRdns)) {
      return 'certificate';
    }
  }
  const ski = ids.find((id) => id.kind === 'ski');
  const subject = ids.find((id) => id.kind === 'subjectName');
  if (ski?.kind === 'ski' && subject?.kind === 'subjectName' && issuer.ski) {
    if (sameBytes(ski.ski, issuer.ski) && sameRdns(normaliseDistinguishedName(subject.name), issuer.subjectRdns)) {
      return 'skiAndSubject';
    }
  }
  return undefined;
}

function serviceMatch(service: TrustService, issuer: CertificateFacts): 'certificate' | 'skiAndSubject' | undefined {
  let best: 'certificate' | 'skiAndSubject' | undefined;
  for (const period of [service.current, ...service.history]) {
    const m = matchIdentity(period.digitalIdentities, issuer);
    if (m === 'certificate') return m;
    best ??= m;
  }
  return best;
}

/** The period in force at `at`: the current information, else the newest history entry that started before. */
export function periodAt(service: TrustService, at: Date): ServicePeriod | undefined {
  if (service.current.statusStartingTime <= at) return service.current;
  return service.history.find((h) => h.statusStartingTime <= at);
}

type Tri = true | false | 'unknown';

function evaluateCriteria(criteria: CriteriaList, signer: CertificateFacts | undefined): Tri {
  if (!signer) return 'unknown';
  const results: Tri[] = [
    ...criteria.policySets.map((set): Tri => set.every((oid) => signer.policies.includes(oid))),
    ...criteria.keyUsages.map(
      (bits): Tri =>
        signer.keyUsage === undefined
          ? false
          : Object.entries(bits).every(([bit, value]) => (signer.keyUsage?.[bit] ?? false) === value),
    ),
    ...criteria.nested.map((n) => evaluateCriteria(n, signer)),
    ...criteria.unsupported.map((): Tri => 'unknown'),
  ];
  if (criteria.assert === 'all') {
    if (results.includes(false)) return false;
    return results.includes('unknown') ? 'unknown' : true;
  }
  if (criteria.assert === 'atLeastOne') {
    if (results.includes(true)) return true;
    return results.includes('unknown') ? 'unknown' : false;
  }
  if (results.includes(true)) return false;
  return results.includes('unknown') ? 'unknown' : true;
}

interface Candidate {
  loaded: LoadedTrustedList;
  provider: TrustServiceProvider;
  service: TrustService;
  matchedBy: 'certificate' | 'skiAndSubject';
}

function notQualified(reason: string, extra: Partial<QualifiedStatus> = {}): QualifiedStatus {
  return {
    qualified: false,
    qscd: 'unknown',
    type: 'unknown',
    qualifiedForESignatureWithQscd: false,
    territory: undefined,
    providerName: undefined,
    serviceName: undefined,
    status: undefined,
    statusUri: undefined,
    statusSince: undefined,
    matchedBy: undefined,
    qualifiersApplied: [],
    listStale: false,
    reason,
    ...extra,
  };
}

/**
 * The qualified status of the certificate issued by `path`'s issuer at `signingTime`. With a chain
 * ([signer, issuer, …]) the qualifiers' criteria are evaluated against the signer certificate; with the issuer
 * alone, qualifiers whose criteria need the signer are applied only when they take something away.
 * `certificateQcStatements` are the signer certificate's QC statements (read from the chain's signer if omitted).
 */
export function qualifiedStatusAt(
  trustedLists: readonly LoadedTrustedList[],
  path: CertificatePath,
  signingTime: Date,
  certificateQcStatements?: QcStatements,
): QualifiedStatus {
  const chain = 'chain' in path ? path.chain.map(certificateFacts) : undefined;
  const signer = chain?.[0];
  const issuer = chain ? chain[1] : certificateFacts((path as { issuer: CertificateInput }).issuer);
  if (!issuer) return notQualified('the chain has no issuer certificate');
  const qc: QcStatements = certificateQcStatements ?? signer?.qcStatements ?? {};

  const candidates: Candidate[] = [];
  for (const loaded of trustedLists) {
    for (const provider of loaded.list.providers) {
      for (const service of provider.services) {
        const matchedBy = serviceMatch(service, issuer);
        if (matchedBy) candidates.push({ loaded, provider, service, matchedBy });
      }
    }
  }
  if (candidates.length === 0) {
    return notQualified(`the issuer (${issuer.subjectText}) is not a service in any trusted list`);
  }
  const judged = candidates.map((c) => judge(c, signingTime, signer, qc));
  // Services in a qualifying status at that time decide; if none is, the most telling refusal is returned.
  const deciding = judged.filter((j) => j.inQualifyingStatus).map((j) => j.result);
  if (deciding.length === 0) {
    return (judged.find((j) => j.result.status !== undefined) ?? (judged[0] as Judged)).result;
  }
  const first = deciding[0] as QualifiedStatus;
  const against = deciding.find((r) => r.qualified !== first.qualified);
  if (against) {
    // two services for the same issuer disagree at that time: never pick the favourable one
    const yes = first.qualified ? first : against;
    const no = first.qualified ? against : first;
    return {
      ...no,
      reason: `conflicting services for the issuer: ${yes.serviceName} qualifies, ${no.serviceName} does not (${no.reason})`,
    };
  }
  if (deciding.some((r) => r.qscd !== first.qscd)) {
    return {
      ...first,
      qscd: 'unknown',
      qualifiedForESignatureWithQscd: false,
      reason: `${first.reason}; the services disagree on the QSCD`,
    };
  }
  return first;
}

interface Judged {
  result: QualifiedStatus;
  inQualifyingStatus: boolean;
}

function judge(c: Candidate, at: Date, signer: CertificateFacts | undefined, qc: QcStatements): Judged {
  const base: Partial<QualifiedStatus> = {
    territory: c.loaded.list.territory,
    providerName: firstName(c.provider.name),
    serviceName: firstName(c.service.current.serviceName),
    matchedBy: c.matchedBy,
    listStale: c.loaded.stale,
  };
  const refused = (reason: string): Judged => ({ result: notQualified(reason, base), inQualifyingStatus: false });
  const period = periodAt(c.service, at);
  if (!period) return refused(`the service was not yet listed at ${at.toISOString()}`);
  Object.assign(base, {
    serviceName: firstName(period.serviceName) ?? base.serviceName,
    status: statusName(period.status),
    statusUri: period.status,
    statusSince: period.statusStartingTime,
  });
  if (period.serviceType !== SERVICE_TYPE.caQc) {
    return refused(`the service is of type ${period.serviceType}, not a CA for qualified certificates`);
  }
  const statusOk = period.status === GRANTED || (PRE_EIDAS_QUALIFIED.has(period.status) && at < EIDAS_START);
  if (!statusOk) {
    return refused(`the service status at ${at.toISOString()} was ${statusName(period.status)}`);
  }
  if (period.extensions.unknownCritical.length > 0) {
    return refused(
      `the service has a critical extension this gateway does not understand (${period.extensions.unknownCritical.join(', ')})`,
    );
  }

  const applied: string[] = [];
  const notes: string[] = [];
  for (const q of period.extensions.qualifications) {
    const met = evaluateCriteria(q.criteria, signer);
    for (const uri of q.qualifiers) {
      if (met === true || (met === 'unknown' && RESTRICTIVE.has(uri))) applied.push(uri);
      else if (met === 'unknown') notes.push(`${qualifierName(uri)} not applied: its criteria could not be evaluated`);
    }
  }
  const has = (name: string) => applied.includes(Q(name));

  let qualified = qc.qcCompliance === true;
  if (has('QCStatement')) qualified = true;
  if (has('NotQualified')) qualified = false;

  let type: QcType | 'unknown' = 'unknown';
  if (has('QCForESig')) type = 'esign';
  else if (has('QCForESeal') || has('QCForLegalPerson')) type = 'eseal';
  else if (has('QCForWSA')) type = 'web';
  else if (qc.qcTypes && qc.qcTypes.length === 1) type = qc.qcTypes[0] as QcType;
  else if (qc.qcTypes && qc.qcTypes.length === 0 && at < EIDAS_START) type = 'esign';
  const asiTypes = period.extensions.additionalServiceInformation
    .map((u) => ASI_TYPE[u])
    .filter((t) => t !== undefined);
  if (type === 'unknown' && asiTypes.length === 1) type = asiTypes[0] as QcType;
  if (qualified && type !== 'unknown' && asiTypes.length > 0 && !asiTypes.includes(type) && at >= EIDAS_START) {
    qualified = false;
    notes.push(`the service is not listed for ${type} (additional service information)`);
  }

  let qscd: boolean | 'unknown' = qc.qcSSCD === undefined ? 'unknown' : qc.qcSSCD;
  if (applied.some((u) => ADDS_QSCD.has(u))) qscd = true;
  if (applied.some((u) => REMOVES_QSCD.has(u))) qscd = false;
  if (applied.some((u) => QSCD_AS_IN_CERT.has(u))) qscd = qc.qcSSCD === undefined ? 'unknown' : qc.qcSSCD;

  const reason = qualified
    ? `qualified: ${statusName(period.status)} since ${period.statusStartingTime.toISOString()}`
    : has('NotQualified')
      ? 'the trusted list marks certificates like this one NotQualified'
      : qc.qcCompliance === undefined
        ? 'the certificate QC statements are unknown and no QCStatement qualifier applies'
        : 'the certificate has no QcCompliance statement and no QCStatement qualifier applies';
  const result: QualifiedStatus = {
    ...(base as QualifiedStatus),
    qualified,
    qscd,
    type,
    qualifiedForESignatureWithQscd: qualified && type === 'esign' && qscd === true,
    qualifiersApplied: applied.map(qualifierName),
    reason: [reason, ...notes, c.loaded.stale ? `the list ${c.loaded.source} is past its NextUpdate` : '']
      .filter((s) => s !== '')
      .join('; '),
  };
  return { result, inQualifyingStatus: true };
}

/** Certificates of every CA/QC service in the lists (any period): the keys a chain should be anchored in. */
export function qualifiedCaCertificates(trustedLists: readonly LoadedTrustedList[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const loaded of trustedLists) {
    for (const provider of loaded.list.providers) {
      for (const service of provider.services) {
        for (const period of [service.current, ...service.history]) {
          if (period.serviceType !== SERVICE_TYPE.caQc) continue;
          for (const id of period.digitalIdentities) if (id.kind === 'certificate') out.push(id.der);
        }
      }
    }
  }
  return out;
}
