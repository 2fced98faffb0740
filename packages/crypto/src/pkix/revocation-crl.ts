// Revocation status from CRLs already at hand (RFC 5280 §6.3): complete and delta CRLs (§5.2.4), scoped by
// issuingDistributionPoint and the certificate's distribution points, indirect CRLs (certificateIssuer), and
// reason partitions (onlySomeReasons). Anything we cannot interpret makes the CRL unusable, which in
// `require` mode means REVOCATION_UNKNOWN: never a silent "good".
import { createHash } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { holdsOverlongOid } from '../smime/ber-reader.ts';
import { EXT, type ParsedCertificate } from './certificate.ts';
import { normalizeName } from './distinguished-name.ts';
import {
  ALL_REASONS,
  type DistributionPointInfo,
  type IssuingDistributionPointInfo,
  parseCertificateIssuer,
  parseCrlDistributionPoints,
  parseIssuingDistributionPoint,
} from './distribution-points.ts';

const CRL_EXT = {
  crlNumber: '2.5.29.20',
  deltaCrlIndicator: '2.5.29.27',
  issuingDistributionPoint: '2.5.29.28',
  authorityKeyIdentifier: '2.5.29.35',
  freshestCrl: '2.5.29.46',
  issuerAltName: '2.5.29.18',
} as const;
const ENTRY_EXT = { reasonCode: '2.5.29.21', invalidityDate: '2.5.29.24', certificateIssuer: '2.5.29.29' } as const;
const REMOVE_FROM_CRL = 8;

export interface CrlEntry {
  /** Normalized name of the issuer of the revoked certificate (the CRL issuer unless certificateIssuer says otherwise). */
  certificateIssuer: string;
  reason?: number;
  /** The entry has a critical extension we do not understand. */
  uninterpretable: boolean;
}

export interface ParsedCrl {
  crl: pkijs.CertificateRevocationList;
  fingerprint: string;
  issuer: string;
  thisUpdate: Date;
  nextUpdate?: Date;
  crlNumber?: bigint;
  /** Set for a delta CRL: the number of the base CRL it builds on. */
  baseCrlNumber?: bigint;
  scope: IssuingDistributionPointInfo;
  scopeKey: string;
  unknownCriticalExtension: boolean;
  entries: Map<string, CrlEntry[]>;
}

function integerToBigInt(value: unknown): bigint | undefined {
  if (!(value instanceof asn1js.Integer)) return undefined;
  const hex = Buffer.from(value.valueBlock.valueHexView).toString('hex');
  return hex === '' ? 0n : BigInt(`0x${hex}`);
}

function serialKey(serial: asn1js.Integer): string {
  return Buffer.from(serial.valueBlock.valueHexView).toString('hex');
}

/** Parsed CRLs by SHA-256 of their DER (large CRLs are reused across many validations). */
const parsedCache = new Map<string, ParsedCrl | undefined>();
const PARSED_CACHE_SIZE = 500;

export function parseCrl(der: Uint8Array): ParsedCrl | undefined {
  const fingerprint = createHash('sha256').update(der).digest('hex');
  if (parsedCache.has(fingerprint)) return parsedCache.get(fingerprint);
  const parsed = parseUncached(der, fingerprint);
  if (parsedCache.size >= PARSED_CACHE_SIZE) parsedCache.delete(parsedCache.keys().next().value as string);
  parsedCache.set(fingerprint, parsed);
  return parsed;
}

