// RFC 3161 time-stamp tokens: a SignedData over a TSTInfo, whose messageImprint must be the hash of what the token
// stamps (a PDF's ByteRange for a document timestamp, ETSI EN 319 142-1 §5.4; a signature value for a signature
// timestamp, RFC 3161 Appendix A). The token's own signature and its TSA's path are verified like any CMS signature
// (verifySignedData); the TSA's certificate must carry the timeStamping extended key usage (RFC 3161 §2.3).
import { createHash, X509Certificate } from 'node:crypto';
import { ber } from '@smgw/crypto';
import { DIGEST_ALGORITHMS } from './algorithms.ts';
import { certificateFacts } from './certificate-facts.ts';
import { failed, indeterminate, type Judgement, worseOf } from './indication.ts';
import { type Sentence, sentenceFor } from './sentences.ts';
import { parseContentInfo, SignatureFormatError } from './signed-data.ts';
import { type SignatureVerification, type SignedDataContext, timeOf, verifySignedData } from './verify-signed-data.ts';

export const ID_CT_TST_INFO = '1.2.840.113549.1.9.16.1.4';
/** id-aa-signatureTimeStampToken (RFC 3161 Appendix A). */
export const ID_AA_SIGNATURE_TIME_STAMP_TOKEN = '1.2.840.113549.1.9.16.2.14';
const ID_KP_TIME_STAMPING = '1.3.6.1.5.5.7.3.8';

export interface TimestampVerification {
  indication: Judgement['indication'];
  subIndication?: Exclude<Judgement, { indication: 'TOTAL_PASSED' }>['subIndication'];
  sentence: Sentence;
  reasons: string[];
  /** genTime of the TSTInfo: the time the TSA attests (trustworthy only when TOTAL_PASSED). */
  time?: Date;
  serialNumber?: string;
  /** Whether the messageImprint is the hash of the stamped bytes. */
  imprintMatches: boolean;
  /** The TSA's signature over the token, as verifySignedData judged it. */
  tsa?: SignatureVerification;
}

interface TstInfo {
  hash: string;
  hashedMessage: Buffer;
  serialNumber: string;
  genTime: Date;
}

function readTstInfo(content: Buffer): TstInfo {
  const info = ber.expectUniversal(ber.readBer(content), ber.UNIVERSAL_SEQUENCE, 'TSTInfo');
  const [version, , imprint, serial, genTime] = info.children;
  if (ber.smallIntegerOf(version, 'TSTInfo version') !== 1) throw new SignatureFormatError('TSTInfo version is not 1');
  const messageImprint = ber.expectUniversal(imprint, ber.UNIVERSAL_SEQUENCE, 'messageImprint');
  const algorithm = ber.expectUniversal(messageImprint.children[0], ber.UNIVERSAL_SEQUENCE, 'hashAlgorithm');
  const oid = ber.oidOf(algorithm.children[0], 'hashAlgorithm');
  const digest = DIGEST_ALGORITHMS[oid];
  if (!digest) throw new SignatureFormatError(`messageImprint hash algorithm ${oid} is not supported`);
  const hashedMessage = ber.octetsOf(
    ber.expectUniversal(messageImprint.children[1], ber.UNIVERSAL_OCTET_STRING, 'hashedMessage'),
    'hashedMessage',
  );
  const serialNumber = ber.expectUniversal(serial, ber.UNIVERSAL_INTEGER, 'serialNumber').content.toString('hex');
  const time = genTime && ber.isUniversal(genTime, 24) ? timeOf(genTime) : undefined;
  if (!time) throw new SignatureFormatError('TSTInfo genTime is not a GeneralizedTime');
  return { hash: digest.hash, hashedMessage, serialNumber, genTime: time };
}

function finish(judgement: Judgement, rest: Omit<TimestampVerification, 'indication' | 'subIndication' | 'sentence'>) {
  const subIndication = judgement.indication === 'TOTAL_PASSED' ? undefined : judgement.subIndication;
  return {
    indication: judgement.indication,
    ...(subIndication ? { subIndication } : {}),
    sentence: sentenceFor(judgement.indication, subIndication),
    ...rest,
  };
}

/** Verifies a time-stamp token over `stamped` (its segments in order). Never throws for a bad token. */
export async function verifyTimestampToken(
  token: Buffer,
  stamped: readonly Uint8Array[],
  context: SignedDataContext,
): Promise<TimestampVerification> {
  const reasons: string[] = [];
  let tstInfo: TstInfo;
  let tsa: SignatureVerification | undefined;
  let certificates: readonly Buffer[] = [];
  try {
    const parsed = parseContentInfo(token);
    if (parsed.kind !== 'signed-data') throw new SignatureFormatError('the time-stamp token is not a SignedData');
    const { signedData } = parsed;
    if (signedData.eContentType !== ID_CT_TST_INFO || !signedData.eContent) {
      throw new SignatureFormatError('the time-stamp token does not hold a TSTInfo');
    }
    if (signedData.signerInfos.length !== 1) {
      throw new SignatureFormatError(`a time-stamp token has one signer, this one ${signedData.signerInfos.length}`);
    }
    certificates = signedData.certificates;
    tstInfo = readTstInfo(Buffer.concat(signedData.eContent));
    const verification = await verifySignedData({ signedData, purpose: 'any' }, context);
    tsa = verification.signatures[0];
  } catch (error) {
    reasons.push(`the time-stamp token is not readable: ${(error as Error).message}`);
    return finish(failed('FORMAT_FAILURE'), { reasons, imprintMatches: false });
  }
  const hasher = createHash(tstInfo.hash);
  for (const segment of stamped) hasher.update(segment);
  const imprintMatches = hasher.digest().equals(tstInfo.hashedMessage);
  const rest = {
    reasons,
    time: tstInfo.genTime,
    serialNumber: tstInfo.serialNumber,
    imprintMatches,
    ...(tsa ? { tsa } : {}),
  };
  if (!imprintMatches) {
    reasons.push('the time-stamp’s message imprint is not the hash of the stamped data: the data was changed');
    return finish(failed('HASH_FAILURE'), rest);
  }
  if (!tsa) return finish(failed('FORMAT_FAILURE'), rest);
  reasons.push(...tsa.reasons.map((r) => `time-stamp authority: ${r}`));
  let judgement: Judgement =
    tsa.indication === 'TOTAL_PASSED'
      ? { indication: 'TOTAL_PASSED' }
      : tsa.indication === 'TOTAL_FAILED'
        ? failed(
            tsa.subIndication as Exclude<Judgement, { indication: 'TOTAL_PASSED' | 'INDETERMINATE' }>['subIndication'],
          )
        : indeterminate(tsa.subIndication as Extract<Judgement, { indication: 'INDETERMINATE' }>['subIndication']);
  if (tsa.signer && !hasTimeStampingUsage(tsa.signer.fingerprint, certificates)) {
    reasons.push('the time-stamp authority’s certificate lacks the timeStamping extended key usage (RFC 3161 §2.3)');
    judgement = worseOf(judgement, indeterminate('CHAIN_CONSTRAINTS_FAILURE'));
  }
  return finish(judgement, rest);
}

function hasTimeStampingUsage(fingerprint: string, certificates: readonly Buffer[]): boolean {
  for (const der of certificates) {
    try {
      const facts = certificateFacts(der);
      if (facts.fingerprint !== fingerprint) continue;
      return (new X509Certificate(der).keyUsage ?? []).includes(ID_KP_TIME_STAMPING);
    } catch {}
  }
  return false;
}
