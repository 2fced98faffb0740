// Certificate path validation (RFC 5280 §6.1) with revocation from CRLs and OCSP responses at hand.

export {
  type CertificateFacts,
  certificateFacts,
  emailAddressesOf,
  PemError,
  readCertificateUpload,
  readPemCertificates,
} from './certificate-upload.ts';
export {
  checkEncryptionKeyUsage,
  type EncryptionKeyUsage,
  encryptionKeyUsage,
  keyUsageAllows,
} from './encryption-key-usage.ts';
export {
  createRevocationFetcher,
  type FetchedRevocation,
  REVOCATION_FETCH_DEFAULTS,
  type RevocationFetcher,
  type RevocationFetcherOptions,
  validateCertificatePathFetchingRevocation,
} from './revocation-fetcher.ts';
export {
  NOTHING_ALLOWED,
  type RevocationAllow,
  RevocationHttpError,
  refusedAddress,
  requestRevocationData,
} from './revocation-http.ts';
export type {
  AlgorithmPolicy,
  CertificatePurpose,
  KeyUsageName,
  PathValidationCode,
  PathValidationFailure,
  PathValidationInput,
  PathValidationResult,
  PathValidationSuccess,
  RevocationEvidence,
  RevocationMode,
  TrustAnchorInput,
} from './types.ts';
export { validateCertificatePath } from './validate-certificate-path.ts';
export { createPathValidationCache, type PathValidationCache } from './validation-cache.ts';
