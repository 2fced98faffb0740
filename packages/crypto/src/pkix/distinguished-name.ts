// Distinguished-name comparison per RFC 5280 §7.1: attribute types exact, string values case-folded with
// whitespace collapsed (a simplification of RFC 4518 string preparation), other values byte for byte.
import * as asn1js from 'asn1js';
import type * as pkijs from 'pkijs';

const EMAIL_ADDRESS_OID = '1.2.840.113549.1.9.1';

function hex(bytes: ArrayBuffer | Uint8Array): string {
  return Buffer.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)).toString('hex');
}

export function normalizeAttributeValue(value: unknown): string {
  const block = value as { valueBlock?: { value?: unknown }; toBER?: () => ArrayBuffer };
  const isString =
    value instanceof asn1js.Utf8String ||
    value instanceof asn1js.PrintableString ||
    value instanceof asn1js.TeletexString ||
    value instanceof asn1js.BmpString ||
    value instanceof asn1js.UniversalString ||
    value instanceof asn1js.IA5String ||
    value instanceof asn1js.VisibleString;
  if (isString && typeof block.valueBlock?.value === 'string') {
    return `s:${block.valueBlock.value.trim().replace(/\s+/g, ' ').toLowerCase()}`;
  }
  return `b:${block.toBER ? hex(block.toBER()) : String(value)}`;
}

/** A canonical string for a name: equal strings ⇔ equal names under §7.1 (RDNs in order, attributes unordered). */
export function normalizeName(name: pkijs.RelativeDistinguishedNames): string {
  const rdns = new Map<number, string[]>();
  // pkijs flattens RDNs into typesAndValues; group them back by the RDN they came from.
  const seq = name.valueBeforeDecode.byteLength > 0 ? asn1js.fromBER(name.valueBeforeDecode).result : undefined;
  if (seq instanceof asn1js.Sequence) return normalizeNameSequence(seq);
  name.typesAndValues.forEach((atv, i) => {
    rdns.set(i, [`${atv.type}=${normalizeAttributeValue(atv.value)}`]);
  });
  return [...rdns.values()].map((a) => a.join('\u001f')).join('\u001e');
}

/** Canonical string of one RDN given as its AttributeTypeAndValue SEQUENCEs. */
export function normalizeRdn(attributes: asn1js.AsnType[]): string {
  const atvs: string[] = [];
  for (const atv of attributes) {
    if (!(atv instanceof asn1js.Sequence)) return 'invalid';
    const [type, value] = atv.valueBlock.value;
    if (!(type instanceof asn1js.ObjectIdentifier)) return 'invalid';
    atvs.push(`${type.valueBlock.toString()}=${normalizeAttributeValue(value)}`);
  }
  return atvs.sort().join('\u001f');
}

/** Canonical string of a Name given as its ASN.1 SEQUENCE of RDNs. */
export function normalizeNameSequence(seq: asn1js.Sequence): string {
  const parts: string[] = [];
  for (const rdn of seq.valueBlock.value) {
    if (!(rdn instanceof asn1js.Set)) return `raw:${hex(seq.toBER())}`;
    parts.push(normalizeRdn(rdn.valueBlock.value));
  }
  return parts.join('\u001e');
}

/** The RDN sequence as a list of normalized RDN strings, for directoryName subtree matching. */
export function nameRdns(normalized: string): string[] {
  return normalized === '' ? [] : normalized.split('\u001e');
}

/** emailAddress attribute values of a subject name (legacy S/MIME certificates). */
export function emailAddressesInName(name: pkijs.RelativeDistinguishedNames): string[] {
  return name.typesAndValues
    .filter((atv) => atv.type === EMAIL_ADDRESS_OID)
    .map((atv) => String((atv.value as { valueBlock: { value: unknown } }).valueBlock.value));
}
