// Reading a CMS ContentInfo (RFC 5652) with the strict BER reader of @smgw/crypto: only what the signatures need,
// as slices of the input (no copies of the content, no pkijs object tree, nothing hashed here). A defect of the
// whole structure throws SignatureFormatError; a defect of one SignerInfo is kept on that SignerInfo, so the others
// are still verified and reported.
import { ber } from '@smgw/crypto';

export const ID_DATA = '1.2.840.113549.1.7.1';
export const ID_SIGNED_DATA = '1.2.840.113549.1.7.2';
export const ID_ENVELOPED_DATA = '1.2.840.113549.1.7.3';
export const ID_AUTH_ENVELOPED_DATA = '1.2.840.113549.1.9.16.1.23';
/** RFC 5940 §2.2: an OCSPResponse among a SignedData's RevocationInfoChoices. */
export const ID_RI_OCSP_RESPONSE = '1.3.6.1.5.5.7.16.2';

export class SignatureFormatError extends Error {
  readonly code = 'SIGNATURE_FORMAT';
}

export type SignerIdentifier =
  | { kind: 'issuerAndSerialNumber'; issuer: Buffer; serialNumber: Buffer }
  | { kind: 'subjectKeyIdentifier'; keyIdentifier: Buffer };

export interface SignedAttribute {
  type: string;
  values: readonly ber.BerNode[];
}

export interface ParsedSignerInfo {
  /** Position in the SignedData's signerInfos, from 0. */
  index: number;
  /** Set when this SignerInfo itself cannot be read; the other fields are then unreliable. */
  formatProblem?: string;
  sid?: SignerIdentifier;
  digestAlgorithm: string;
  signatureAlgorithm: string;
  /** The signatureAlgorithm AlgorithmIdentifier as encoded (RSASSA-PSS parameters live in it). */
  signatureAlgorithmDer?: Buffer;
  signature: Buffer;
  /** The DER the signature covers when signed attributes are present: the SET OF with its universal tag. */
  signedAttributesDer?: Buffer;
  signedAttributes?: SignedAttribute[];
  /** Unsigned attributes (a signature timestamp, RFC 3161 Appendix A, lives here); unreadable ones are skipped. */
  unsignedAttributes?: SignedAttribute[];
}

export interface ParsedSignedData {
  eContentType: string;
  /** The encapsulated content as its OCTET STRING segments in order; undefined when detached. */
  eContent?: Buffer[];
  /** DER of each certificate in the certificates field (other certificate choices are skipped). */
  certificates: Buffer[];
  /**
   * The crls field (RevocationInfoChoices, RFC 5652 §10.2.1): each CertificateList, and each other revocation info
   * in the format id-ri-ocsp-response (RFC 5940: an OCSPResponse); other formats are skipped.
   */
  revocationInfo: { crls: Buffer[]; ocspResponses: Buffer[] };
  signerInfos: ParsedSignerInfo[];
}

export type ParsedContentInfo =
  | { kind: 'signed-data'; signedData: ParsedSignedData }
  | { kind: 'encrypted'; contentType: string }
  | { kind: 'other'; contentType: string };

function formatError(message: string): SignatureFormatError {
  return new SignatureFormatError(message);
}

/** Reads a ContentInfo; throws SignatureFormatError when it is not readable CMS. */
export function parseContentInfo(cms: Buffer): ParsedContentInfo {
  try {
    // Down to the SignedData's fields only: certificates are kept as bytes; the parts read further are re-read.
    const contentInfo = ber.expectUniversal(ber.readBer(cms, 4), ber.UNIVERSAL_SEQUENCE, 'ContentInfo');
    const contentType = ber.oidOf(contentInfo.children[0], 'ContentInfo contentType');
    if (contentType === ID_ENVELOPED_DATA || contentType === ID_AUTH_ENVELOPED_DATA) {
      return { kind: 'encrypted', contentType };
    }
    if (contentType !== ID_SIGNED_DATA) return { kind: 'other', contentType };
    const explicit = contentInfo.children[1];
    if (!ber.isContext(explicit, 0)) throw formatError('ContentInfo without content');
    return { kind: 'signed-data', signedData: parseSignedData(explicit.children[0]) };
  } catch (error) {
    if (error instanceof SignatureFormatError) throw error;
    throw formatError(`not readable CMS: ${(error as Error).message}`);
  }
}

