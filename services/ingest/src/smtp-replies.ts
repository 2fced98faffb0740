// Every SMTP refusal the ingest service gives, once: the stable code (logs, trace, README) and the exact reply.
// The reply text starts with its enhanced status code (RFC 3463); smtp-server-patches.ts makes smtp-server send it
// as written instead of adding its own generic one.

export const REPLIES = {
  RELAY_DENIED: { status: 550, text: '5.7.1 Relaying denied' },
  RECIPIENT_INVALID: { status: 550, text: '5.1.3 Recipient address not accepted' },
  // Longer than RFC 5321 §4.5.3.1 lets an address be (@smgw/config addressTooLong): its own words for it, "501 Path too
  // long", with the enhanced code of a bad address (5.1.3 recipient, 5.1.7 sender, RFC 3463).
  RECIPIENT_TOO_LONG: { status: 501, text: '5.1.3 Path too long' },
  RECIPIENT_UNKNOWN: { status: 550, text: '5.1.1 Recipient address rejected: unknown user' },
  RECIPIENT_UNVERIFIED: { status: 450, text: '4.1.1 Recipient address not verified now, try again later' },
  UNKNOWN_RECIPIENT_LIMIT: { status: 450, text: '4.7.1 Too many unknown recipients, try again later' },
  SENDER_NOT_ALLOWED: { status: 550, text: '5.7.1 Sender address not allowed' },
  FROM_NOT_ALLOWED: { status: 550, text: '5.7.1 From or Sender address not allowed for this sender' },
  HEADER_TOO_LARGE: { status: 552, text: '5.3.4 Header block too large' },
  SENDER_INVALID: { status: 550, text: '5.1.7 Sender address not accepted' },
  SENDER_TOO_LONG: { status: 501, text: '5.1.7 Path too long' },
  AGENCY_SENDER_FROM_OUTSIDE: { status: 550, text: '5.7.1 Agency sender addresses are not accepted from the internet' },
  NUL_BYTE: { status: 550, text: '5.6.0 NUL byte in message' },
  DMARC_REJECT: { status: 550, text: '5.7.1 Message rejected by the DMARC policy of its From domain' },
  DMARC_TEMPERROR: { status: 451, text: '4.4.3 Temporary DNS failure while checking DMARC, please retry' },
  AUTH_REQUIRED: { status: 530, text: '5.7.0 Authentication required' },
  // The session's account was disabled, removed or given a new password: the same words as AUTH_REQUIRED, so a
  // client learns nothing about the account.
  ACCOUNT_DISABLED: { status: 530, text: '5.7.0 Authentication required' },
  AUTH_FAILED: { status: 535, text: '5.7.8 Authentication credentials invalid' },
  AUTH_UNAVAILABLE: { status: 454, text: '4.7.0 Temporary authentication failure, try again later' },
  AUTH_RATE_LIMITED: { status: 454, text: '4.7.0 Too many failed authentication attempts, try again later' },
  TOO_MANY_RECIPIENTS: { status: 452, text: '4.5.3 Too many recipients' },
  // Hourly limits of a submission sender (rate-limits.ts countSubmission); {max} is the sender's limit. 451 at MAIL
  // FROM: the whole message is to be tried again later. 452 at RCPT (RFC 5321 §4.5.3.1.10): the client sends the
  // message to the recipients taken so far and tries the others later. 4.7.1: refused by policy, not for lack of room.
  SUBMISSION_MESSAGE_LIMIT: {
    status: 451,
    text: '4.7.1 Message limit reached: at most {max} messages an hour, try again later',
  },
  SUBMISSION_RECIPIENT_LIMIT: {
    status: 452,
    text: '4.7.1 Recipient limit reached: at most {max} recipients an hour, try again later',
  },
  // A message whose bytes do not fit in what is left of its sender's hour (countSubmissionBytes): at the end of DATA
  // (its real size), or at MAIL FROM when its SIZE= already does not. Nothing of it is kept, the client keeps it.
  // 4yz: the hour's budget comes back, and a clerk's message must wait, not bounce (a 552 would). 451, not 452: both
  // may follow MAIL and the end of DATA (RFC 5321 §4.3.2) and every client defers the whole message on either, but
  // 452 "insufficient system storage" (and RFC 1870 §6.1's reading of it for SIZE=) with 4.3.1 "mail system full"
  // (RFC 3463) would send the agency's postmaster looking for a full disk at the gateway. 4.7.1, as for the other
  // hourly limits: refused by policy, for this sender. The reply names the limit so the agency can tell which.
  SUBMISSION_BYTE_LIMIT: {
    status: 451,
    text: '4.7.1 Byte limit reached: at most {max} message bytes an hour, try again later',
  },
  TOO_MANY_CONNECTIONS: { status: 421, text: '4.7.0 Too many connections from your address' },
  COMMAND_RATE_EXCEEDED: { status: 421, text: '4.7.0 Rate limit exceeded, try again later' },
  // STARTTLS over SMGW_SMTP_TLS_SESSIONS_PER_MINUTE (or the submission port's, per client or per network): answered
  // before the handshake, which would cost a signature of the server key. 421 and closed, not RFC 3207's 454 (which
  // Postfix sends): both ports take mail in the clear, and an opportunistic client (Postfix at `may`, curl's
  // "try") goes on without TLS after a 454, so a client over the limit would hand over its messages in the clear; after
  // a 421 it tries again later, with TLS.
  TLS_SESSION_RATE_EXCEEDED: {
    status: 421,
    text: '4.7.0 Too many new TLS sessions from your address, try again later',
  },
  // Session limits (smtp-listener.ts): a command line or a message that does not arrive in time, too many commands
  // that deliver nothing, or too many refused ones. The session is closed after them.
  COMMAND_TIMEOUT: { status: 421, text: '4.4.2 Error: timeout exceeded' },
  DATA_TIMEOUT: { status: 421, text: '4.4.2 Error: timeout exceeded while receiving the message' },
  JUNK_COMMAND_LIMIT: { status: 421, text: '4.7.0 Error: too many commands without mail, closing' },
  ERROR_LIMIT: { status: 421, text: '4.7.0 Error: too many errors, closing' },
  REDIS_UNAVAILABLE: { status: 421, text: '4.3.0 Temporary failure, please retry' },
  BARE_LINE_ENDING: { status: 550, text: '5.6.0 Bare CR or LF in message (SMTP smuggling protection)' },
  MESSAGE_TOO_BIG: { status: 552, text: '5.3.4 Message too big' },
  TEMPORARY_FAILURE: { status: 451, text: '4.3.0 Temporary failure, please retry' },
} as const satisfies Record<string, { status: number; text: string }>;

