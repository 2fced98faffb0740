// Verifying every SignerInfo of a CMS SignedData (RFC 5652 §5.6) and judging each by EN 319 102-1: format, the
// signing certificate, cryptographic integrity (message digest and signature value), then algorithm acceptability,
// then the certificate path. The content is hashed with node:crypto, segment by segment, once per digest algorithm;
// the signature value is checked with node:crypto against the signed attributes' DER.
import { createHash, verify as cryptoVerify } from 'node:crypto';
import { ber, type CertificatePurpose, verifySignature, weakKeyReason } from '@smgw/crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import {
  type AlgorithmConstraints,
  DIGEST_ALGORITHMS,
  hashAcceptable,
  hashName,
  PKIX_SIGNATURE_OID,
  RSA_PSS_OID,
  SIGNATURE_ALGORITHMS,
} from './algorithms.ts';
import { type CertificateFacts, certificateFacts, identifies } from './certificate-facts.ts';
import { embeddedRevocationOf } from './embedded-revocation.ts';
import { failed, indeterminate, type Judgement } from './indication.ts';
import type { QualifiedStatus, QualifiedStatusSource } from './qualified-status.ts';
import { type Sentence, sentenceFor } from './sentences.ts';
import type { ParsedSignedData, ParsedSignerInfo, SignedAttribute } from './signed-data.ts';
import { type ChainCache, type ChainOptions, type ChainReport, validateSignerChain } from './signer-chain.ts';
import type { TimestampVerification } from './timestamp-token.ts';

const ID_CONTENT_TYPE = '1.2.840.113549.1.9.3';
const ID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
const ID_SIGNING_TIME = '1.2.840.113549.1.9.5';
const ID_SIGNING_CERTIFICATE = '1.2.840.113549.1.9.16.2.12';
const ID_SIGNING_CERTIFICATE_V2 = '1.2.840.113549.1.9.16.2.47';
const ID_DATA = '1.2.840.113549.1.7.1';
/** RFC 5652 §11: these attributes have exactly one value. */
const SINGLE_VALUED = new Set([ID_CONTENT_TYPE, ID_MESSAGE_DIGEST, ID_SIGNING_TIME]);

export type SignatureLevel = 'QES' | 'AdES' | 'basic';

export interface AlgorithmReport {
  name: string;
  oid: string;
  acceptable: boolean;
}

export interface SignerReport {
  subject: string;
  issuer: string;
  serialNumber: string;
  fingerprint: string;
  /** SAN rfc822Name entries, else the subject's emailAddress attributes, as written in the certificate. */
  emailAddresses: string[];
}

/** One SignerInfo's result. `indication`/`subIndication` are the EN 319 102-1 judgement. */
export interface SignatureVerification {
  indication: Judgement['indication'];
  subIndication?: Exclude<Judgement, { indication: 'TOTAL_PASSED' }>['subIndication'];
  sentence: Sentence;
  /** Technical reasons, in the order found (English). */
  reasons: string[];
  signerIndex: number;
  signer?: SignerReport;
  /** The signingTime attribute: claimed by the signer, proven by nothing. */
  claimedSigningTime?: Date;
  algorithms: {
    digest?: AlgorithmReport;
    signature?: AlgorithmReport;
    key?: { description: string; acceptable: boolean };
  };
  /** Whether an ESS signing-certificate(-v2) attribute binds the signer's certificate (CAdES-B). */
  signingCertificateBound: boolean;
  chain?: ChainReport;
  qualification?: QualifiedStatus;
  /** Only for TOTAL_PASSED. */
  level?: SignatureLevel;
  levelReason?: string;
  /** The signature timestamp (RFC 3161 Appendix A) when the SignerInfo carries one; a document timestamp's token. */
  timestamp?: TimestampVerification;
  /** The time a valid timestamp proves the signature existed at. */
  proofOfExistence?: Date;
}

export interface SignedDataContext {
  time: Date;
  chain: ChainOptions;
  chainCache: ChainCache;
  qualifiedStatus: QualifiedStatusSource;
  algorithmConstraints: AlgorithmConstraints;
}

export interface VerifySignedDataInput {
  signedData: ParsedSignedData;
  /** The content as shown to the reader (detached signature); when given, any eContent is ignored. */
  shownContent?: readonly Uint8Array[];
  purpose: CertificatePurpose;
  /** Revocation data the container holds for its signatures (a PDF's /DSS), used like the signature's own. */
  containerRevocation?: { crls: readonly Buffer[]; ocspResponses: readonly Buffer[] };
}

