// S/MIME (RFC 8551) CMS encryption and decryption: streaming EnvelopedData/AuthEnvelopedData out, opening in.
export {
  type DecryptEnvelopedOptions,
  type DecryptionKey,
  decryptEnveloped,
  type OpenedEnvelope,
  openEnveloped,
} from './decrypt-enveloped.ts';
export {
  type ContentCipher,
  type EncryptEnvelopedOptions,
  type EncryptRecipient,
  encryptEnveloped,
  type SmimeHeaders,
} from './encrypt-enveloped.ts';
export { SmimeError, type SmimeErrorCode } from './errors.ts';
export { isSignedContentType } from './mime-entity.ts';
export { type Pkcs12Contents, parsePkcs12 } from './pkcs12.ts';
export type { KeyTransport } from './recipient-info.ts';
export { createDetachedSignature, type SigningKey, signMultipart } from './sign-detached.ts';
export { holdsNoiseBytes } from './unauthenticated-content.ts';
export {
  type SignatureCode,
  type SignedMessageVerification,
  type SmimeCapabilities,
  verifySignedMessage,
} from './verify-signed.ts';
