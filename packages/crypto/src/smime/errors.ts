// Typed errors of the S/MIME layer. Codes are stable: they end up in logs and in the message trace.
export type SmimeErrorCode =
  | 'SMIME_NO_MATCHING_RECIPIENT'
  | 'SMIME_UNSUPPORTED_ALGORITHM'
  | 'SMIME_DECRYPT_FAILED'
  | 'SMIME_MALFORMED'
  | 'SMIME_NOT_ENVELOPED'
  | 'SMIME_NOT_SIGNED'
  | 'SMIME_TOO_LARGE'
  | 'SMIME_INVALID_RECIPIENT'
  | 'SMIME_INVALID_HEADER'
  | 'SMIME_INVALID_KEY'
  | 'SMIME_PKCS12_FAILED';

export class SmimeError extends Error {
  readonly code: SmimeErrorCode;

  constructor(code: SmimeErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SmimeError';
    this.code = code;
  }
}