/** What a verification looked at besides its signers: which content was judged. */
export interface SignedDataVerification {
  signatures: SignatureVerification[];
  /** `shown`: the part the reader sees; `encapsulated`: the eContent; `none`: no content at all. */
  contentJudged: 'shown' | 'encapsulated' | 'none';
  /** A detached signature that also carried content of its own (never used). */
  embeddedContentIgnored: boolean;
}

/** Verifies every SignerInfo. Never throws for a bad signature: the verdict is in each result. */
export async function verifySignedData(
  input: VerifySignedDataInput,
  context: SignedDataContext,
): Promise<SignedDataVerification> {
  const { signedData } = input;
  const content = input.shownContent ?? signedData.eContent;
  const digests = new Map<string, Buffer>();
  const digestOf = (hash: string): Buffer => {
    let digest = digests.get(hash);
    if (!digest) {
      const hasher = createHash(hash);
      for (const segment of content ?? []) hasher.update(segment);
      digest = hasher.digest();
      digests.set(hash, digest);
    }
    return digest;
  };
  const certificates = signedData.certificates.flatMap((der) => {
    try {
      return [certificateFacts(der)];
    } catch {
      return [];
    }
  });
  const signatures: SignatureVerification[] = [];
  for (const signerInfo of signedData.signerInfos) {
    signatures.push(
      await verifySignerInfo(
        signerInfo,
        {
          signedData,
          content,
          digestOf,
          certificates,
          purpose: input.purpose,
          ...(input.containerRevocation ? { containerRevocation: input.containerRevocation } : {}),
        },
        context,
      ),
    );
  }
  return {
    signatures,
    contentJudged: input.shownContent ? 'shown' : signedData.eContent ? 'encapsulated' : 'none',
    embeddedContentIgnored: input.shownContent !== undefined && signedData.eContent !== undefined,
  };
}

interface SignerInfoInput {
  signedData: ParsedSignedData;
  containerRevocation?: VerifySignedDataInput['containerRevocation'];
  content: readonly Uint8Array[] | undefined;
  digestOf: (hash: string) => Buffer;
  certificates: CertificateFacts[];
  purpose: CertificatePurpose;
}

function finish(
  judgement: Judgement,
  partial: Omit<SignatureVerification, 'indication' | 'subIndication' | 'sentence'>,
): SignatureVerification {
  const subIndication = judgement.indication === 'TOTAL_PASSED' ? undefined : judgement.subIndication;
  return {
    indication: judgement.indication,
    ...(subIndication ? { subIndication } : {}),
    sentence: sentenceFor(judgement.indication, subIndication),
    ...partial,
  };
}

