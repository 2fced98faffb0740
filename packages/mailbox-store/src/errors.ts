export type MailboxStoreErrorCode =
  /** Not an address a mailbox can have (no @, no valid domain). */
  | 'MAILBOX_BAD_ADDRESS'
  /** Stored ciphertext that does not open under the mailbox's key (changed, or moved to another row). */
  | 'MAILBOX_CONTENT_TAMPERED'
  /** The mailbox's key is not in the key store (the mailbox was deleted: its content is unreadable for good). */
  | 'MAILBOX_KEY_GONE'
  /** The key store folder cannot be read or written, or a key file does not open under the master key(s). */
  | 'MAILBOX_KEY_STORE_FAILED';

export class MailboxStoreError extends Error {
  readonly code: MailboxStoreErrorCode;
  constructor(code: MailboxStoreErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MailboxStoreError';
    this.code = code;
  }
}
