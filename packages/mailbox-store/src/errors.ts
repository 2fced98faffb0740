export type MailboxStoreErrorCode =
  /** Not an address a mailbox can have (no @, no valid domain). */
  | 'MAILBOX_BAD_ADDRESS'
  /** Stored ciphertext that does not open under the mailbox's key (changed, or moved to another row). */
  | 'MAILBOX_CONTENT_TAMPERED';

export class MailboxStoreError extends Error {
  readonly code: MailboxStoreErrorCode;
  constructor(code: MailboxStoreErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MailboxStoreError';
    this.code = code;
  }
}