async function verifySignerInfo(
  signerInfo: ParsedSignerInfo,
  input: SignerInfoInput,
  context: SignedDataContext,
): Promise<SignatureVerification> {
  const reasons: string[] = [];
  const result: Omit<SignatureVerification, 'indication' | 'subIndication' | 'sentence'> = {
    reasons,
    signerIndex: signerInfo.index,
    algorithms: {},
    signingCertificateBound: false,
  };
  if (signerInfo.formatProblem) {
    reasons.push(signerInfo.formatProblem);
    return finish(failed('FORMAT_FAILURE'), result);
  }

  // The algorithms as named, reported whatever happens next.
  const digest = DIGEST_ALGORITHMS[signerInfo.digestAlgorithm];
  const signatureAlgorithm = SIGNATURE_ALGORITHMS[signerInfo.signatureAlgorithm];
  result.algorithms.digest = digest
    ? { name: digest.name, oid: digest.oid, acceptable: digest.acceptable }
    : { name: 'unknown', oid: signerInfo.digestAlgorithm, acceptable: false };

  // Format: the signed attributes RFC 5652 §5.3/§11 require, each once.
  const attributes = signerInfo.signedAttributes;
  if (attributes) {
    const problem = attributeProblem(attributes, input.signedData.eContentType);
    if (problem) {
      reasons.push(problem);
      return finish(failed('FORMAT_FAILURE'), result);
    }
    const signingTime = attributes.find((a) => a.type === ID_SIGNING_TIME)?.values[0];
    const claimed = signingTime ? timeOf(signingTime) : undefined;
    if (claimed) result.claimedSigningTime = claimed;
  } else if (input.signedData.eContentType !== ID_DATA) {
    reasons.push('signed attributes are missing although the content type is not id-data (RFC 5652 §5.3)');
    return finish(failed('FORMAT_FAILURE'), result);
  }

  // The signing certificate: exactly one certificate of the signature names it.
  const sid = signerInfo.sid;
  const candidates = sid ? input.certificates.filter((c) => identifies(sid, c)) : [];
  const signer = candidates[0];
  if (!signer || new Set(candidates.map((c) => c.fingerprint)).size > 1) {
    reasons.push(
      signer ? 'several certificates match the signer identifier' : 'the signer’s certificate is not in the signature',
    );
    return finish(indeterminate('NO_SIGNING_CERTIFICATE_FOUND'), result);
  }
  result.signer = {
    subject: signer.subject,
    issuer: signer.issuer,
    serialNumber: signer.serialNumber,
    fingerprint: signer.fingerprint,
    emailAddresses: signer.emailAddresses,
  };

  if (!digest || !signatureAlgorithm) {
    reasons.push(
      !digest
        ? `digest algorithm ${signerInfo.digestAlgorithm} is not supported`
        : `signature algorithm ${signerInfo.signatureAlgorithm} is not supported`,
    );
    return finish(indeterminate('CRYPTO_CONSTRAINTS_FAILURE'), result);
  }

  // Integrity before policy: whatever the algorithm's strength, a changed content or a forged value fails.
  if (!input.content) {
    reasons.push('the signed content is not present');
    return finish(indeterminate('SIGNED_DATA_NOT_FOUND'), result);
  }
  const signatureHash = signatureAlgorithm.hash ?? digest.hash;
  const check = checkSignatureValue(signerInfo, signer, signatureHash, input);
  result.algorithms.signature = {
    name: check.name,
    oid: signatureAlgorithm.oid,
    acceptable: hashAcceptable(check.hash ?? signatureHash),
  };
  if (attributes) {
    const messageDigest = attributes.find((a) => a.type === ID_MESSAGE_DIGEST)?.values[0] as ber.BerNode;
    const claimed = ber.octetsOf(messageDigest, 'messageDigest');
    if (!claimed.equals(input.digestOf(digest.hash))) {
      reasons.push('the message digest does not match the content: the content was changed');
      if (check.outcome !== 'valid') reasons.push(check.reason);
      return finish(failed('HASH_FAILURE'), result);
    }
  }
  if (check.outcome === 'invalid') {
    reasons.push(check.reason);
    return finish(failed('SIG_CRYPTO_FAILURE'), result);
  }
  if (check.outcome === 'unverifiable') {
    reasons.push(check.reason);
    return finish(indeterminate('CRYPTO_CONSTRAINTS_FAILURE'), result);
  }

  // The ESS signing-certificate attribute, when present, must name this certificate (EN 319 102-1 §5.2.3).
  const binding = attributes ? signingCertificateBinding(attributes, signer) : 'absent';
  result.signingCertificateBound = binding === 'matches';

  // Algorithm acceptability, after integrity.
  const keyProblem = weakKeyReason(signer.publicKey, {
    minRsaBits: context.algorithmConstraints.minRsaBits,
    allowSha1: false,
  });
  result.algorithms.key = { description: signer.keyDescription, acceptable: keyProblem === undefined };
  const weak: string[] = [];
  if (!digest.acceptable) weak.push(`the digest algorithm ${digest.name} is no longer acceptable`);
  if (!hashAcceptable(check.hash ?? signatureHash) && (check.hash ?? signatureHash) !== digest.hash) {
    weak.push(`the signature algorithm uses ${hashName(check.hash ?? signatureHash)}, no longer acceptable`);
  }
  if (keyProblem) weak.push(`the signer’s key is too weak: ${keyProblem}`);

  // The certificate path, at validation time, with the revocation data the signature carries tried first.
  const embedded = embeddedRevocationOf(input.signedData, signerInfo, input.containerRevocation);
  if (embedded.skipped > 0) {
    reasons.push(`${embedded.skipped} embedded CRLs/OCSP responses beyond the limit were not used`);
  }
  const { report: chain, path } = await validateSignerChain(
    signer,
    input.certificates,
    input.purpose,
    context.time,
    context.chain,
    context.chainCache,
    embedded,
  );
  result.chain = chain;
  if (chain.reason) reasons.push(chain.reason);
  reasons.push(...chain.fetchProblems);

  let judgement: Judgement;
  if (chain.judgement.indication === 'TOTAL_FAILED') judgement = chain.judgement;
  else if (weak.length > 0) {
    reasons.push(...weak);
    judgement = indeterminate('CRYPTO_CONSTRAINTS_FAILURE');
  } else if (binding === 'differs') {
    reasons.push('the signing-certificate attribute names another certificate');
    judgement = indeterminate('NO_SIGNING_CERTIFICATE_FOUND');
  } else judgement = chain.judgement;

  // At the validation time (or the time a signature timestamp proves, when the signature is judged then): the
  // signingTime attribute is the sender's claim, and asked at it a sender could back-date into a period in which
  // the issuer was still granted and so claim a QES the lists no longer confirm.
  result.qualification = await context.qualifiedStatus(signer, context.time, path);
  if (judgement.indication === 'TOTAL_PASSED') {
    const level = levelOf(result.qualification, result.signingCertificateBound);
    result.level = level.level;
    result.levelReason = level.reason;
  }
  return finish(judgement, result);
}

