// Cryptography of the gateway: certificate path validation (pkix), S/MIME CMS (smime), OpenPGP (openpgp).

export {
  DECRYPTION_WALL_CLOCK_FACTOR,
  type DecryptedLayer,
  type DecryptionBudget,
  type DecryptionJob,
  DecryptionTimeLimitError,
  DecryptionWorkerError,
  type DecryptionWorkers,
  type DecryptionWorkersOptions,
  startDecryptionWorkers,
} from './decryption-workers/decryption-workers.ts';
export { checkWholeMessageEncrypted, type WholeMessageCheck } from './encrypted-check/whole-message-encrypted.ts';
export * from './inbound-work/inbound-crypto-work.ts';
export * from './openpgp/index.ts';
export { type GeneralNameValue, type ParsedCertificate, parseCertificate } from './pkix/certificate.ts';
export * from './pkix/index.ts';
export { publicKeyOf, type SignatureCheck, verifySignature, weakKeyReason } from './pkix/signature.ts';
// Building blocks for @smgw/signature-verify (CMS signature verification with a report): the strict BER reader,
// the certificate parser, node:crypto signature checks and the MIME helpers the S/MIME code already uses.
export * as ber from './smime/ber-reader.ts';
export * from './smime/index.ts';
export {
  type ContentType,
  contentTypeParameters,
  MAX_CONTENT_TYPE_PARAMETERS_LENGTH,
  multipartParts,
  parseContentType,
} from './smime/mime-entity.ts';
