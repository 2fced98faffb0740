// validateCertificatePath: builds candidate paths, validates each by RFC 5280 §6.1, then checks the leaf
// for its purpose and address and every certificate of the path for revocation. Fails closed.
import type * as asn1js from 'asn1js';
import { MalformedCertificateError, type ParsedCertificate, parseCertificate } from './certificate.ts';
import { keyUsageAllows } from './encryption-key-usage.ts';
import { buildCandidatePaths, type CandidatePath, type TrustAnchor } from './path-builder.ts';
import { processPath } from './process-path.ts';
import { checkCrlStatus, type ParsedCrl, parseCrl } from './revocation-crl.ts';
import { checkOcspStatus, type ParsedOcspResponse, parseOcspResponse } from './revocation-ocsp.ts';
import { dsaParametersOf, publicKeyOf, verifySignature } from './signature.ts';
import type {
  AlgorithmPolicy,
  PathValidationFailure,
  PathValidationInput,
  PathValidationResult,
  PathValidationSuccess,
  RevocationEvidence,
} from './types.ts';

const DEFAULT_ALGORITHM_POLICY: AlgorithmPolicy = { minRsaBits: 2048, allowSha1: false };
/** How deep we go validating the certificate of a CRL signer that is not the certificate issuer. */
const MAX_CRL_SIGNER_DEPTH = 2;

interface Context {
  input: PathValidationInput;
  algorithmPolicy: AlgorithmPolicy;
  intermediates: ParsedCertificate[];
  anchors: TrustAnchor[];
  crls: ParsedCrl[];
  ocspResponses: ParsedOcspResponse[];
  crlSignatureCache: Map<string, boolean>;
  /** CRLs whose (cryptographically verified) signer is being validated right now, by CRL fingerprint. */
  crlsBeingEstablished: Set<string>;
  depth: number;
}

function failure(
  code: PathValidationFailure['code'],
  reason: string,
  certificateIndex?: number,
): PathValidationFailure {
  return { ok: false, code, reason, ...(certificateIndex !== undefined ? { certificateIndex } : {}) };
}

function parseAll(input: PathValidationInput): Context | PathValidationFailure {
  const intermediates: ParsedCertificate[] = [];
  for (const der of input.intermediates ?? []) {
    try {
      intermediates.push(parseCertificate(der));
    } catch {
      // An unreadable candidate cannot be part of a path; ignore it like any other unrelated certificate.
    }
  }
  const anchors: TrustAnchor[] = [];
  for (const anchor of input.trustAnchors) {
    try {
      anchors.push({
        certificate: parseCertificate(anchor.certificate),
        enforceConstraints: anchor.enforceConstraints === true,
        checkValidity: anchor.checkValidity === true,
      });
    } catch {
      // An unreadable anchor anchors nothing.
    }
  }
  const crls = (input.crls ?? []).map(parseCrl).filter((crl): crl is ParsedCrl => crl !== undefined);
  const ocspResponses = (input.ocspResponses ?? [])
    .map(parseOcspResponse)
    .filter((r): r is ParsedOcspResponse => r !== undefined);
  return {
    input,
    algorithmPolicy: { ...DEFAULT_ALGORITHM_POLICY, ...input.algorithmPolicy },
    intermediates,
    anchors,
    crls,
    ocspResponses,
    crlSignatureCache: new Map(),
    crlsBeingEstablished: new Set(),
    depth: 0,
  };
}

function emailMatches(candidate: string, wanted: string): boolean {
  const at = candidate.lastIndexOf('@');
  const wantedAt = wanted.lastIndexOf('@');
  if (at < 0 || wantedAt < 0) return false;
  // RFC 5280 §7.5: the local part is compared exactly, the domain case-insensitively.
  return (
    candidate.slice(0, at) === wanted.slice(0, wantedAt) &&
    candidate.slice(at + 1).toLowerCase() === wanted.slice(wantedAt + 1).toLowerCase()
  );
}

function checkLeaf(leaf: ParsedCertificate, input: PathValidationInput): PathValidationFailure | undefined {
  if (input.leafKeyUsage && !keyUsageAllows(leaf.keyUsage, input.leafKeyUsage)) {
    return failure(
      'KEY_USAGE',
      `The end-entity certificate’s keyUsage allows none of: ${input.leafKeyUsage.join(', ')}.`,
      0,
    );
  }
  if (input.emailAddress !== undefined) {
    const sanAddresses = leaf.subjectAltNames.filter((name) => name.type === 1).map((name) => String(name.value));
    // RFC 8550 §3: the subject emailAddress attribute counts only for certificates without rfc822Name.
    const addresses = sanAddresses.length > 0 ? sanAddresses : leaf.subjectEmailAddresses;
    if (!addresses.some((address) => emailMatches(address, input.emailAddress as string))) {
      return failure(
        'ADDRESS_NOT_IN_CERTIFICATE',
        `The end-entity certificate is not issued for ${input.emailAddress}.`,
        0,
      );
    }
  }
  return undefined;
}

