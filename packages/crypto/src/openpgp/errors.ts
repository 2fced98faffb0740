// Typed errors of the OpenPGP module. Each carries a stable code so callers can map it to an outcome and a trace
// entry. The codes:
//   PGP_NO_RECIPIENTS           encryptPgpMime got no recipient key (never send without one: fail closed)
//   PGP_RECIPIENT_KEY_UNUSABLE  a recipient key is malformed, private, expired, revoked, weak or cannot encrypt
//   PGP_SIGNING_KEY_UNUSABLE    the signing key is malformed, not private, locked (wrong or missing passphrase) or
//                               cannot sign at the given time
//   PGP_PRIVATE_KEY_UNUSABLE    a decryption key is malformed, not private or locked (wrong or missing passphrase)
//   PGP_INVALID_HEADER          an outer header value for encryptPgpMime holds CR/LF or non-ASCII where not allowed
//   PGP_NOT_ENCRYPTED           the message holds neither PGP/MIME nor an inline PGP message block
//   PGP_MALFORMED               the PGP/MIME structure or the OpenPGP data is broken (garbage, truncated armor)
//   PGP_NO_MATCHING_KEY         the message is not encrypted to any of the given private keys
//   PGP_DECRYPT_FAILED          a matching key was given but decryption or the integrity check failed
//   PGP_UNSUPPORTED             valid OpenPGP we do not open: password-only (SKESK), unprotected (no MDC) data,
//                               unknown algorithms
//   PGP_TOO_LARGE               the decrypted message (inflated, if compressed) is larger than the caller allows
//   PGP_TOO_MANY_SESSION_KEYS   more session-key packets than decryptPgpMime tries (for our keys, or in all)
//   PGP_ENCRYPT_FAILED          encryption failed (input stream error, session key packet or internal error)

export type PgpErrorCode =
  | 'PGP_NO_RECIPIENTS'
  | 'PGP_RECIPIENT_KEY_UNUSABLE'
  | 'PGP_SIGNING_KEY_UNUSABLE'
  | 'PGP_PRIVATE_KEY_UNUSABLE'
  | 'PGP_INVALID_HEADER'
  | 'PGP_NOT_ENCRYPTED'
  | 'PGP_MALFORMED'
  | 'PGP_NO_MATCHING_KEY'
  | 'PGP_DECRYPT_FAILED'
  | 'PGP_UNSUPPORTED'
  | 'PGP_TOO_LARGE'
  | 'PGP_TOO_MANY_SESSION_KEYS'
  | 'PGP_ENCRYPT_FAILED';

/** Every failure of encryptPgpMime/decryptPgpMime; `code` is stable, `message` is for people and logs. */
export class PgpError extends Error {
  readonly code: PgpErrorCode;
  constructor(code: PgpErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PgpError';
    this.code = code;
  }
}

/** The key given to inspectPublicKey cannot be read as one OpenPGP public key at all. */
export class PgpKeyMalformedError extends Error {
  readonly code = 'PGP_KEY_MALFORMED';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PgpKeyMalformedError';
  }
}

/**
 * The key given to inspectPublicKey with `withinLimits` holds more user IDs, subkeys or self-signatures than
 * HARVESTED_KEY_LIMITS allow: refused before any signature is verified.
 */
export class PgpKeyBeyondLimitsError extends Error {
  readonly code = 'PGP_KEY_BEYOND_LIMITS';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PgpKeyBeyondLimitsError';
  }
}

/** The text of an unknown thrown value, for error messages (openpgp throws plain Errors). */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