function attributeProblem(attributes: readonly SignedAttribute[], eContentType: string): string | undefined {
  const seen = new Set<string>();
  for (const attribute of attributes) {
    if (seen.has(attribute.type) && SINGLE_VALUED.has(attribute.type)) {
      return `the signed attribute ${attribute.type} appears twice`;
    }
    seen.add(attribute.type);
    if (SINGLE_VALUED.has(attribute.type) && attribute.values.length !== 1) {
      return `the signed attribute ${attribute.type} must have exactly one value`;
    }
  }
  const contentType = attributes.find((a) => a.type === ID_CONTENT_TYPE);
  if (!contentType) return 'the content-type signed attribute is missing';
  try {
    if (ber.oidOf(contentType.values[0], 'content-type') !== eContentType) {
      return 'the content-type attribute differs from the encapsulated content type';
    }
  } catch {
    return 'the content-type attribute is not readable';
  }
  const messageDigest = attributes.find((a) => a.type === ID_MESSAGE_DIGEST)?.values[0];
  if (!ber.isUniversal(messageDigest, ber.UNIVERSAL_OCTET_STRING))
    return 'the message-digest signed attribute is missing';
  return undefined;
}

interface ValueCheck {
  /** `unverifiable`: the value could not be checked with this algorithm or these parameters (never "invalid"). */
  outcome: 'valid' | 'invalid' | 'unverifiable';
  reason: string;
  name: string;
  /** The hash the signature value was made with, when the algorithm's parameters fix it (RSASSA-PSS). */
  hash?: string;
}

/** The signature value over the signed attributes (or over the content, without attributes), by node:crypto. */
function checkSignatureValue(
  signerInfo: ParsedSignerInfo,
  signer: CertificateFacts,
  hash: string,
  input: SignerInfoInput,
): ValueCheck {
  const algorithm = SIGNATURE_ALGORITHMS[signerInfo.signatureAlgorithm];
  if (!algorithm) return { outcome: 'unverifiable', reason: 'unsupported signature algorithm', name: 'unknown' };
  const data = signerInfo.signedAttributesDer ?? Buffer.concat(input.content as Uint8Array[]);
  const name =
    algorithm.family === 'rsa' || algorithm.family === 'ec'
      ? `${algorithm.family === 'rsa' ? 'RSA PKCS#1 v1.5' : 'ECDSA'} with ${hashName(hash)}`
      : algorithm.name;
  if (algorithm.family === 'ed25519') {
    let valid = false;
    try {
      valid =
        signer.publicKey.asymmetricKeyType === 'ed25519' &&
        cryptoVerify(null, data, signer.publicKey, signerInfo.signature);
    } catch {
      valid = false;
    }
    return {
      outcome: valid ? 'valid' : 'invalid',
      reason: 'the signature value does not verify with the signer’s key',
      name,
    };
  }
  let identifier: pkijs.AlgorithmIdentifier;
  let pssHash: string | undefined;
  if (algorithm.oid === RSA_PSS_OID) {
    const parameters = new Uint8Array(signerInfo.signatureAlgorithmDer ?? Buffer.alloc(0));
    // asn1js builds an object per arc of an OID: one of megabytes in the parameters held the event loop seconds.
    if (ber.holdsOverlongOid(parameters)) {
      return { outcome: 'unverifiable', reason: 'RSASSA-PSS parameters holding an overlong OID', name };
    }
    identifier = new pkijs.AlgorithmIdentifier({ schema: asn1js.fromBER(parameters).result });
    pssHash = pssHashOf(identifier);
  } else {
    const oid = PKIX_SIGNATURE_OID[algorithm.family]?.[hash];
    if (!oid) return { outcome: 'unverifiable', reason: `${algorithm.name} with ${hash} is not supported`, name };
    identifier = new pkijs.AlgorithmIdentifier({ algorithmId: oid });
  }
  // Integrity only: strength is judged afterwards (a good SHA-1 signature is INDETERMINATE, a bad one FAILED).
  const check = verifySignature(identifier, data, signerInfo.signature, signer.publicKey, {
    minRsaBits: 0,
    allowSha1: true,
  });
  const reportedName = pssHash ? `RSASSA-PSS with ${hashName(pssHash)}` : name;
  if (check.ok) return { outcome: 'valid', reason: '', name: reportedName, ...(pssHash ? { hash: pssHash } : {}) };
  return {
    // A key that does not fit the algorithm is a wrong signature; MD5 or PSS parameters pkix refuses are unchecked.
    outcome: check.problem === 'BAD_SIGNATURE' ? 'invalid' : 'unverifiable',
    reason:
      check.problem === 'BAD_SIGNATURE'
        ? 'the signature value does not verify with the signer’s key'
        : `the signature value could not be checked: ${check.reason}`,
    name: reportedName,
    ...(pssHash ? { hash: pssHash } : {}),
  };
}

