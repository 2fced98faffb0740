// What the encrypt stage has to do with an inbound message (internet → agency), read from its top-level header fields
// and the first BODY_HEAD_BYTES of its body: open it (S/MIME, PGP/MIME, inline PGP), harvest the OpenPGP keys it may
// offer, harvest the certificate of the S/MIME signature it may carry. One predicate, two readers: encrypt decides with
// it what to do, ingest whether the message needs the encrypt stage at all (issue 12: plain mail, most of what
// arrives, skips that queue hop). Free of CMS and OpenPGP libraries on purpose: ingest loads only this file
// (`@smgw/crypto/inbound-crypto-work`).
import { type HeaderField, headerValue } from '@smgw/mime';
import { isSignedContentType } from '../smime/mime-entity.ts';

/** How much of the body is looked at to tell inline PGP from plain text. */
export const BODY_HEAD_BYTES = 64 * 1024;

export type EncryptedForm = 'smime' | 'pgp';

/**
 * Whether a message with these top-level fields is encrypted, and how: S/MIME enveloped-data or
 * authEnveloped-data, or multipart/encrypted (PGP/MIME, RFC 1847/3156). Signed-only S/MIME is not encrypted.
 */
export function encryptedFormOf(fields: readonly HeaderField[]): EncryptedForm | undefined {
  const contentType = (headerValue(fields, 'content-type') ?? '').toLowerCase();
  if (/^multipart\/encrypted\s*(;|$)/.test(contentType)) return 'pgp';
  if (/^application\/(x-)?pkcs7-mime\s*(;|$)/.test(contentType)) {
    const smimeType = /;\s*smime-type\s*=\s*"?([a-z-]+)"?/.exec(contentType)?.[1];
    if (smimeType === 'enveloped-data' || smimeType === 'authenveloped-data') return 'smime';
  }
  return undefined;
}

const INLINE_PGP_MESSAGE = /^\s*-----BEGIN PGP MESSAGE-----\r?\n[\s\S]*\n-----END PGP MESSAGE-----\s*$/;

/** A text/plain body in 7bit or 8bit (a missing Content-Type is text/plain): the only kind read as inline PGP. */
function mayBeInlinePgp(fields: readonly HeaderField[]): boolean {
  const contentType = (headerValue(fields, 'content-type') ?? 'text/plain').toLowerCase();
  const encoding = (headerValue(fields, 'content-transfer-encoding') ?? '7bit').toLowerCase();
  return /^text\/plain\s*(;|$)/.test(contentType) && ['7bit', '8bit'].includes(encoding);
}

/** Whether `bodyHead` (at most BODY_HEAD_BYTES of the body) was cut: the body may go on after it. */
function isCut(bodyHead: Buffer): boolean {
  return bodyHead.length >= BODY_HEAD_BYTES;
}

/**
 * Inline PGP: a text/plain body (7bit/8bit) that is one armored PGP MESSAGE block and nothing else, seen whole in
 * the first 64 KiB. Text around a block would be lost by decrypting (only the block is decrypted), so a body that
 * quotes a block among other text is left as it is.
 */
export function isInlinePgp(fields: readonly HeaderField[], bodyHead: Buffer): boolean {
  if (!mayBeInlinePgp(fields) || isCut(bodyHead)) return false;
  return INLINE_PGP_MESSAGE.test(bodyHead.toString('latin1'));
}

/** Whether a message with these top-level fields can offer an OpenPGP key at all: an Autocrypt header or a part. */
export function mayOfferPgpKeys(fields: readonly HeaderField[]): boolean {
  if (fields.some((f) => f.key === 'autocrypt')) return true;
  const contentType = (headerValue(fields, 'content-type') ?? '').toLowerCase();
  return contentType.startsWith('multipart/') || contentType.startsWith('application/pgp-keys');
}

/** Whether a message with these top-level fields can be signed S/MIME at all (before reading it whole). */
export function maySignSmime(fields: readonly HeaderField[]): boolean {
  return isSignedContentType(headerValue(fields, 'content-type') ?? '');
}

/** What the encrypt stage has to do with an inbound message. */
export interface InboundCryptoWork {
  /** Encrypted, and how (inline PGP counts as `pgp`): encrypt opens it when it holds the agency's key. */
  encryptedForm: EncryptedForm | undefined;
  /** The encryption is inline PGP (a text/plain body that is one armored block). */
  inlinePgp: boolean;
  /** It may offer OpenPGP keys (multipart, application/pgp-keys, Autocrypt): encrypt harvests them. */
  mayOfferPgpKeys: boolean;
  /** It may carry an S/MIME signature (multipart/signed, pkcs7-mime signed-data): encrypt harvests the certificate. */
  maySignSmime: boolean;
}

/** The work for encrypt in a message with these top-level fields and the first BODY_HEAD_BYTES of its body. */
export function inboundCryptoWork(fields: readonly HeaderField[], bodyHead: Buffer): InboundCryptoWork {
  const inlinePgp = isInlinePgp(fields, bodyHead); // never with an encrypted form's Content-Type (not text/plain)
  return {
    encryptedForm: encryptedFormOf(fields) ?? (inlinePgp ? 'pgp' : undefined),
    inlinePgp,
    mayOfferPgpKeys: mayOfferPgpKeys(fields),
    maySignSmime: maySignSmime(fields),
  };
}

/**
 * Why a message with this work needs the encrypt stage, as names for the trace (never content); empty when encrypt
 * would only find it plain and pass it on unchanged.
 */
export function encryptStageReasons(work: InboundCryptoWork): string[] {
  const reasons: string[] = [];
  if (work.inlinePgp) reasons.push('inline-pgp');
  else if (work.encryptedForm) reasons.push(`${work.encryptedForm}-encrypted`);
  if (work.mayOfferPgpKeys) reasons.push('may-offer-pgp-keys');
  if (work.maySignSmime) reasons.push('may-sign-smime');
  return reasons;
}
