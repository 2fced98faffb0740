// The basic path validation of RFC 5280 §6.1 over one candidate path, anchor first, as plain steps.
// Revocation (§6.1.3 a.3) is checked separately, after the path is otherwise valid.
import type { KeyObject } from 'node:crypto';
import type * as asn1js from 'asn1js';
import { EXT, type ParsedCertificate } from './certificate.ts';
import { constrainedNames, nameConstraintViolation } from './name-constraints.ts';
import type { CandidatePath } from './path-builder.ts';
import {
  initialPolicyTree,
  intersectWithInitialPolicySet,
  type PolicyTree,
  processCertificatePolicies,
  processPolicyMappings,
} from './policy-tree.ts';
import { dsaParametersOf, publicKeyOf, verifySignature, weakKeyReason } from './signature.ts';
import { type AlgorithmPolicy, ANY_POLICY, type PathValidationFailure, type PathValidationInput } from './types.ts';

/** Extensions whose meaning we process (or that carry no constraint), so they may be critical. */
const PROCESSED_EXTENSIONS = new Set<string>([
  EXT.subjectKeyIdentifier,
  EXT.authorityKeyIdentifier,
  EXT.keyUsage,
  EXT.subjectAltName,
  EXT.issuerAltName,
  EXT.basicConstraints,
  EXT.nameConstraints,
  EXT.crlDistributionPoints,
  EXT.certificatePolicies,
  EXT.policyMappings,
  EXT.policyConstraints,
  EXT.extKeyUsage,
  EXT.inhibitAnyPolicy,
  EXT.freshestCrl,
  EXT.authorityInfoAccess,
]);

export const PURPOSE_OIDS: Record<string, string> = {
  emailProtection: '1.3.6.1.5.5.7.3.4',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};
const ANY_EXTENDED_KEY_USAGE = '2.5.29.37.0';

interface Step {
  certificate: ParsedCertificate;
  isAnchor: boolean;
  /** Index reported to the caller: 0 = end entity. */
  index: number;
}

function fail(code: PathValidationFailure['code'], reason: string, certificateIndex?: number): PathValidationFailure {
  return { ok: false, code, reason, ...(certificateIndex !== undefined ? { certificateIndex } : {}) };
}

function describe(step: Step): string {
  return step.isAnchor
    ? 'the trust anchor'
    : step.index === 0
      ? 'the end-entity certificate'
      : `certificate ${step.index} of the path`;
}

const KNOWN_POLICY_QUALIFIERS = new Set(['1.3.6.1.5.5.7.2.1', '1.3.6.1.5.5.7.2.2']);

function unknownCriticalExtension(certificate: ParsedCertificate): string | undefined {
  for (const [oid, critical] of certificate.extensions) {
    if (critical && !PROCESSED_EXTENSIONS.has(oid)) return oid;
  }
  // A critical certificatePolicies with a qualifier we cannot interpret is not fully processed either.
  if (certificate.extensions.get(EXT.certificatePolicies) === true) {
    const qualifierIds = (certificate.policies ?? []).flatMap((p) =>
      p.qualifiers.map((q) => (q as { policyQualifierId?: string }).policyQualifierId),
    );
    if (qualifierIds.some((id) => !KNOWN_POLICY_QUALIFIERS.has(id ?? '')))
      return `${EXT.certificatePolicies} (unknown policy qualifier)`;
  }
  return undefined;
}

function checkValidityPeriod(step: Step, time: Date): PathValidationFailure | undefined {
  const { certificate } = step;
  if (time.getTime() < certificate.notBefore.getTime()) {
    return fail(
      'NOT_YET_VALID',
      `${describe(step)} is not valid before ${certificate.notBefore.toISOString()}.`,
      step.index,
    );
  }
  if (time.getTime() > certificate.notAfter.getTime()) {
    return fail('EXPIRED', `${describe(step)} expired on ${certificate.notAfter.toISOString()}.`, step.index);
  }
  return undefined;
}