function parseSignedData(node: ber.BerNode | undefined): ParsedSignedData {
  const signedData = ber.expectUniversal(node, ber.UNIVERSAL_SEQUENCE, 'SignedData');
  const [version, digestAlgorithms, encapContentInfo, ...rest] = signedData.children;
  ber.smallIntegerOf(version, 'SignedData version');
  ber.expectUniversal(digestAlgorithms, ber.UNIVERSAL_SET, 'SignedData digestAlgorithms');
  const encap = ber.readBer(
    ber.expectUniversal(encapContentInfo, ber.UNIVERSAL_SEQUENCE, 'EncapsulatedContentInfo').raw,
  );
  const eContentType = ber.oidOf(encap.children[0], 'eContentType');
  let eContent: Buffer[] | undefined;
  const explicitContent = encap.children[1];
  if (explicitContent) {
    if (!ber.isContext(explicitContent, 0)) throw formatError('eContent is not [0]');
    const octets = ber.expectUniversal(explicitContent.children[0], ber.UNIVERSAL_OCTET_STRING, 'eContent');
    eContent = octetSegments(octets);
  }
  const certificates: Buffer[] = [];
  const revocationInfo = { crls: [] as Buffer[], ocspResponses: [] as Buffer[] };
  let signerInfosNode: ber.BerNode | undefined;
  for (const field of rest as ber.BerNode[]) {
    const tagged: ber.BerNode = field;
    if (ber.isContext(field, 0)) {
      for (const choice of field.children) {
        if (ber.isUniversal(choice, ber.UNIVERSAL_SEQUENCE)) certificates.push(choice.raw);
      }
    } else if (ber.isContext(field, 1)) {
      // crls: revocation data embedded by the signer, checked like fetched data when a path is validated.
      for (const choice of tagged.children) {
        if (ber.isUniversal(choice, ber.UNIVERSAL_SEQUENCE)) {
          revocationInfo.crls.push(choice.raw);
          continue;
        }
        if (!ber.isContext(choice as ber.BerNode, 1)) continue;
        try {
          const other = ber.readBer((choice as ber.BerNode).raw);
          if (ber.oidOf(other.children[0], 'otherRevInfoFormat') === ID_RI_OCSP_RESPONSE && other.children[1]) {
            revocationInfo.ocspResponses.push(other.children[1].raw);
          }
        } catch {
          // An unreadable other revocation info is revocation data we cannot use, nothing more.
        }
      }
    } else if (ber.isUniversal(field, ber.UNIVERSAL_SET)) {
      signerInfosNode = field;
    } else {
      throw formatError('unexpected field in SignedData');
    }
  }
  if (!signerInfosNode) throw formatError('SignedData without signerInfos');
  return {
    eContentType,
    ...(eContent ? { eContent } : {}),
    certificates,
    revocationInfo,
    signerInfos: signerInfosNode.children.map((node, index) => parseSignerInfo(ber.readBer(node.raw), index)),
  };
}

/** The segments of an OCTET STRING, primitive or constructed, in order (no copy). */
function octetSegments(node: ber.BerNode): Buffer[] {
  if (!node.constructed) return [node.content];
  const segments: Buffer[] = [];
  const collect = (n: ber.BerNode): void => {
    for (const child of n.children) {
      if (!ber.isUniversal(child, ber.UNIVERSAL_OCTET_STRING)) throw formatError('bad OCTET STRING segment');
      if (child.constructed) collect(child);
      else segments.push(child.content);
    }
  };
  collect(node);
  return segments;
}

