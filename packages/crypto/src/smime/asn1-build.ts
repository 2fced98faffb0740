// Small builders over asn1js for the DER parts of the CMS structures we write.
import * as asn1js from 'asn1js';
import { SmimeError } from './errors.ts';

export const sequence = (...value: asn1js.BaseBlock[]): asn1js.Sequence => new asn1js.Sequence({ value });
export const oid = (value: string): asn1js.ObjectIdentifier => new asn1js.ObjectIdentifier({ value });
export const integer = (value: number): asn1js.Integer => new asn1js.Integer({ value });
export const integerOfBytes = (bytes: Uint8Array): asn1js.Integer => new asn1js.Integer({ valueHex: bytes });
export const octetString = (bytes: Uint8Array): asn1js.OctetString => new asn1js.OctetString({ valueHex: bytes });
export const bitString = (bytes: Uint8Array): asn1js.BitString => new asn1js.BitString({ valueHex: bytes });
export const nullValue = (): asn1js.Null => new asn1js.Null();

/** [tagNumber] constructed: EXPLICIT tagging, or IMPLICIT tagging of a SEQUENCE given its elements. */
export const contextConstructed = (tagNumber: number, ...value: asn1js.BaseBlock[]): asn1js.Constructed =>
  new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber }, value });

/** Embeds an already DER-encoded element (a Name from a certificate, an AlgorithmIdentifier from a message). */
export function embedded(der: Uint8Array): asn1js.BaseBlock {
  const parsed = asn1js.fromBER(der);
  if (parsed.offset === -1) throw new SmimeError('SMIME_MALFORMED', `cannot embed DER: ${parsed.result.error}`);
  return parsed.result as asn1js.BaseBlock;
}

export const encodeDer = (node: asn1js.BaseBlock): Buffer => Buffer.from(node.toBER(false));