function parseUncached(der: Uint8Array, fingerprint: string): ParsedCrl | undefined {
  let crl: pkijs.CertificateRevocationList;
  // An OID of megabytes held the event loop seconds in asn1js (holdsOverlongOid): such a CRL is unreadable. Only an
  // OID seen counts: a real CRL of a few MB holds more elements (serials) than the reader lists, and pkijs reads it as
  // before (its URL is in a certificate a trusted CA issued, and SMGW's fetch takes at most 4 MiB).
  if (holdsOverlongOid(der, 2, false)) return undefined;
  try {
    crl = pkijs.CertificateRevocationList.fromBER(der);
  } catch {
    return undefined;
  }
  const issuer = normalizeName(crl.issuer);
  const parsed: ParsedCrl = {
    crl,
    fingerprint,
    issuer,
    thisUpdate: crl.thisUpdate.value,
    ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate.value } : {}),
    scope: { onlyUserCerts: false, onlyCaCerts: false, indirect: false, onlyAttributeCerts: false },
    scopeKey: '',
    unknownCriticalExtension: false,
    entries: new Map(),
  };
  const known = new Set<string>(Object.values(CRL_EXT));
  for (const extension of crl.crlExtensions?.extensions ?? []) {
    if (!known.has(extension.extnID)) {
      if (extension.critical) parsed.unknownCriticalExtension = true;
      continue;
    }
    if (extension.extnID === CRL_EXT.crlNumber) {
      const number = integerToBigInt(extension.parsedValue);
      if (number !== undefined) parsed.crlNumber = number;
    } else if (extension.extnID === CRL_EXT.deltaCrlIndicator) {
      const number = integerToBigInt(extension.parsedValue);
      if (number === undefined) parsed.unknownCriticalExtension = true;
      else parsed.baseCrlNumber = number;
    } else if (extension.extnID === CRL_EXT.issuingDistributionPoint) {
      const idp = parseIssuingDistributionPoint(extension, issuer);
      if (idp) parsed.scope = idp;
      else parsed.unknownCriticalExtension = true;
    }
  }
  parsed.scopeKey = JSON.stringify(parsed.scope);
  let currentIssuer = issuer;
  for (const revoked of crl.revokedCertificates ?? []) {
    let uninterpretable = false;
    let reason: number | undefined;
    for (const extension of revoked.crlEntryExtensions?.extensions ?? []) {
      if (extension.extnID === ENTRY_EXT.reasonCode) {
        const value = extension.parsedValue as asn1js.Enumerated | undefined;
        if (value) reason = value.valueBlock.valueDec;
      } else if (extension.extnID === ENTRY_EXT.certificateIssuer) {
        // §5.3.3: sets the issuer for this and the following entries, in indirect CRLs only.
        const names = parseCertificateIssuer(extension);
        if (!parsed.scope.indirect || names.length === 0) uninterpretable = true;
        else currentIssuer = names[0] as string;
      } else if (extension.extnID !== ENTRY_EXT.invalidityDate && extension.critical) {
        uninterpretable = true;
      }
    }
    const key = serialKey(revoked.userCertificate);
    const list = parsed.entries.get(key) ?? [];
    list.push({ certificateIssuer: currentIssuer, uninterpretable, ...(reason !== undefined ? { reason } : {}) });
    parsed.entries.set(key, list);
  }
  return parsed;
}

export type CrlVerdict = {
  status: 'good' | 'revoked' | 'unknown';
  reason: string;
  /** The CRL a good or revoked status comes from (for good: the newest complete CRL that covered it). */
  evidence?: ParsedCrl;
};

export interface CrlContext {
  time: Date;
  /** True when the CRL's signature verifies with a key allowed to sign CRLs of that issuer. */
  crlSignatureValid: (crl: ParsedCrl, issuer: ParsedCertificate) => boolean;
}

function certificateDistributionPoints(certificate: ParsedCertificate): DistributionPointInfo[] {
  const extension = certificate.certificate.extensions?.find((e) => e.extnID === EXT.crlDistributionPoints);
  if (!extension) return [];
  return parseCrlDistributionPoints(extension, certificate.issuer) ?? [{ names: ['unparseable'] }];
}

