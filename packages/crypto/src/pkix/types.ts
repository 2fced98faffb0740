// Inputs and the structured result of certificate path validation (RFC 5280 §6.1).

/** Stable codes of a refused path; `reason` carries the plain sentence. */
export type PathValidationCode =
  | 'INVALID_INPUT'
  | 'MALFORMED_CERTIFICATE'
  | 'EXPIRED'
  | 'NOT_YET_VALID'
  | 'UNTRUSTED_ROOT'
  | 'NO_PATH'
  | 'BAD_SIGNATURE'
  | 'NOT_A_CA'
  | 'PATH_LENGTH_EXCEEDED'
  | 'NAME_CONSTRAINTS_VIOLATED'
  | 'POLICY_REQUIRED'
  | 'UNKNOWN_CRITICAL_EXTENSION'
  | 'KEY_USAGE'
  | 'EXTENDED_KEY_USAGE'
  | 'ADDRESS_NOT_IN_CERTIFICATE'
  | 'WEAK_KEY'
  | 'WEAK_SIGNATURE'
  | 'UNSUPPORTED_ALGORITHM'
  | 'REVOKED'
  | 'REVOCATION_UNKNOWN';

/** What the end-entity certificate is going to be used for. */
export type CertificatePurpose = 'emailProtection' | 'any' | 'serverAuth' | 'clientAuth';

/** `require`: no usable revocation answer → REVOCATION_UNKNOWN (fail closed). `prefer`: check what is given,
 * accept "unknown". `off`: no revocation checking. */
export type RevocationMode = 'require' | 'prefer' | 'off';

export type KeyUsageName =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign'
  | 'encipherOnly'
  | 'decipherOnly';

export interface TrustAnchorInput {
  /** DER of the anchor certificate. Only its subject name and key are used unless `enforceConstraints`. */
  certificate: Uint8Array;
  /** RFC 5937: process the anchor's own basicConstraints, name constraints, policies and EKU like a path certificate. */
  enforceConstraints?: boolean;
  /** Refuse the path when the anchor certificate itself is outside its validity period. */
  checkValidity?: boolean;
}

export interface AlgorithmPolicy {
  /** Smallest RSA (and DSA) modulus accepted; default 2048. */
  minRsaBits: number;
  /** Accept SHA-1 signatures (only for old test vectors); default false. MD2/MD5 are never accepted. */
  allowSha1: boolean;
}

export interface PathValidationInput {
  /** DER of the end-entity certificate. */
  endEntity: Uint8Array;
  /** DER of candidate intermediates, in any order; extra certificates are fine. */
  intermediates?: Uint8Array[];
  trustAnchors: TrustAnchorInput[];
  /** The validation time, from the injected clock. */
  time: Date;
  purpose: CertificatePurpose;
  /** When set, this address must be an rfc822Name in subjectAltName, or (only when the certificate has no
   * rfc822Name at all) an emailAddress attribute of the subject. */
  emailAddress?: string;
  /** When set and the leaf has keyUsage, at least one of these bits must be asserted. */
  leafKeyUsage?: KeyUsageName[];
  /** RFC 5280 §6.1.1 (c); default [anyPolicy]. */
  initialPolicySet?: string[];
  initialExplicitPolicy?: boolean;
  initialPolicyMappingInhibit?: boolean;
  initialAnyPolicyInhibit?: boolean;
  /** DER CRLs already fetched. */
  crls?: Uint8Array[];
  /** DER OCSPResponse (RFC 6960) messages already fetched. */
  ocspResponses?: Uint8Array[];
  /** Default `require`. */
  revocation?: RevocationMode;
  algorithmPolicy?: Partial<AlgorithmPolicy>;
}

/** The CRL or OCSP response a certificate's revocation status was taken from. */
export interface RevocationEvidence {
  kind: 'crl' | 'ocsp';
  /** SHA-256 of the DER given (the CRL, or the whole OCSPResponse), so a caller can tell where it came from. */
  sha256: string;
  /** CRL thisUpdate, or the OCSP SingleResponse's thisUpdate: the time the status is from. */
  thisUpdate: Date;
  nextUpdate?: Date;
  /** `given` in the input (at hand, embedded in a signature); `fetched` by validateCertificatePathFetchingRevocation. */
  origin: 'given' | 'fetched';
}

export interface ValidPolicy {
  policy: string;
}

export interface PathValidationSuccess {
  ok: true;
  /** DER of the certificates from the end entity to the trust anchor (anchor last). */
  path: Uint8Array[];
  /** The authorities-constrained ∩ user-constrained policy set; empty when no policy applies. */
  policies: string[];
  /** How revocation of each non-anchor certificate was established, end entity first. */
  revocation: Array<'good-crl' | 'good-ocsp' | 'unknown' | 'not-checked'>;
  /** Beside `revocation`: the CRL or OCSP response each good status rests on. */
  revocationEvidence?: Array<RevocationEvidence | undefined>;
}

export interface PathValidationFailure {
  ok: false;
  code: PathValidationCode;
  reason: string;
  /** 0 = end entity, counting towards the anchor, when the failure belongs to one certificate. */
  certificateIndex?: number;
  /** For REVOKED: the CRL or OCSP response that says so. */
  revocationEvidence?: RevocationEvidence;
}

export type PathValidationResult = PathValidationSuccess | PathValidationFailure;

export const ANY_POLICY = '2.5.29.32.0';
