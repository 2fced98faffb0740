// The verifier's result in the shape of the ETSI TS 119 102-2 report model (@smgw/trusted-list), which both the XML
// and the PDF report are written from: one place decides what each signature is reported as.
import type { ChainCertificate, ReportedSignature, VerificationResult } from '@smgw/signature-verify';
import {
  type LoadedTrustedList,
  type ReportCertificate,
  type ReportInput,
  type ReportNotice,
  type ReportSignature,
  subIndicationBelongsTo,
} from '@smgw/trusted-list';
import type { Imitation, ImitationReason, ImitationScan } from './report-imitations.ts';

export const VALIDATOR_NAME = 'SecureMail Gateway signature verification';

/**
 * A certificate's addresses the reports list (PDF and XML); the rest are counted. A certificate is the sender's, and
 * one of 1,000 long addresses signing 50 times over made each report 20 MB from a message of 400 KB.
 */
export const MAX_LISTED_ADDRESSES = 10;

/** The sentence for addresses not listed, or undefined when all are. */
export function unlistedAddresses(addresses: readonly string[]): { de: string; en: string } | undefined {
  const more = addresses.length - MAX_LISTED_ADDRESSES;
  if (more <= 0) return undefined;
  return {
    de: `${more} weitere Adressen im Zertifikat sind nicht aufgeführt.`,
    en: `${more} further addresses in the certificate are not listed.`,
  };
}

/** Imitations of the report listed by name (PDF and XML); the rest are counted. Names are the sender's text. */
export const MAX_LISTED_IMITATIONS = 10;

export const IMITATION_NOTICE_CODE = 'REPORT_IMITATION';
export const NOT_EXAMINED_NOTICE_CODE = 'REPORT_IMITATION_NOT_EXAMINED';

export const IMITATION_REASONS: Record<ImitationReason, { de: string; en: string }> = {
  name: { de: 'Name', en: 'name' },
  description: { de: 'Beschreibung', en: 'description' },
  'media-type': { de: 'Medientyp', en: 'media type' },
  'xml-content': { de: 'Inhalt: ETSI-Prüfbericht (XML)', en: 'content: an ETSI validation report (XML)' },
  'pdf-content': { de: 'Inhalt: PDF nennt das Gateway', en: 'content: a PDF naming the gateway' },
};

export interface ImitationNotice {
  code: string;
  sentences: { de: string; en: string }[];
  listed: Imitation[];
}

/**
 * What the report says about parts imitating it (report-imitations.ts), the same in the PDF and the XML: how many
 * there are, that the gateway did not write them and they are the sender's; which (the first ten); and how many
 * parts were beyond the limits and so not looked at.
 */
export function imitationNotices(scan: ImitationScan): ImitationNotice[] {
  const notices: ImitationNotice[] = [];
  const n = scan.imitations.length;
  if (n > 0) {
    const sentences = [
      n === 1
        ? {
            de: 'WARNUNG: Die Nachricht enthält 1 Anhang, der wie ein Prüfbericht benannt ist oder aussieht. Er stammt nicht vom Gateway, sondern vom Absender, und ist nicht vertrauenswürdig.',
            en: 'WARNING: The message contains 1 attachment named like a verification report or looking like one. The gateway did not write it: it is the sender’s and must not be trusted.',
          }
        : {
            de: `WARNUNG: Die Nachricht enthält ${n} Anhänge, die wie ein Prüfbericht benannt sind oder aussehen. Sie stammen nicht vom Gateway, sondern vom Absender, und sind nicht vertrauenswürdig.`,
            en: `WARNING: The message contains ${n} attachments named like a verification report or looking like one. The gateway did not write them: they are the sender’s and must not be trusted.`,
          },
      {
        de: 'Gültig ist allein dieser Bericht des Gateways: er ist neben der Nachricht angehängt, nie in ihr.',
        en: 'Only this report of the gateway counts: it is attached beside the message, never inside it.',
      },
    ];
    if (n > MAX_LISTED_IMITATIONS) {
      const more = n - MAX_LISTED_IMITATIONS;
      sentences.push({ de: `${more} weitere sind nicht aufgeführt.`, en: `${more} more are not listed.` });
    }
    notices.push({ code: IMITATION_NOTICE_CODE, sentences, listed: scan.imitations.slice(0, MAX_LISTED_IMITATIONS) });
  }
  if (scan.notExamined > 0) {
    notices.push({
      code: NOT_EXAMINED_NOTICE_CODE,
      sentences: [
        {
          de: `${scan.notExamined} Teile der Nachricht liegen tiefer oder zahlreicher, als das Gateway prüft: sie wurden nicht auf nachgeahmte Prüfberichte untersucht.`,
          en: `${scan.notExamined} parts of the message lie deeper or further than the gateway examines: they were not checked for imitations of its report.`,
        },
      ],
      listed: [],
    });
  }
  return notices;
}

/** The notices as the XML states them. */
function reportNotices(scan: ImitationScan): ReportNotice[] {
  return imitationNotices(scan).map((notice) => ({
    code: notice.code,
    de: notice.sentences.map((s) => s.de).join(' '),
    en: notice.sentences.map((s) => s.en).join(' '),
    values: notice.listed.map((i) => ({ text: i.name ?? '', path: i.path })),
  }));
}