/** Which reasons this CRL covers for the certificate, or 0 when it does not apply (RFC 5280 §6.3.3 b). */
function coveredReasons(crl: ParsedCrl, certificate: ParsedCertificate, points: DistributionPointInfo[]): number {
  if (crl.scope.onlyAttributeCerts) return 0;
  const isCa = certificate.basicConstraints?.ca === true;
  if (crl.scope.onlyUserCerts && isCa) return 0;
  if (crl.scope.onlyCaCerts && !isCa) return 0;
  const idpReasons = crl.scope.onlySomeReasons ?? ALL_REASONS;
  if (crl.issuer === certificate.issuer && points.every((p) => !p.crlIssuers)) {
    // A direct CRL.
    if (!crl.scope.names) return idpReasons;
    const matching = points.filter((point) => point.names?.some((name) => crl.scope.names?.includes(name)));
    if (matching.length === 0) return 0;
    return matching.reduce((mask, point) => mask | (idpReasons & (point.reasons ?? ALL_REASONS)), 0);
  }
  // An indirect CRL: its issuer must be named as cRLIssuer of a distribution point, or issue for the same CA.
  if (!crl.scope.indirect) return 0;
  const viaPoint = points.filter(
    (point) =>
      point.crlIssuers?.includes(crl.issuer) &&
      (!crl.scope.names || !point.names || point.names.some((name) => crl.scope.names?.includes(name))),
  );
  if (viaPoint.length > 0)
    return viaPoint.reduce((mask, point) => mask | (idpReasons & (point.reasons ?? ALL_REASONS)), 0);
  return crl.issuer === certificate.issuer && !crl.scope.names ? idpReasons : 0;
}

function fresh(crl: ParsedCrl, time: Date): boolean {
  return (
    crl.thisUpdate.getTime() <= time.getTime() &&
    crl.nextUpdate !== undefined &&
    crl.nextUpdate.getTime() > time.getTime()
  );
}

function entryFor(crl: ParsedCrl, serial: string, certificateIssuer: string): CrlEntry | undefined {
  return crl.entries.get(serial)?.find((entry) => entry.certificateIssuer === certificateIssuer);
}

/** Revocation status of `certificate` (issued by `issuer`) from the CRLs at hand. */
export function checkCrlStatus(
  certificate: ParsedCertificate,
  issuer: ParsedCertificate,
  crls: ParsedCrl[],
  context: CrlContext,
): CrlVerdict {
  const serial = serialKey(certificate.certificate.serialNumber);
  const points = certificateDistributionPoints(certificate);
  const scoped = crls
    .filter((crl) => !crl.unknownCriticalExtension && fresh(crl, context.time))
    .map((crl) => ({ crl, reasons: coveredReasons(crl, certificate, points) }))
    .filter(({ reasons }) => reasons !== 0);
  const verified = scoped.filter(({ crl }) => context.crlSignatureValid(crl, issuer));
  const complete = verified.filter(({ crl }) => crl.baseCrlNumber === undefined);
  const deltas = verified.filter(({ crl }) => crl.baseCrlNumber !== undefined).map(({ crl }) => crl);
  let covered = 0;
  for (const { crl: base, reasons } of complete) {
    const newestDelta = deltas
      .filter(
        (delta) =>
          delta.issuer === base.issuer &&
          delta.scopeKey === base.scopeKey &&
          base.crlNumber !== undefined &&
          delta.baseCrlNumber !== undefined &&
          delta.baseCrlNumber <= base.crlNumber &&
          delta.crlNumber !== undefined &&
          delta.crlNumber > base.crlNumber,
      )
      .sort((a, b) => Number((b.crlNumber ?? 0n) - (a.crlNumber ?? 0n)))[0];
    const entry =
      (newestDelta ? entryFor(newestDelta, serial, certificate.issuer) : undefined) ??
      entryFor(base, serial, certificate.issuer);
    if (entry?.uninterpretable)
      return { status: 'unknown', reason: 'its CRL entry carries an extension we cannot interpret' };
    if (entry && entry.reason !== REMOVE_FROM_CRL)
      return { status: 'revoked', reason: 'it is listed on a CRL of its issuer', evidence: newestDelta ?? base };
    covered |= reasons;
  }
  if ((covered & ALL_REASONS) === ALL_REASONS) {
    const newest = complete.map(({ crl }) => crl).sort((a, b) => b.thisUpdate.getTime() - a.thisUpdate.getTime())[0];
    return { status: 'good', reason: 'not listed on the current CRLs', ...(newest ? { evidence: newest } : {}) };
  }
  if (scoped.length > verified.length)
    return { status: 'unknown', reason: 'no CRL for it carries a valid signature by an authorised CRL signer' };
  return { status: 'unknown', reason: 'no current CRLs covering every revocation reason are at hand' };
}