function crlSignatureValid(
  context: Context,
  crl: ParsedCrl,
  issuer: ParsedCertificate,
  issuerDsaParameters?: asn1js.AsnType,
): boolean {
  const cacheKey = `${crl.fingerprint}|${issuer.fingerprint}`;
  const cached = context.crlSignatureCache.get(cacheKey);
  if (cached !== undefined) return cached;
  // The signer of this CRL is being validated and this CRL covers it too: its signature already verified.
  if (context.crlsBeingEstablished.has(crl.fingerprint)) return true;
  const signedBy = (signer: ParsedCertificate, dsaParameters?: asn1js.AsnType): boolean => {
    if (signer.keyUsage && !signer.keyUsage.has('cRLSign')) return false;
    try {
      return verifySignature(
        crl.crl.signatureAlgorithm,
        new Uint8Array(crl.crl.tbsView),
        new Uint8Array(crl.crl.signatureValue.valueBlock.valueHexView),
        publicKeyOf(signer.certificate.subjectPublicKeyInfo, dsaParameters),
        context.algorithmPolicy,
      ).ok;
    } catch {
      return false;
    }
  };
  let valid = signedBy(issuer, issuerDsaParameters);
  if (!valid && context.depth < MAX_CRL_SIGNER_DEPTH) {
    // A CRL signed by a different key of the same CA name (RFC 5280 §6.3.3 f): that signer must itself validate.
    const others = [...context.intermediates, ...context.anchors.map((a) => a.certificate)].filter(
      (c) => c.subject === crl.issuer && c.fingerprint !== issuer.fingerprint,
    );
    for (const signer of others) {
      if (!signedBy(signer)) continue;
      const crlsBeingEstablished = new Set([...context.crlsBeingEstablished, crl.fingerprint]);
      const signerResult = validateWithContext(
        { ...context, crlsBeingEstablished, depth: context.depth + 1 },
        signer,
        true,
      );
      if (signerResult.ok) {
        valid = true;
        break;
      }
    }
  }
  // Only successes are cached: a failure may come from the recursion limit of a deeper lookup.
  if (valid) context.crlSignatureCache.set(cacheKey, valid);
  return valid;
}

function crlEvidence(crl: ParsedCrl | undefined): RevocationEvidence | undefined {
  if (!crl) return undefined;
  return {
    kind: 'crl',
    sha256: crl.fingerprint,
    thisUpdate: crl.thisUpdate,
    ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate } : {}),
    origin: 'given',
  };
}

interface RevocationStatuses {
  statuses: PathValidationSuccess['revocation'];
  evidence: Array<RevocationEvidence | undefined>;
}

