// Checks a trusted list's enveloped XML signature (XAdES-BES in practice) against the certificates the operator
// configured or the LOTL gives, and returns the signed list itself. The model is read from that signed XML,
// never from the document as received, so a wrapped or duplicated list cannot slip past the check.

import type { X509Certificate } from 'node:crypto';
import type { Element } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { TrustedListError } from './errors.ts';
import { DSIG_NS, TSL_NS } from './model.ts';
import { parseXml, type XmlDocument } from './xml-parse.ts';

const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
/**
 * Signature methods refused however well they verify: SHA-1 (collisions are practical; ETSI TS 119 312 has not
 * allowed it for new signatures for years). The real lists sign with RSA-SHA256; a list signed with SHA-1 is refused
 * like one whose signature does not verify. A SHA-1 reference digest of a part other than the list (the signing
 * certificate in de-tl.xml's XAdES properties) is left alone: what the list says is covered by its own reference.
 */
const REFUSED_SIGNATURE_METHODS = new Set([
  'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
  'http://www.w3.org/2000/09/xmldsig#dsa-sha1',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1',
  'http://www.w3.org/2000/09/xmldsig#hmac-sha1',
]);
const REFUSED_DIGESTS = new Set(['http://www.w3.org/2000/09/xmldsig#sha1']);

export interface VerifiedListSignature {
  /** The root element as signed (canonicalized, signature removed), parsed again. */
  signedRoot: Element;
  signerCertificate: X509Certificate;
}

function signatureElements(doc: XmlDocument): Element[] {
  return Array.from(doc.getElementsByTagNameNS(DSIG_NS, 'Signature')) as Element[];
}

/**
 * Verifies with each candidate certificate in turn. A certificate whose key verifies but that is outside its
 * validity at `now` refuses the list, unless another candidate verifies and is valid.
 */
export function verifyListSignature(
  text: string,
  doc: XmlDocument,
  candidates: readonly X509Certificate[],
  now: Date,
): VerifiedListSignature {
  const root = doc.documentElement;
  if (!root || root.namespaceURI !== TSL_NS || root.localName !== 'TrustServiceStatusList') {
    throw new TrustedListError('TL_NOT_A_TRUSTED_LIST', 'the root element is not a TS 119 612 TrustServiceStatusList');
  }
  const signatures = signatureElements(doc);
  if (signatures.length === 0) throw new TrustedListError('TL_SIGNATURE_MISSING', 'the list is not signed');
  const signature = signatures[0] as Element;
  if (signatures.length > 1 || signature.parentNode !== root) {
    throw new TrustedListError(
      'TL_SIGNATURE_NOT_ENVELOPING_LIST',
      'the list must carry exactly one signature, as a direct child of its root',
    );
  }
  if (candidates.length === 0) {
    throw new TrustedListError('TL_NO_SIGNER_CERT', 'no certificate is configured to check the list signature with');
  }
  let expired: X509Certificate | undefined;
  let lastFailure = '';
  for (const candidate of candidates) {
    const signed = checkWith(text, signature, candidate);
    if (typeof signed === 'string') {
      lastFailure = signed;
      continue;
    }
    if (now < candidate.validFromDate || now > candidate.validToDate) {
      expired = candidate;
      continue;
    }
    return { signedRoot: signed, signerCertificate: candidate };
  }
  if (expired) {
    throw new TrustedListError(
      'TL_SIGNER_CERT_NOT_VALID',
      `the list signature verifies with ${expired.subject.replace(/\n/g, ', ')}, which is valid only from ${expired.validFromDate.toISOString()} to ${expired.validToDate.toISOString()}`,
    );
  }
  throw new TrustedListError(
    'TL_SIGNATURE_INVALID',
    `the list signature does not verify with any of ${candidates.length} signer certificate(s)${lastFailure ? ` (${lastFailure})` : ''}`,
  );
}

/** The signed root on success; a reason on failure. */
function checkWith(text: string, signature: Element, candidate: X509Certificate): Element | string {
  const sig = new SignedXml({ publicCert: candidate.toString() });
  try {
    sig.loadSignature(signature as unknown as Parameters<SignedXml['loadSignature']>[0]);
    if (REFUSED_SIGNATURE_METHODS.has(sig.signatureAlgorithm ?? '')) {
      return `the signature method ${sig.signatureAlgorithm} (SHA-1) is not accepted`;
    }
    if (!sig.checkSignature(text)) return 'a reference digest does not match';
  } catch (err) {
    return oneLine((err as Error).message);
  }
  const rootId = signature.parentNode && (signature.parentNode as Element).getAttribute('Id');
  for (const ref of sig.getReferences()) {
    const coversRoot = ref.uri === '' || (rootId !== null && rootId !== '' && ref.uri === `#${rootId}`);
    if (!coversRoot || !ref.transforms.includes(ENVELOPED) || ref.signedReference === undefined) continue;
    if (REFUSED_DIGESTS.has(ref.digestAlgorithm))
      return 'the reference over the list uses SHA-1, which is not accepted';
    // The signed octets are canonical XML without a DOCTYPE; parse them with the same hardened parser.
    const signedRoot = parseXml(ref.signedReference).documentElement as Element;
    if (signedRoot.namespaceURI === TSL_NS && signedRoot.localName === 'TrustServiceStatusList') return signedRoot;
  }
  throw new TrustedListError(
    'TL_SIGNATURE_NOT_ENVELOPING_LIST',
    'the signature verifies but no reference covers the whole list with the enveloped-signature transform',
  );
}

function oneLine(message: string): string {
  return message.replace(/\s+/g, ' ').slice(0, 200);
}
