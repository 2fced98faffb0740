// Typed errors of sealSecret/openSecret. Codes:
//   SECRET_BAD_MASTER_KEY    the master key given is not 32 bytes
//   SECRET_MALFORMED         the bytes are not a sealed secret of a known version (too short, unknown version)
//   SECRET_WRONG_MASTER_KEY  sealed under another master key (the key id does not match)
//   SECRET_TAMPERED          an authentication tag does not match: the bytes were changed, or the aad differs

export type SecretErrorCode =
  | 'SECRET_BAD_MASTER_KEY'
  | 'SECRET_MALFORMED'
  | 'SECRET_WRONG_MASTER_KEY'
  | 'SECRET_TAMPERED';

export class SecretError extends Error {
  readonly code: SecretErrorCode;
  constructor(code: SecretErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SecretError';
    this.code = code;
  }
}
