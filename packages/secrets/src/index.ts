// Envelope encryption of secrets at rest under SMGW_MASTER_KEY (agency private keys, mailbox data keys).
export { SecretError, type SecretErrorCode } from './errors.ts';
export {
  isSealedUnder,
  masterKeyId,
  openSecret,
  openSecretWithAny,
  resealSecret,
  SEALED_VERSION,
  type SealOptions,
  sealSecret,
} from './seal-secret.ts';
