// Envelope encryption of secrets at rest under SMGW_MASTER_KEY (agency private keys, mailbox data keys), and the
// files that hold one sealed key each (written atomically).
export { keyFromMasterKey } from './derived-key.ts';
export { SecretError, type SecretErrorCode } from './errors.ts';
export {
  deleteKeyFile,
  KEY_FILE_TEMPORARIES,
  keyFileLeftovers,
  readKeyFile,
  removeKeyFileLeftovers,
  writeKeyFile,
} from './key-file.ts';
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
