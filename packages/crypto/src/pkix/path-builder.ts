// Builds candidate paths from the end entity towards a trust anchor by issuer/subject name chaining,
// trying issuers whose subjectKeyIdentifier matches the authorityKeyIdentifier first. Signatures and
// everything else are checked afterwards, path by path (§6.1), so a wrong guess costs only that path.
import type { ParsedCertificate } from './certificate.ts';

export interface TrustAnchor {
  certificate: ParsedCertificate;
  enforceConstraints: boolean;
  checkValidity: boolean;
}

export interface CandidatePath {
  /** End entity first, anchor excluded. */
  certificates: ParsedCertificate[];
  anchor: TrustAnchor;
}

const MAX_DEPTH = 12;
const MAX_PATHS = 24;
/**
 * Chains tried in all. MAX_PATHS bounds only the paths that reach an anchor: n certificates of one name, each
 * issued by that name and none reaching an anchor, are otherwise tried in every order (n!/(n-11)! chains), which a
 * stranger's signature with a bag of such certificates can demand.
 */
const MAX_CHAINS_TRIED = 4096;

function byKeyIdentifierMatch(subject: ParsedCertificate) {
  return (a: { subjectKeyIdentifier?: string }, b: { subjectKeyIdentifier?: string }): number => {
    const aki = subject.authorityKeyIdentifier;
    if (!aki) return 0;
    return Number(b.subjectKeyIdentifier === aki) - Number(a.subjectKeyIdentifier === aki);
  };
}

export function buildCandidatePaths(
  endEntity: ParsedCertificate,
  intermediates: ParsedCertificate[],
  anchors: TrustAnchor[],
): { paths: CandidatePath[]; reachedUntrustedRoot: boolean } {
  const paths: CandidatePath[] = [];
  let reachedUntrustedRoot = false;
  const anchorFingerprints = new Set(anchors.map((anchor) => anchor.certificate.fingerprint));
  const bySubject = new Map<string, ParsedCertificate[]>();
  for (const certificate of intermediates) {
    if (anchorFingerprints.has(certificate.fingerprint)) continue;
    const list = bySubject.get(certificate.subject) ?? [];
    if (!list.some((c) => c.fingerprint === certificate.fingerprint)) list.push(certificate);
    bySubject.set(certificate.subject, list);
  }
  let chainsTried = 0;
  const extend = (chain: ParsedCertificate[]): void => {
    if (paths.length >= MAX_PATHS || ++chainsTried > MAX_CHAINS_TRIED) return;
    const current = chain[chain.length - 1] as ParsedCertificate;
    const matchingAnchors = anchors.filter((anchor) => anchor.certificate.subject === current.issuer);
    matchingAnchors.sort((a, b) => byKeyIdentifierMatch(current)(a.certificate, b.certificate));
    for (const anchor of matchingAnchors) paths.push({ certificates: [...chain], anchor });
    if (chain.length >= MAX_DEPTH) return;
    const issuers = (bySubject.get(current.issuer) ?? []).filter(
      (c) => !chain.some((x) => x.fingerprint === c.fingerprint),
    );
    issuers.sort(byKeyIdentifierMatch(current));
    for (const issuer of issuers) extend([...chain, issuer]);
    if (matchingAnchors.length === 0 && issuers.length === 0 && current.selfIssued) reachedUntrustedRoot = true;
  };
  extend([endEntity]);
  return { paths, reachedUntrustedRoot };
}
