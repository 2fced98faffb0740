// Rebuilding a DER SignedData with parts moved, removed or damaged: how the structural attacks are made in the tests
// (a forged SignerInfo appended or prepended, zero SignerInfos, a flipped byte in a signature value).
import { ber } from '@smgw/crypto';

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), length(content.length), content]);
}

export interface SignedDataParts {
  contentTypeOid: Buffer;
  version: Buffer;
  digestAlgorithms: Buffer;
  encapContentInfo: Buffer;
  certificates: Buffer[];
  /** The crls field's RevocationInfoChoices, each as DER. */
  revocationInfo?: Buffer[];
  signerInfos: Buffer[];
}

/** The raw pieces of a DER ContentInfo/SignedData. */
export function splitSignedData(cms: Buffer): SignedDataParts {
  const contentInfo = ber.readBer(cms);
  const signedData = contentInfo.children[1]?.children[0] as ber.BerNode;
  const [version, digestAlgorithms, encap, ...rest] = signedData.children as ber.BerNode[];
  const certificates = rest.find((n) => ber.isContext(n, 0))?.children.map((c) => c.raw) ?? [];
  const signerInfos = rest.find((n) => ber.isUniversal(n, ber.UNIVERSAL_SET))?.children.map((c) => c.raw) ?? [];
  const revocationInfo = rest.find((n) => ber.isContext(n, 1))?.children.map((c) => c.raw) ?? [];
  return {
    revocationInfo,
    contentTypeOid: (contentInfo.children[0] as ber.BerNode).raw,
    version: (version as ber.BerNode).raw,
    digestAlgorithms: (digestAlgorithms as ber.BerNode).raw,
    encapContentInfo: (encap as ber.BerNode).raw,
    certificates,
    signerInfos,
  };
}

export function joinSignedData(parts: SignedDataParts): Buffer {
  const signedData = tlv(
    0x30,
    Buffer.concat([
      parts.version,
      parts.digestAlgorithms,
      parts.encapContentInfo,
      ...(parts.certificates.length > 0 ? [tlv(0xa0, Buffer.concat(parts.certificates))] : []),
      ...((parts.revocationInfo?.length ?? 0) > 0 ? [tlv(0xa1, Buffer.concat(parts.revocationInfo ?? []))] : []),
      tlv(0x31, Buffer.concat(parts.signerInfos)),
    ]),
  );
  return tlv(0x30, Buffer.concat([parts.contentTypeOid, tlv(0xa0, signedData)]));
}

/** A copy of `cms` with the last byte of SignerInfo `index`'s signature value flipped. */
export function flipSignatureByte(cms: Buffer, index = 0): Buffer {
  const copy = Buffer.from(cms);
  const signedData = ber.readBer(copy).children[1]?.children[0] as ber.BerNode;
  const set = signedData.children.find((n) => ber.isUniversal(n, ber.UNIVERSAL_SET) && n !== signedData.children[1]);
  const info = set?.children[index] as ber.BerNode;
  const signature = info.children.filter((n) => ber.isUniversal(n, ber.UNIVERSAL_OCTET_STRING)).at(-1) as ber.BerNode;
  const position = signature.content.byteOffset - copy.byteOffset + signature.content.length - 1;
  copy[position] = (copy[position] as number) ^ 0x01;
  return copy;
}

/** A copy of an opaque SignedData whose encapsulated content has one byte changed (the first `from` → `to`). */
export function replaceInContent(cms: Buffer, from: string, to: string): Buffer {
  if (from.length !== to.length) throw new Error('same length only');
  const copy = Buffer.from(cms);
  const at = copy.indexOf(from);
  if (at === -1) throw new Error('not found');
  copy.write(to, at, 'latin1');
  return copy;
}

/** A copy of `cms` whose first SignerInfo has its signed attributes changed by `change` (each attribute as DER). */
export function changeSignedAttributes(cms: Buffer, change: (attributes: Buffer[]) => Buffer[]): Buffer {
  const parts = splitSignedData(cms);
  const info = ber.readBer(parts.signerInfos[0] as Buffer);
  const fields = info.children.map((child: ber.BerNode) => {
    if (child.tagClass !== 2 || child.tagNumber !== 0) return child.raw;
    return tlv(0xa0, Buffer.concat(change(child.children.map((a) => a.raw))));
  });
  const signerInfos = [tlv(0x30, Buffer.concat(fields)), ...parts.signerInfos.slice(1)];
  return joinSignedData({ ...parts, signerInfos });
}

/** Whether a DER attribute is of type `oid` (dotted). */
export function attributeIs(attribute: Buffer, oid: string): boolean {
  return ber.oidOf(ber.readBer(attribute).children[0], 'attribute type') === oid;
}

/** A copy of `cms` with one unsigned attribute (`type` as DER OID, one value as DER) added to SignerInfo 0. */
export function addUnsignedAttribute(cms: Buffer, typeOid: Buffer, value: Buffer): Buffer {
  const parts = splitSignedData(cms);
  const info = ber.readBer(parts.signerInfos[0] as Buffer);
  const fields = info.children.map((c) => c.raw);
  const attribute = tlv(0x30, Buffer.concat([typeOid, tlv(0x31, value)]));
  const last = info.children[info.children.length - 1];
  const signerInfo = ber.isContext(last, 1)
    ? tlv(
        0x30,
        Buffer.concat([
          ...fields.slice(0, -1),
          tlv(0xa1, Buffer.concat([...last.children.map((c) => c.raw), attribute])),
        ]),
      )
    : tlv(0x30, Buffer.concat([...fields, tlv(0xa1, attribute)]));
  return joinSignedData({ ...parts, signerInfos: [signerInfo, ...parts.signerInfos.slice(1)] });
}

/** DER of the OID id-ri-ocsp-response (1.3.6.1.5.5.7.16.2, RFC 5940). */
const ID_RI_OCSP_RESPONSE = Buffer.from('06082b06010505071002', 'hex');

/** A copy of `cms` with CRLs and OCSP responses (RFC 5940 other revocation info) added to its crls field. */
export function addRevocationInfo(cms: Buffer, data: { crls?: Buffer[]; ocspResponses?: Buffer[] }): Buffer {
  const parts = splitSignedData(cms);
  const others = (data.ocspResponses ?? []).map((der) => tlv(0xa1, Buffer.concat([ID_RI_OCSP_RESPONSE, der])));
  return joinSignedData({
    ...parts,
    revocationInfo: [...(parts.revocationInfo ?? []), ...(data.crls ?? []), ...others],
  });
}

/** DER of the OID id-aa-ets-revocationValues (1.2.840.113549.1.9.16.2.24). */
export const REVOCATION_VALUES_OID = Buffer.from('060b2a864886f70d0109100218', 'hex');

/** CAdES RevocationValues (EXPLICIT tags, ETSI TS 101 733): crlVals, ocspVals (BasicOCSPResponse of each response). */
export function revocationValues(crls: Buffer[], ocspResponses: Buffer[]): Buffer {
  const basic = ocspResponses.map((der) => {
    const response = ber.readBer(der);
    const responseBytes = response.children[1]?.children[0] as ber.BerNode;
    return ber.octetsOf(responseBytes.children[1] as ber.BerNode, 'BasicOCSPResponse');
  });
  return tlv(
    0x30,
    Buffer.concat([
      ...(crls.length > 0 ? [tlv(0xa0, tlv(0x30, Buffer.concat(crls)))] : []),
      ...(basic.length > 0 ? [tlv(0xa1, tlv(0x30, Buffer.concat(basic)))] : []),
    ]),
  );
}