function checkRevocation(context: Context, candidate: CandidatePath): RevocationStatuses | PathValidationFailure {
  const mode = context.input.revocation ?? 'require';
  const chain = [...candidate.certificates, candidate.anchor.certificate];
  const statuses: PathValidationSuccess['revocation'] = [];
  const evidence: Array<RevocationEvidence | undefined> = [];
  // DSA keys without parameters inherit them from above (RFC 3279 §2.3.2); CRLs signed with them need that too.
  const inherited: Array<asn1js.AsnType | undefined> = [];
  for (let index = chain.length - 1; index >= 0; index--) {
    inherited[index] = dsaParametersOf(
      (chain[index] as ParsedCertificate).certificate.subjectPublicKeyInfo,
      inherited[index + 1],
    );
  }
  for (let index = 0; index < candidate.certificates.length; index++) {
    const certificate = chain[index] as ParsedCertificate;
    const issuer = chain[index + 1] as ParsedCertificate;
    if (mode === 'off') {
      statuses.push('not-checked');
      evidence.push(undefined);
      continue;
    }
    const ocsp = checkOcspStatus(
      certificate,
      issuer,
      context.ocspResponses,
      context.input.time,
      context.algorithmPolicy,
    );
    const ocspEvidence: RevocationEvidence | undefined = ocsp.evidence
      ? { kind: 'ocsp', ...ocsp.evidence, origin: 'given' }
      : undefined;
    if (ocsp.status === 'revoked') {
      return {
        ...failure('REVOKED', `Certificate ${index} of the path is revoked (OCSP).`, index),
        ...(ocspEvidence ? { revocationEvidence: ocspEvidence } : {}),
      };
    }
    if (ocsp.status === 'good') {
      statuses.push('good-ocsp');
      evidence.push(ocspEvidence);
      continue;
    }
    const crl = checkCrlStatus(certificate, issuer, context.crls, {
      time: context.input.time,
      crlSignatureValid: (c, i) => crlSignatureValid(context, c, i, i === issuer ? inherited[index + 1] : undefined),
    });
    if (crl.status === 'revoked') {
      const revokedBy = crlEvidence(crl.evidence);
      return {
        ...failure('REVOKED', `Certificate ${index} of the path is revoked: ${crl.reason}.`, index),
        ...(revokedBy ? { revocationEvidence: revokedBy } : {}),
      };
    }
    if (crl.status === 'good') {
      statuses.push('good-crl');
      evidence.push(crlEvidence(crl.evidence));
      continue;
    }
    if (mode === 'require') {
      return failure(
        'REVOCATION_UNKNOWN',
        `The revocation status of certificate ${index} of the path could not be established: ${crl.reason}.`,
        index,
      );
    }
    statuses.push('unknown');
    evidence.push(undefined);
  }
  return { statuses, evidence };
}

function validateWithContext(
  context: Context,
  endEntity: ParsedCertificate,
  asCrlSigner = false,
): PathValidationResult {
  // A CRL signer's certificate is validated for no particular purpose or address.
  const input: PathValidationInput = asCrlSigner
    ? { ...context.input, purpose: 'any', emailAddress: undefined, leafKeyUsage: undefined }
    : context.input;
  const { paths, reachedUntrustedRoot } = buildCandidatePaths(endEntity, context.intermediates, context.anchors);
  if (paths.length === 0) {
    if (reachedUntrustedRoot)
      return failure('UNTRUSTED_ROOT', 'The certificate chains to a root that is not among the trust anchors.');
    return failure('NO_PATH', 'No chain of certificates leads from the certificate to a trust anchor.');
  }
  let firstFailure: PathValidationFailure | undefined;
  for (const candidate of paths) {
    let outcome: PathValidationResult;
    try {
      outcome = validateCandidate(context, candidate, endEntity, input);
    } catch (error) {
      // A certificate odd enough to break processing is refused, never passed.
      outcome = failure(
        'MALFORMED_CERTIFICATE',
        `A certificate of the path could not be processed: ${(error as Error).message}.`,
      );
    }
    if (outcome.ok) return outcome;
    firstFailure ??= outcome;
  }
  return firstFailure as PathValidationFailure;
}

function validateCandidate(
  context: Context,
  candidate: CandidatePath,
  endEntity: ParsedCertificate,
  input: PathValidationInput,
): PathValidationResult {
  const processed = processPath(candidate, input, context.algorithmPolicy);
  let outcome: PathValidationResult;
  if ('ok' in processed) {
    outcome = processed;
  } else {
    const leafProblem = checkLeaf(endEntity, input);
    const revocation = leafProblem ?? checkRevocation({ ...context, input }, candidate);
    outcome =
      'statuses' in revocation
        ? {
            ok: true,
            path: [...candidate.certificates, candidate.anchor.certificate].map((c) => c.der),
            policies: processed.policies,
            revocation: revocation.statuses,
            revocationEvidence: revocation.evidence,
          }
        : revocation;
  }
  return outcome;
}

/** Validates the end-entity certificate for `input.purpose` at `input.time`; never throws for bad input. */
export function validateCertificatePath(input: PathValidationInput): PathValidationResult {
  // An invalid Date compares false both ways and would pass every validity check: refuse it.
  if (!(input.time instanceof Date) || Number.isNaN(input.time.getTime())) {
    return failure('INVALID_INPUT', 'The validation time is not a valid date.');
  }
  let endEntity: ParsedCertificate;
  try {
    endEntity = parseCertificate(input.endEntity);
  } catch (error) {
    const reason = error instanceof MalformedCertificateError ? error.message : 'the certificate could not be parsed';
    return failure('MALFORMED_CERTIFICATE', `The end-entity certificate is refused: ${reason}.`, 0);
  }
  const context = parseAll(input);
  if ('ok' in context) return context;
  return validateWithContext(context, endEntity);
}
