// Revocation status from OCSP responses already fetched (RFC 6960). pkijs's chain engine does not check
// an OCSP response's signature or freshness (LIBRARY-NOTES §4), so this does: the response must be signed
// by the issuer itself or by a responder certificate the issuer issued for OCSPSigning, and be current.
import { createHash } from 'node:crypto';
import * as pkijs from 'pkijs';
import { holdsOverlongOid } from '../smime/ber-reader.ts';
import type { ParsedCertificate } from './certificate.ts';
import { normalizeName } from './distinguished-name.ts';
import { publicKeyOf, verifySignature } from './signature.ts';
import type { AlgorithmPolicy } from './types.ts';

const OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';
const BASIC_OCSP_RESPONSE = '1.3.6.1.5.5.7.48.1.1';
/** Without nextUpdate a response is "fresh" only briefly (RFC 6960 §4.2.2.1 leaves this to local policy). */
const MAX_AGE_WITHOUT_NEXT_UPDATE_MS = 60 * 60 * 1000;
/** Tolerated clock skew between the responder and us. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

const HASH_BY_OID: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

export interface ParsedOcspResponse {
  basic: pkijs.BasicOCSPResponse;
  /** SHA-256 of the OCSPResponse DER. */
  sha256: string;
}

export function parseOcspResponse(der: Uint8Array): ParsedOcspResponse | undefined {
  // An OID of megabytes held the event loop seconds in asn1js (holdsOverlongOid): such a response is unreadable.
  if (holdsOverlongOid(der)) return undefined;
  try {
    const response = pkijs.OCSPResponse.fromBER(der);
    if (response.responseStatus.valueBlock.valueDec !== 0 || !response.responseBytes) return undefined;
    if (response.responseBytes.responseType !== BASIC_OCSP_RESPONSE) return undefined;
    return {
      basic: pkijs.BasicOCSPResponse.fromBER(response.responseBytes.response.valueBlock.valueHexView),
      sha256: createHash('sha256').update(der).digest('hex'),
    };
  } catch {
    return undefined;
  }
}

function hex(view: ArrayBuffer | Uint8Array): string {
  return Buffer.from(view instanceof Uint8Array ? view : new Uint8Array(view)).toString('hex');
}

function matchesCertificate(
  single: pkijs.SingleResponse,
  certificate: ParsedCertificate,
  issuer: ParsedCertificate,
): boolean {
  const hash = HASH_BY_OID[single.certID.hashAlgorithm.algorithmId];
  if (!hash) return false;
  const issuerNameDer = issuer.certificate.subject.toSchema().toBER();
  const issuerKey = issuer.certificate.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView;
  return (
    hex(single.certID.serialNumber.valueBlock.valueHexView) ===
      hex(certificate.certificate.serialNumber.valueBlock.valueHexView) &&
    hex(single.certID.issuerNameHash.valueBlock.valueHexView) ===
      createHash(hash).update(new Uint8Array(issuerNameDer)).digest('hex') &&
    hex(single.certID.issuerKeyHash.valueBlock.valueHexView) === createHash(hash).update(issuerKey).digest('hex')
  );
}

function signedBy(basic: pkijs.BasicOCSPResponse, signer: pkijs.Certificate, policy: AlgorithmPolicy): boolean {
  try {
    return verifySignature(
      basic.signatureAlgorithm,
      new Uint8Array(basic.tbsResponseData.tbsView),
      new Uint8Array(basic.signature.valueBlock.valueHexView),
      publicKeyOf(signer.subjectPublicKeyInfo),
      policy,
    ).ok;
  } catch {
    return false;
  }
}

function authorisedResponder(
  candidate: pkijs.Certificate,
  issuer: ParsedCertificate,
  time: Date,
  policy: AlgorithmPolicy,
): boolean {
  if (normalizeName(candidate.issuer) !== issuer.subject) return false;
  const eku = candidate.extensions?.find((e) => e.extnID === '2.5.29.37')?.parsedValue as pkijs.ExtKeyUsage | undefined;
  if (!eku?.keyPurposes.includes(OCSP_SIGNING)) return false;
  if (time < candidate.notBefore.value || time > candidate.notAfter.value) return false;
  try {
    return verifySignature(
      candidate.signatureAlgorithm,
      new Uint8Array(candidate.tbsView),
      new Uint8Array(candidate.signatureValue.valueBlock.valueHexView),
      publicKeyOf(issuer.certificate.subjectPublicKeyInfo),
      policy,
    ).ok;
  } catch {
    return false;
  }
}

export type OcspVerdict = {
  status: 'good' | 'revoked' | 'unknown';
  reason: string;
  /** The response a good or revoked status comes from. */
  evidence?: { sha256: string; thisUpdate: Date; nextUpdate?: Date };
};

/** Status of `certificate` from the first current, properly signed response that covers it. */
export function checkOcspStatus(
  certificate: ParsedCertificate,
  issuer: ParsedCertificate,
  responses: ParsedOcspResponse[],
  time: Date,
  policy: AlgorithmPolicy,
): OcspVerdict {
  let reason = 'no OCSP response covers it';
  for (const { basic, sha256 } of responses) {
    const singles = basic.tbsResponseData.responses.filter((single) => matchesCertificate(single, certificate, issuer));
    if (singles.length === 0) continue;
    // Signed by the issuer (CA-signed) or by a delegated responder the issuer authorised (RFC 6960 §4.2.2.2).
    const authorised =
      signedBy(basic, issuer.certificate, policy) ||
      (basic.certs ?? []).some(
        (responder) => authorisedResponder(responder, issuer, time, policy) && signedBy(basic, responder, policy),
      );
    if (!authorised) {
      reason = 'its OCSP response is not signed by the issuer or a responder it authorised';
      continue;
    }
    for (const single of singles) {
      const thisUpdate = single.thisUpdate.getTime();
      const tooNew = thisUpdate > time.getTime() + CLOCK_SKEW_MS;
      const stale = single.nextUpdate
        ? single.nextUpdate.getTime() < time.getTime() - CLOCK_SKEW_MS
        : time.getTime() - thisUpdate > MAX_AGE_WITHOUT_NEXT_UPDATE_MS;
      if (tooNew || stale) {
        reason = 'its OCSP response is not current';
        continue;
      }
      const tag = (single.certStatus as { idBlock: { tagNumber: number } }).idBlock.tagNumber;
      const evidence = {
        sha256,
        thisUpdate: single.thisUpdate,
        ...(single.nextUpdate ? { nextUpdate: single.nextUpdate } : {}),
      };
      if (tag === 1) return { status: 'revoked', reason: 'the OCSP responder reports it revoked', evidence };
      if (tag === 0) return { status: 'good', reason: 'the OCSP responder reports it good', evidence };
      reason = 'the OCSP responder does not know it';
    }
  }
  return { status: 'unknown', reason };
}