export type ReplyCode = keyof typeof REPLIES;

/** An error smtp-server turns into a reply: `responseCode` and `message` are what the client sees. */
export class SmtpReplyError extends Error {
  readonly code: ReplyCode;
  readonly responseCode: number;
  constructor(code: ReplyCode, options?: { cause?: unknown; max?: number }) {
    super(REPLIES[code].text.replace('{max}', String(options?.max)), options);
    this.name = 'SmtpReplyError';
    this.code = code;
    this.responseCode = REPLIES[code].status;
  }
}

export function refusal(code: ReplyCode, cause?: unknown): SmtpReplyError {
  return new SmtpReplyError(code, cause === undefined ? undefined : { cause });
}

/** The hourly limits of a submission sender: refusals that name the limit. */
export type LimitReplyCode = 'SUBMISSION_MESSAGE_LIMIT' | 'SUBMISSION_RECIPIENT_LIMIT' | 'SUBMISSION_BYTE_LIMIT';

/** The refusal of a sender over an hourly limit, naming the limit. */
export function limitRefusal(code: LimitReplyCode, max: number) {
  return new SmtpReplyError(code, { max });
}

/** The 250 reply text after DATA: the gateway message id, so the sender can quote it to an operator. */
export function queuedReply(messageId: string): string {
  return `2.0.0 Ok: queued as ${messageId}`;
}