function extendedKeyUsageAllows(certificate: ParsedCertificate, purpose: PathValidationInput['purpose']): boolean {
  if (purpose === 'any' || certificate.extendedKeyUsage === undefined) return true;
  const wanted = PURPOSE_OIDS[purpose];
  return (
    certificate.extendedKeyUsage.includes(ANY_EXTENDED_KEY_USAGE) ||
    (wanted !== undefined && certificate.extendedKeyUsage.includes(wanted))
  );
}

export interface ProcessedPath {
  policies: string[];
}

export function processPath(
  candidate: CandidatePath,
  input: PathValidationInput,
  algorithmPolicy: AlgorithmPolicy,
): ProcessedPath | PathValidationFailure {
  const anchorIndex = candidate.certificates.length;
  const steps: Step[] = candidate.certificates
    .map((certificate, index) => ({ certificate, isAnchor: false, index }))
    .reverse();
  const anchor = candidate.anchor.certificate;
  const anchorStep: Step = { certificate: anchor, isAnchor: true, index: anchorIndex };
  // A constrained anchor with certificate policies or mappings takes part in policy processing as the first
  // certificate (its signature and validity are not checked; it is self-issued, so no counter moves).
  const anchorInPolicyTree =
    candidate.anchor.enforceConstraints && (anchor.policies !== undefined || anchor.policyMappings !== undefined);
  if (anchorInPolicyTree) steps.unshift(anchorStep);
  const n = steps.length;

  // §6.1.2 initialization.
  let tree: PolicyTree = initialPolicyTree();
  let explicitPolicy = input.initialExplicitPolicy ? 0 : n + 1;
  let inhibitAnyPolicy = input.initialAnyPolicyInhibit ? 0 : n + 1;
  let policyMapping = input.initialPolicyMappingInhibit ? 0 : n + 1;
  let maxPathLength = candidate.certificates.length;
  let workingKey: KeyObject;
  let workingDsaParameters: asn1js.AsnType | undefined = dsaParametersOf(anchor.certificate.subjectPublicKeyInfo);
  try {
    workingKey = publicKeyOf(anchor.certificate.subjectPublicKeyInfo);
  } catch {
    return fail('UNSUPPORTED_ALGORITHM', 'The trust anchor’s public key cannot be read.', anchorIndex);
  }
  const anchorWeakness = weakKeyReason(workingKey, algorithmPolicy);
  if (anchorWeakness) return fail('WEAK_KEY', `The trust anchor is refused: ${anchorWeakness}.`, anchorIndex);
  if (candidate.anchor.checkValidity) {
    const problem = checkValidityPeriod(anchorStep, input.time);
    if (problem) return problem;
  }
  let workingIssuerName = anchor.subject;
  const nameConstraints: NonNullable<ParsedCertificate['nameConstraints']>[] = [];
  let initialPolicySet = input.initialPolicySet ?? [ANY_POLICY];

  // RFC 5937: a constrained anchor's own constraints become initial inputs of the path validation.
  if (candidate.anchor.enforceConstraints) {
    if (anchor.basicConstraints?.ca === false)
      return fail('NOT_A_CA', 'The trust anchor is not a CA (basicConstraints).', anchorIndex);
    if (anchor.keyUsage && !anchor.keyUsage.has('keyCertSign')) {
      return fail('KEY_USAGE', 'The trust anchor’s keyUsage lacks keyCertSign.', anchorIndex);
    }
    if (!extendedKeyUsageAllows(anchor, input.purpose)) {
      return fail('EXTENDED_KEY_USAGE', `The trust anchor does not allow the purpose ${input.purpose}.`, anchorIndex);
    }
    const unknown = unknownCriticalExtension(anchor);
    if (unknown)
      return fail(
        'UNKNOWN_CRITICAL_EXTENSION',
        `The trust anchor has the critical extension ${unknown}, which we do not process.`,
        anchorIndex,
      );
    if (anchor.basicConstraints?.pathLength !== undefined)
      maxPathLength = Math.min(maxPathLength, anchor.basicConstraints.pathLength);
    if (anchor.nameConstraints) nameConstraints.push(anchor.nameConstraints);
    if (anchor.requireExplicitPolicy !== undefined)
      explicitPolicy = Math.min(explicitPolicy, anchor.requireExplicitPolicy);
    if (anchor.inhibitPolicyMapping !== undefined) policyMapping = Math.min(policyMapping, anchor.inhibitPolicyMapping);
    if (anchor.inhibitAnyPolicy !== undefined) inhibitAnyPolicy = Math.min(inhibitAnyPolicy, anchor.inhibitAnyPolicy);
    if (anchor.policies && !anchorInPolicyTree) {
      const anchorPolicies = anchor.policies.map((p) => p.policy);
      if (!anchorPolicies.includes(ANY_POLICY)) {
        initialPolicySet = initialPolicySet.includes(ANY_POLICY)
          ? anchorPolicies
          : initialPolicySet.filter((p) => anchorPolicies.includes(p));
      }
    }
  }

  for (let i = 1; i <= n; i++) {
    const step = steps[i - 1] as Step;
    const { certificate } = step;
    const isLast = i === n;

    // §6.1.3 (a): signature, validity, issuer name.
    let subjectKey: KeyObject;
    try {
      subjectKey = publicKeyOf(certificate.certificate.subjectPublicKeyInfo, workingDsaParameters);
    } catch {
      return fail('UNSUPPORTED_ALGORITHM', `The public key of ${describe(step)} cannot be read.`, step.index);
    }
    if (!step.isAnchor) {
      // RFC 5280 §4.1.1.2: the outer signatureAlgorithm must equal the signature field inside tbsCertificate.
      if (certificate.certificate.signatureAlgorithm.algorithmId !== certificate.certificate.signature.algorithmId) {
        return fail(
          'BAD_SIGNATURE',
          `${capitalize(describe(step))} names two different signature algorithms.`,
          step.index,
        );
      }
      const signature = verifySignature(
        certificate.certificate.signatureAlgorithm,
        new Uint8Array(certificate.certificate.tbsView),
        new Uint8Array(certificate.certificate.signatureValue.valueBlock.valueHexView),
        workingKey,
        algorithmPolicy,
      );
      if (!signature.ok)
        return fail(
          signature.problem ?? 'BAD_SIGNATURE',
          `${capitalize(describe(step))} is refused: ${signature.reason}.`,
          step.index,
        );
      const validity = checkValidityPeriod(step, input.time);
      if (validity) return validity;
      if (certificate.issuer !== workingIssuerName) {
        return fail(
          'NO_PATH',
          `The issuer of ${describe(step)} is not the subject of the certificate above it.`,
          step.index,
        );
      }
    }
    const weakness = weakKeyReason(subjectKey, algorithmPolicy);
    if (weakness) return fail('WEAK_KEY', `${capitalize(describe(step))} is refused: ${weakness}.`, step.index);

    // §6.1.3 (b), (c): name constraints, not applied to self-issued intermediates.
    if (!(certificate.selfIssued && !isLast)) {
      const names = constrainedNames(certificate);
      for (const constraints of nameConstraints) {
        const violation = nameConstraintViolation(names, constraints);
        if (violation)
          return fail(
            'NAME_CONSTRAINTS_VIOLATED',
            `${capitalize(describe(step))} violates name constraints: ${violation}.`,
            step.index,
          );
      }
    }

    // §6.1.3 (d)–(f): certificate policies.
    if (certificate.policies && tree !== null) {
      const anyAllowed = inhibitAnyPolicy > 0 || (!isLast && certificate.selfIssued);
      tree = processCertificatePolicies(tree, i, certificate.policies, anyAllowed);
    } else if (!certificate.policies) {
      tree = null;
    }
    if (explicitPolicy <= 0 && tree === null) {
      return fail(
        'POLICY_REQUIRED',
        `${capitalize(describe(step))} leaves no acceptable certificate policy where one is required.`,
        step.index,
      );
    }

    // Extended key usage: the purpose must be allowed at every certificate that restricts it.
    if (!extendedKeyUsageAllows(certificate, input.purpose)) {
      return fail(
        'EXTENDED_KEY_USAGE',
        `${capitalize(describe(step))} does not allow the purpose ${input.purpose}.`,
        step.index,
      );
    }

    if (!isLast) {
      // §6.1.4 (a), (b): policy mappings.
      if (certificate.policyMappings) {
        if (
          certificate.policyMappings.some(
            (m) => m.issuerDomainPolicy === ANY_POLICY || m.subjectDomainPolicy === ANY_POLICY,
          )
        ) {
          return fail('POLICY_REQUIRED', `${capitalize(describe(step))} maps to or from anyPolicy.`, step.index);
        }
        if (tree !== null) tree = processPolicyMappings(tree, i, certificate.policyMappings, policyMapping > 0);
      }
      // §6.1.4 (c)–(f): the working key and issuer name move down.
      workingIssuerName = certificate.subject;
      workingKey = subjectKey;
      workingDsaParameters = dsaParametersOf(certificate.certificate.subjectPublicKeyInfo, workingDsaParameters);
      // §6.1.4 (g).
      if (certificate.nameConstraints) nameConstraints.push(certificate.nameConstraints);
      // §6.1.4 (h)–(j): policy counters.
      if (!certificate.selfIssued) {
        if (explicitPolicy > 0) explicitPolicy--;
        if (policyMapping > 0) policyMapping--;
        if (inhibitAnyPolicy > 0) inhibitAnyPolicy--;
      }
      if (certificate.requireExplicitPolicy !== undefined)
        explicitPolicy = Math.min(explicitPolicy, certificate.requireExplicitPolicy);
      if (certificate.inhibitPolicyMapping !== undefined)
        policyMapping = Math.min(policyMapping, certificate.inhibitPolicyMapping);
      if (certificate.inhibitAnyPolicy !== undefined)
        inhibitAnyPolicy = Math.min(inhibitAnyPolicy, certificate.inhibitAnyPolicy);
      // §6.1.4 (k): must be a CA. A constrained anchor may lack basicConstraints (v1 roots).
      if (step.isAnchor ? certificate.basicConstraints?.ca === false : certificate.basicConstraints?.ca !== true) {
        return fail(
          'NOT_A_CA',
          `${capitalize(describe(step))} issues certificates but is not a CA (basicConstraints).`,
          step.index,
        );
      }
      // §6.1.4 (l), (m): path length.
      if (!certificate.selfIssued) {
        if (maxPathLength <= 0) {
          return fail(
            'PATH_LENGTH_EXCEEDED',
            `${capitalize(describe(step))} exceeds the path length allowed above it.`,
            step.index,
          );
        }
        maxPathLength--;
      }
      const pathLength = certificate.basicConstraints?.pathLength;
      if (pathLength !== undefined && pathLength < maxPathLength) maxPathLength = pathLength;
      // §6.1.4 (n).
      if (certificate.keyUsage && !certificate.keyUsage.has('keyCertSign')) {
        return fail(
          'KEY_USAGE',
          `${capitalize(describe(step))} issues certificates but its keyUsage lacks keyCertSign.`,
          step.index,
        );
      }
    }
    // §6.1.4 (o), §6.1.5 (f).
    const unknown = unknownCriticalExtension(certificate);
    if (unknown)
      return fail(
        'UNKNOWN_CRITICAL_EXTENSION',
        `${capitalize(describe(step))} has the critical extension ${unknown}, which we do not process.`,
        step.index,
      );
  }

  // §6.1.5 (a), (b), (g): wrap-up.
  const last = steps[n - 1] as Step;
  if (explicitPolicy > 0) explicitPolicy--;
  if (last.certificate.requireExplicitPolicy === 0) explicitPolicy = 0;
  const intersection = intersectWithInitialPolicySet(tree, n, initialPolicySet);
  if (explicitPolicy <= 0 && intersection.tree === null) {
    return fail(
      'POLICY_REQUIRED',
      'No certificate policy acceptable to us is valid for the whole path, and one is required.',
      last.index,
    );
  }
  return { policies: intersection.policies };
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
