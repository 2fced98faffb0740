// Every reason a trusted list (or the EU list of lists) is refused, as a stable code. A refused list is never
// used: the caller gets this error, and in list-of-lists mode it is reported beside the lists that were used.

export type TrustedListErrorCode =
  | 'TL_TOO_LARGE' // more bytes than the configured limit
  | 'TL_NOT_XML' // not well-formed XML, not UTF-8, or empty
  | 'TL_DTD_REFUSED' // a DOCTYPE or ENTITY declaration (XXE, billion laughs): trusted lists never carry one
  | 'TL_NOT_A_TRUSTED_LIST' // the root is not TS 119 612's TrustServiceStatusList
  | 'TL_SIGNATURE_MISSING' // no enveloped ds:Signature under the root
  | 'TL_SIGNATURE_INVALID' // the signature or a digest does not verify with any configured signer certificate
  | 'TL_SIGNATURE_NOT_ENVELOPING_LIST' // the signature verifies but does not cover the whole list
  | 'TL_SIGNER_CERT_NOT_VALID' // the signer certificate that verifies is outside its validity at the clock
  | 'TL_NO_SIGNER_CERT' // nothing to check the signature against (LOTL names no certificate for the territory)
  | 'TL_TERRITORY_MISMATCH' // a national list's signed territory differs from the one the LOTL pointer names
  | 'TL_DUPLICATE_TERRITORY' // two files for one territory: the one with the lower sequence number is refused
  | 'TL_UNREADABLE'; // the file could not be read

export class TrustedListError extends Error {
  readonly code: TrustedListErrorCode;
  constructor(code: TrustedListErrorCode, message: string) {
    super(message);
    this.name = 'TrustedListError';
    this.code = code;
  }
}
