// What a portal user's message can be refused for: each a stable code (docs/LOG-CODES.md) the page turns into a
// sentence in the user's language.

export type PortalWriteErrorCode =
  | 'SUBJECT_MISSING'
  | 'SUBJECT_LINE_BREAK'
  | 'SUBJECT_TOO_LONG'
  | 'TEXT_TOO_LONG'
  | 'MESSAGE_EMPTY'
  | 'TOO_MANY_ATTACHMENTS'
  /** Text and attachments together exceed SMGW_PORTAL_MAX_UPLOAD_BYTES. */
  | 'UPLOAD_TOO_LARGE'
  /** The message and everything in the mailbox would exceed SMGW_MAILBOX_QUOTA_BYTES (the Sent copy counts). */
  | 'QUOTA_EXCEEDED'
  | 'NO_RECIPIENT'
  | 'TOO_MANY_RECIPIENTS'
  /** A new message to an address that is not an agency address marked reachable from the portal. */
  | 'RECIPIENT_NOT_REACHABLE'
  /** A reply to a message whose sender (From) is not an agency address. */
  | 'REPLY_SENDER_NOT_AGENCY'
  /** A reply to a message with no single From address. */
  | 'REPLY_NO_SENDER'
  /** A reply to a message that is not in this mailbox. */
  | 'REPLY_ORIGINAL_NOT_FOUND'
  /** The mailbox is gone, passive or locked. */
  | 'MAILBOX_NOT_ACTIVE'
  /** The form's message id names a message that is not this mailbox's own (draft-token.ts makes that impossible). */
  | 'DRAFT_TAKEN';

export class PortalWriteError extends Error {
  readonly code: PortalWriteErrorCode;
  constructor(code: PortalWriteErrorCode, message: string) {
    super(message);
    this.name = 'PortalWriteError';
    this.code = code;
  }
}