function pssHashOf(identifier: pkijs.AlgorithmIdentifier): string | undefined {
  try {
    const params = new pkijs.RSASSAPSSParams({ schema: identifier.algorithmParams });
    return DIGEST_ALGORITHMS[params.hashAlgorithm.algorithmId]?.hash;
  } catch {
    return undefined;
  }
}

/**
 * ESS signing-certificate (RFC 2634, SHA-1 hash) or signing-certificate-v2 (RFC 5035): the first ESSCertID names the
 * signer's certificate by hash.
 */
function signingCertificateBinding(
  attributes: readonly SignedAttribute[],
  signer: CertificateFacts,
): 'absent' | 'matches' | 'differs' {
  const v2 = attributes.find((a) => a.type === ID_SIGNING_CERTIFICATE_V2);
  const v1 = attributes.find((a) => a.type === ID_SIGNING_CERTIFICATE);
  const attribute = v2 ?? v1;
  if (!attribute) return 'absent';
  try {
    const certs = attribute.values[0]?.children[0];
    const first = certs?.children[0];
    if (!first) return 'differs';
    let hash = 'sha1';
    let hashNode = first.children[0];
    if (v2) {
      hash = 'sha256';
      if (ber.isUniversal(hashNode, ber.UNIVERSAL_SEQUENCE)) {
        hash = DIGEST_ALGORITHMS[ber.oidOf(hashNode.children[0], 'ESSCertIDv2 hashAlgorithm')]?.hash ?? '';
        hashNode = first.children[1];
      }
    }
    if (!hash || !hashNode) return 'differs';
    const expected = ber.octetsOf(hashNode, 'certHash');
    return createHash(hash).update(signer.der).digest().equals(expected) ? 'matches' : 'differs';
  } catch {
    return 'differs';
  }
}

function levelOf(qualification: QualifiedStatus, bound: boolean): { level: SignatureLevel; reason: string } {
  if (!bound) {
    return {
      level: 'basic',
      reason:
        'The signed attributes do not bind the signer’s certificate (no ESS signing-certificate attribute), so this is not an advanced (CAdES) signature.',
    };
  }
  if (qualification.status === 'qualified-qscd') {
    return { level: 'QES', reason: `Qualified certificate with the key in a QSCD: ${qualification.reason}` };
  }
  return { level: 'AdES', reason: `Advanced signature. ${qualification.reason}` };
}

/** UTCTime (RFC 5280 §4.1.2.5.1: years 50–99 are 19xx) or GeneralizedTime, as a Date. */
export function timeOf(node: ber.BerNode): Date | undefined {
  const text = node.content.toString('latin1');
  let match: RegExpMatchArray | null;
  if (ber.isUniversal(node, 23)) {
    match = text.match(/^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/);
    if (!match) return undefined;
    const yy = Number(match[1]);
    match = [text, String(yy >= 50 ? 1900 + yy : 2000 + yy), ...match.slice(2)] as unknown as RegExpMatchArray;
  } else if (ber.isUniversal(node, 24)) {
    match = text.match(/^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/);
    if (!match) return undefined;
  } else {
    return undefined;
  }
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  // setUTCFullYear, not Date.UTC, which reads years 0–99 as 19xx.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second);
  // A field out of range (month 13, second 99) rolls over into another time, 9999-13 into the year 10000: no time.
  const asWritten =
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second;
  return asWritten ? date : undefined;
}
