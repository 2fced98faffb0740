// Revocation data a signer embedded in the signature, for the certificate path validation to use before any network
// fetch (@smgw/crypto checks it like fetched data: signature by the issuer or an authorised responder, the issuer,
// freshness at the validation time): the SignedData's crls field (CRLs and RFC 5940 OCSP responses) and the CAdES
// unsigned attribute id-aa-ets-revocationValues (ETSI EN 319 122-1 §5.5.3: crlVals, ocspVals), and what the
// container holds for it (a PDF's /DSS, read by pdf-structure.ts).
import { createHash } from 'node:crypto';
import { ber } from '@smgw/crypto';
import type { ParsedSignedData, ParsedSignerInfo } from './signed-data.ts';

/** id-aa-ets-revocationValues (RFC 5126 §6.3.4). */
export const ID_AA_ETS_REVOCATION_VALUES = '1.2.840.113549.1.9.16.2.24';
/** A stranger may embed any number: each one costs parsing and perhaps a signature check. */
export const MAX_EMBEDDED_REVOCATION_VALUES = 32;

export interface EmbeddedRevocation {
  crls: Buffer[];
  /** DER OCSPResponse (a CAdES BasicOCSPResponse is wrapped into one). */
  ocspResponses: Buffer[];
  /** SHA-256 (hex) of each, for caches and to tell embedded from fetched evidence. */
  fingerprints: Set<string>;
  /** How many were left out beyond the limit. */
  skipped: number;
}

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const length: number[] = [];
  if (n < 0x80) length.push(n);
  else {
    for (let v = n; v > 0; v = Math.floor(v / 256)) length.unshift(v % 256);
    length.unshift(0x80 | length.length);
  }
  return Buffer.concat([Buffer.from([tag, ...length]), content]);
}

/** RFC 6960 §4.2.1: OCSPResponse { successful(0), [0] EXPLICIT ResponseBytes { id-pkix-ocsp-basic, OCTET STRING } }. */
function ocspResponseOf(basicOcspResponse: Buffer): Buffer {
  const oid = Buffer.from('06092b0601050507300101', 'hex'); // id-pkix-ocsp-basic (1.3.6.1.5.5.7.48.1.1)
  const responseBytes = tlv(0x30, Buffer.concat([oid, tlv(0x04, basicOcspResponse)]));
  return tlv(0x30, Buffer.concat([Buffer.from('0a0100', 'hex'), tlv(0xa0, responseBytes)]));
}

/** The elements of `[n] SEQUENCE OF X` in either tagging (EXPLICIT: a SEQUENCE inside; IMPLICIT: X directly). */
function elementsOf(tagged: ber.BerNode, isElement: (node: ber.BerNode) => boolean): readonly ber.BerNode[] {
  const [first] = tagged.children;
  if (tagged.children.length === 1 && first && ber.isUniversal(first, ber.UNIVERSAL_SEQUENCE) && !isElement(first)) {
    return first.children;
  }
  return tagged.children;
}

/** A CertificateList or BasicOCSPResponse: SEQUENCE { tbs, signatureAlgorithm, BIT STRING, … }. */
function isSignedStructure(node: ber.BerNode): boolean {
  return ber.isUniversal(node.children[2], 3);
}

function revocationValuesOf(signerInfo: ParsedSignerInfo): { crls: Buffer[]; ocspResponses: Buffer[] } {
  const crls: Buffer[] = [];
  const ocspResponses: Buffer[] = [];
  for (const attribute of signerInfo.unsignedAttributes ?? []) {
    if (attribute.type !== ID_AA_ETS_REVOCATION_VALUES) continue;
    for (const value of attribute.values) {
      try {
        // Listed down to each CertificateList / BasicOCSPResponse (depth 3), kept raw below: a large CRL's entries
        // are not read here, so they neither count against readBer's element bound nor cost memory.
        const values = ber.expectUniversal(ber.readBer(value.raw, 4), ber.UNIVERSAL_SEQUENCE, 'RevocationValues');
        for (const field of values.children) {
          if (ber.isContext(field, 0)) {
            for (const crl of elementsOf(field, isSignedStructure)) crls.push(crl.raw);
          } else if (ber.isContext(field, 1)) {
            for (const basic of elementsOf(field, isSignedStructure)) ocspResponses.push(ocspResponseOf(basic.raw));
          }
        }
      } catch {
        // Unreadable revocation values give nothing to use.
      }
    }
  }
  return { crls, ocspResponses };
}

/** What one SignerInfo can use: the SignedData's crls field and its own revocationValues, up to the limit. */
export function embeddedRevocationOf(
  signedData: ParsedSignedData,
  signerInfo: ParsedSignerInfo,
  container?: { crls: readonly Buffer[]; ocspResponses: readonly Buffer[] },
): EmbeddedRevocation {
  const own = revocationValuesOf(signerInfo);
  const allCrls = [...signedData.revocationInfo.crls, ...own.crls, ...(container?.crls ?? [])];
  const allOcsp = [
    ...signedData.revocationInfo.ocspResponses,
    ...own.ocspResponses,
    ...(container?.ocspResponses ?? []),
  ];
  const ocspResponses = allOcsp.slice(0, MAX_EMBEDDED_REVOCATION_VALUES);
  const crls = allCrls.slice(0, MAX_EMBEDDED_REVOCATION_VALUES - ocspResponses.length);
  const fingerprints = new Set(
    [...crls, ...ocspResponses].map((der) => createHash('sha256').update(der).digest('hex')),
  );
  return {
    crls,
    ocspResponses,
    fingerprints,
    skipped: allCrls.length + allOcsp.length - crls.length - ocspResponses.length,
  };
}