function parseSignerInfo(node: ber.BerNode, index: number): ParsedSignerInfo {
  const unreadable = (problem: string): ParsedSignerInfo => ({
    index,
    formatProblem: problem,
    digestAlgorithm: '',
    signatureAlgorithm: '',
    signature: Buffer.alloc(0),
  });
  try {
    const info = ber.expectUniversal(node, ber.UNIVERSAL_SEQUENCE, 'SignerInfo');
    const fields = [...info.children];
    const version = ber.smallIntegerOf(fields.shift(), 'SignerInfo version');
    const sidNode: ber.BerNode | undefined = fields.shift();
    const sidTag = sidNode ? { context: ber.isContext(sidNode, 0), constructed: sidNode.constructed } : undefined;
    let sid: SignerIdentifier;
    if (ber.isUniversal(sidNode, ber.UNIVERSAL_SEQUENCE)) {
      const [issuer, serial] = sidNode.children;
      ber.expectUniversal(issuer, ber.UNIVERSAL_SEQUENCE, 'issuer');
      const serialNumber = ber.expectUniversal(serial, ber.UNIVERSAL_INTEGER, 'serialNumber').content;
      sid = { kind: 'issuerAndSerialNumber', issuer: (issuer as ber.BerNode).raw, serialNumber };
    } else if (sidNode && sidTag?.context && !sidTag.constructed) {
      sid = { kind: 'subjectKeyIdentifier', keyIdentifier: (sidNode as ber.BerNode).content };
    } else {
      return unreadable('SignerInfo sid is neither issuerAndSerialNumber nor subjectKeyIdentifier');
    }
    if ((version === 1) !== (sid.kind === 'issuerAndSerialNumber')) {
      return unreadable(`SignerInfo version ${version} does not fit its sid`);
    }
    const digestAlgorithm = algorithmOid(fields.shift(), 'digestAlgorithm');
    let signedAttributesDer: Buffer | undefined;
    let signedAttributes: SignedAttribute[] | undefined;
    if (ber.isContext(fields[0], 0)) {
      const attributesNode = fields.shift() as ber.BerNode;
      // RFC 5652 §5.4: the signature covers the DER of the SET OF; BER with indefinite length cannot be it.
      if (attributesNode.raw[1] === 0x80) return unreadable('signed attributes are not DER encoded');
      signedAttributesDer = Buffer.concat([Buffer.from([0x31]), attributesNode.raw.subarray(1)]);
      signedAttributes = attributesNode.children.map((attribute) => {
        const sequence = ber.expectUniversal(attribute, ber.UNIVERSAL_SEQUENCE, 'Attribute');
        const values = ber.expectUniversal(sequence.children[1], ber.UNIVERSAL_SET, 'Attribute values');
        return { type: ber.oidOf(sequence.children[0], 'Attribute type'), values: values.children };
      });
    }
    const signatureAlgorithmNode = ber.expectUniversal(fields.shift(), ber.UNIVERSAL_SEQUENCE, 'signatureAlgorithm');
    const signatureAlgorithm = ber.oidOf(signatureAlgorithmNode.children[0], 'signatureAlgorithm');
    const signatureNode = ber.expectUniversal(fields.shift(), ber.UNIVERSAL_OCTET_STRING, 'signature');
    const unsignedNode = fields.shift();
    const unsignedAttributes = ber.isContext(unsignedNode, 1) ? attributesOf(unsignedNode) : undefined;
    return {
      index,
      sid,
      digestAlgorithm,
      signatureAlgorithm,
      signatureAlgorithmDer: signatureAlgorithmNode.raw,
      signature: ber.octetsOf(signatureNode, 'signature'),
      ...(signedAttributesDer ? { signedAttributesDer, signedAttributes } : {}),
      ...(unsignedAttributes ? { unsignedAttributes } : {}),
    };
  } catch (error) {
    return unreadable(`SignerInfo not readable: ${(error as Error).message}`);
  }
}

function attributesOf(node: ber.BerNode): SignedAttribute[] {
  return node.children.flatMap((attribute) => {
    try {
      const sequence = ber.expectUniversal(attribute, ber.UNIVERSAL_SEQUENCE, 'Attribute');
      const values = ber.expectUniversal(sequence.children[1], ber.UNIVERSAL_SET, 'Attribute values');
      return [{ type: ber.oidOf(sequence.children[0], 'Attribute type'), values: values.children }];
    } catch {
      return [];
    }
  });
}

function algorithmOid(node: ber.BerNode | undefined, what: string): string {
  const sequence = ber.expectUniversal(node, ber.UNIVERSAL_SEQUENCE, what);
  return ber.oidOf(sequence.children[0], what);
}

/** Concatenated encapsulated content (for callers that need it whole: the inner MIME entity, a .p7m document). */
export function contentBytes(segments: readonly Buffer[]): Buffer {
  return segments.length === 1 ? (segments[0] as Buffer) : Buffer.concat(segments);
}
