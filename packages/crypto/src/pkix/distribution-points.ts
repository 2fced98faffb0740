// CRL distribution points (RFC 5280 §4.2.1.13) and the issuingDistributionPoint CRL extension (§5.2.5),
// parsed with asn1js because pkijs does not parse nameRelativeToCRLIssuer.
import * as asn1js from 'asn1js';
import type * as pkijs from 'pkijs';
import { normalizeNameSequence, normalizeRdn } from './distinguished-name.ts';

/** Reasons bits 1 (keyCompromise) … 8 (aACompromise): every reason a CRL can cover. */
export const ALL_REASONS = 0x1fe;

export interface DistributionPointInfo {
  /** Comparable keys of the distribution point's names. */
  names?: string[];
  reasons?: number;
  /** Normalized directory names of the cRLIssuer field (an indirect CRL). */
  crlIssuers?: string[];
}

export interface IssuingDistributionPointInfo {
  names?: string[];
  onlyUserCerts: boolean;
  onlyCaCerts: boolean;
  onlySomeReasons?: number;
  indirect: boolean;
  onlyAttributeCerts: boolean;
}

function contextChildren(block: asn1js.AsnType): asn1js.AsnType[] {
  const value = (block as asn1js.Constructed).valueBlock?.value;
  return Array.isArray(value) ? value : [];
}

function tagOf(block: asn1js.AsnType): number {
  return (block as asn1js.BaseBlock).idBlock.tagNumber;
}

function primitiveBytes(block: asn1js.AsnType): Uint8Array {
  return new Uint8Array((block as asn1js.Primitive).valueBlock.valueHexView);
}

/** Comparable key of one GeneralName element (context-tagged, implicit). */
export function generalNameKeyFromAsn1(block: asn1js.AsnType): string {
  const tag = tagOf(block);
  if (tag === 4) {
    const inner = contextChildren(block)[0];
    return inner instanceof asn1js.Sequence ? `4:${normalizeNameSequence(inner)}` : '4:invalid';
  }
  if (tag === 1 || tag === 2 || tag === 6) {
    const text = Buffer.from(primitiveBytes(block)).toString('latin1');
    return `${tag}:${tag === 1 ? text : text.toLowerCase()}`;
  }
  return `${tag}:${Buffer.from((block as asn1js.BaseBlock).toBER()).toString('hex')}`;
}

export function generalNamesKeys(block: asn1js.AsnType): string[] {
  return contextChildren(block).map(generalNameKeyFromAsn1);
}

function reasonMask(block: asn1js.AsnType): number {
  const bytes = primitiveBytes(block).subarray(1); // first octet: unused bits
  let mask = 0;
  for (let bit = 0; bit < 9; bit++) {
    if ((bytes[bit >> 3] ?? 0) & (0x80 >> (bit & 7))) mask |= 1 << bit;
  }
  return mask;
}

/** Keys of a DistributionPointName ([0] fullName or [1] nameRelativeToCRLIssuer, resolved against `issuer`). */
function distributionPointNameKeys(choice: asn1js.AsnType, issuer: string): string[] {
  if (tagOf(choice) === 0) return generalNamesKeys(choice);
  const rdn = normalizeRdn(contextChildren(choice));
  return [`4:${issuer === '' ? rdn : `${issuer}\u001e${rdn}`}`];
}

function extensionValue(extension: pkijs.Extension): asn1js.AsnType | undefined {
  const parsed = asn1js.fromBER(extension.extnValue.valueBlock.valueHexView);
  return parsed.offset === -1 ? undefined : parsed.result;
}

/** The certificate's CRL distribution points; `issuer` is its normalized issuer name. */
export function parseCrlDistributionPoints(
  extension: pkijs.Extension,
  issuer: string,
): DistributionPointInfo[] | undefined {
  const value = extensionValue(extension);
  if (!(value instanceof asn1js.Sequence)) return undefined;
  return value.valueBlock.value.map((point) => {
    const info: DistributionPointInfo = {};
    let nameChoice: asn1js.AsnType | undefined;
    for (const field of contextChildren(point)) {
      const tag = tagOf(field);
      if (tag === 0) {
        nameChoice = contextChildren(field)[0];
      } else if (tag === 1) {
        info.reasons = reasonMask(field);
      } else if (tag === 2) {
        info.crlIssuers = generalNamesKeys(field)
          .filter((key) => key.startsWith('4:'))
          .map((key) => key.slice(2));
      }
    }
    // §4.2.1.13: a relative name extends the cRLIssuer when there is one, else the certificate issuer.
    if (nameChoice) info.names = distributionPointNameKeys(nameChoice, info.crlIssuers?.[0] ?? issuer);
    return info;
  });
}

export function parseIssuingDistributionPoint(
  extension: pkijs.Extension,
  crlIssuer: string,
): IssuingDistributionPointInfo | undefined {
  const value = extensionValue(extension);
  if (!(value instanceof asn1js.Sequence)) return undefined;
  const info: IssuingDistributionPointInfo = {
    onlyUserCerts: false,
    onlyCaCerts: false,
    indirect: false,
    onlyAttributeCerts: false,
  };
  const isTrue = (field: asn1js.AsnType) => (primitiveBytes(field)[0] ?? 0) !== 0;
  for (const field of value.valueBlock.value) {
    switch (tagOf(field)) {
      case 0: {
        const choice = contextChildren(field)[0];
        if (choice) info.names = distributionPointNameKeys(choice, crlIssuer);
        break;
      }
      case 1:
        info.onlyUserCerts = isTrue(field);
        break;
      case 2:
        info.onlyCaCerts = isTrue(field);
        break;
      case 3:
        info.onlySomeReasons = reasonMask(field);
        break;
      case 4:
        info.indirect = isTrue(field);
        break;
      case 5:
        info.onlyAttributeCerts = isTrue(field);
        break;
    }
  }
  return info;
}

/** Directory names of a certificateIssuer CRL entry extension (GeneralNames). */
export function parseCertificateIssuer(extension: pkijs.Extension): string[] {
  const value = extensionValue(extension);
  if (!(value instanceof asn1js.Sequence)) return [];
  return value.valueBlock.value
    .map(generalNameKeyFromAsn1)
    .filter((key) => key.startsWith('4:'))
    .map((key) => key.slice(2));
}

/** The http(s) URIs among the fullNames of a certificate's CRL distribution points, as written. */
export function distributionPointUris(extension: pkijs.Extension): string[] {
  const value = extensionValue(extension);
  if (!(value instanceof asn1js.Sequence)) return [];
  const uris: string[] = [];
  for (const point of value.valueBlock.value) {
    for (const field of contextChildren(point)) {
      if (tagOf(field) !== 0) continue;
      const choice = contextChildren(field)[0];
      if (!choice || tagOf(choice) !== 0) continue;
      for (const name of contextChildren(choice)) {
        if (tagOf(name) === 6) uris.push(Buffer.from(primitiveBytes(name)).toString('latin1'));
      }
    }
  }
  return uris.filter((uri) => /^https?:\/\//i.test(uri));
}