const REVOCATION: Record<string, { status: ReportCertificate['revocation']['status']; source?: string }> = {
  'good-ocsp': { status: 'good', source: 'OCSP' },
  'good-crl': { status: 'good', source: 'CRL' },
  revoked: { status: 'revoked' },
  unknown: { status: 'unknown' },
  'not-checked': { status: 'notChecked' },
  'trust-anchor': { status: 'notApplicable' },
};

function level(sig: ReportedSignature): ReportSignature['level'] {
  if (sig.indication !== 'TOTAL_PASSED') return 'unknown';
  if (sig.level === 'QES') return 'QES';
  if (sig.level === 'AdES') return sig.qualification?.status === 'qualified' ? 'AdESqc' : 'AdES';
  return 'unknown';
}

/**
 * The sub-indication as the report states it. Every one the verifier gives is in the report's table under its main
 * indication (report.test.ts checks them all); one that were not would be left out rather than make the builder
 * refuse the whole report (the main indication stays, the sentence names it).
 */
function reportSubIndication(sig: ReportedSignature): string | undefined {
  if (sig.indication === 'TOTAL_PASSED' || !sig.subIndication) return undefined;
  return subIndicationBelongsTo(sig.subIndication, sig.indication) ? sig.subIndication : undefined;
}

/** Status, and the source named as "embedded CRL" / "fetched OCSP" with the time the data speaks for. */
function revocationOf(c: ChainCertificate): ReportCertificate['revocation'] {
  const base = REVOCATION[c.revocation] ?? { status: 'unknown' as const };
  if (!c.revocationData) return base;
  return {
    ...base,
    source: `${c.revocationData.source} ${c.revocationData.kind.toUpperCase()}`,
    time: c.revocationData.time,
  };
}

function chainOf(sig: ReportedSignature, signingTime: Date): ReportCertificate[] {
  const certificates = sig.chain?.certificates ?? [];
  return certificates.map((c, index) => ({
    subject: c.subject,
    issuer: c.issuer,
    serialNumber: c.serialNumber,
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    validAtSigningTime: c.notBefore <= signingTime && signingTime <= c.notAfter,
    ...(index === 0 && sig.qualification
      ? { qualified: sig.qualification.status === 'qualified' || sig.qualification.status === 'qualified-qscd' }
      : {}),
    revocation: revocationOf(c),
  }));
}

export function reportSignature(sig: ReportedSignature, result: VerificationResult): ReportSignature {
  // A proven time beats a claimed one for "valid at signing time".
  const signingTime = sig.proofOfExistence ?? sig.claimedSigningTime ?? result.validationTime;
  const sub = reportSubIndication(sig);
  const algorithms = [sig.algorithms.digest, sig.algorithms.signature]
    .filter((a) => a !== undefined)
    .map((a) => ({ name: a.name, oid: a.oid, acceptable: a.acceptable }));
  const chain = chainOf(sig, signingTime);
  const uncovered = result.coverage.uncovered.filter((p) => p.role === 'content').length > 0;
  return {
    id: `${sig.id} (${sig.path}, signer ${sig.signerIndex + 1})`,
    indication: sig.indication,
    ...(sub ? { subIndication: sub } : {}),
    signer: {
      name: sig.signer?.subject ?? '(unknown signer)',
      ...(sig.signer ? { emailAddresses: sig.signer.emailAddresses.slice(0, MAX_LISTED_ADDRESSES) } : {}),
    },
    format: sig.format,
    level: level(sig),
    ...(sig.claimedSigningTime ? { claimedSigningTime: sig.claimedSigningTime } : {}),
    ...(sig.proofOfExistence ? { timestampTime: sig.proofOfExistence } : {}),
    covers: {
      description: sig.covers ? `${sig.covers.description} (${sig.covers.path})` : 'nothing found to cover',
      partial: uncovered,
    },
    chain,
    trustAnchorKnown: chain.at(-1)?.revocation.status === 'notApplicable',
    algorithms,
    ...(sig.qualification
      ? {
          qualification: {
            qualified: sig.qualification.status === 'qualified' || sig.qualification.status === 'qualified-qscd',
            qscd: sig.qualification.status === 'qualified-qscd' ? true : 'unknown',
            type: 'esign',
            qualifiersApplied: [],
            listSource: sig.qualification.source,
            listStale: false,
            reason: sig.qualification.reason,
          },
        }
      : {}),
    messages: [
      sig.sentence,
      ...sig.reasons.map((r) => ({ de: `Technischer Grund (englisch): ${r}`, en: r })),
      ...[unlistedAddresses(sig.signer?.emailAddresses ?? [])].filter((m) => m !== undefined),
    ],
  };
}

export function reportInput(
  result: VerificationResult,
  lists: readonly LoadedTrustedList[],
  imitations: ImitationScan = { imitations: [], notExamined: 0 },
): ReportInput {
  const notices = reportNotices(imitations);
  return {
    ...(notices.length > 0 ? { notices } : {}),
    validationTime: result.validationTime,
    validatorName: VALIDATOR_NAME,
    signatures: result.signatures.map((s) => reportSignature(s, result)),
    trustedLists: lists.map((l) => ({
      source: l.source,
      territory: l.list.territory,
      sequenceNumber: l.list.sequenceNumber,
      stale: l.stale,
    })),
  };
}
