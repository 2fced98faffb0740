// Typed errors of the clamd client. Every one means "not scanned": a caller must never treat it as clean.

export const CLAMD_ERROR_CODES = [
  /** No TCP connection to clamd (refused, no route, DNS). */
  'CLAMD_UNREACHABLE',
  /** The deadline (upload plus scan) passed before clamd answered; the socket was destroyed. */
  'CLAMD_TIMEOUT',
  /** The connection broke (reset, closed) before a complete reply arrived. */
  'CLAMD_CONNECTION_LOST',
  /** The stream is longer than maxBytes, or clamd answered "INSTREAM size limit exceeded" (StreamMaxLength). */
  'CLAMD_LIMIT_EXCEEDED',
  /** clamd answered with an ERROR line (it could not scan). */
  'CLAMD_SCAN_FAILED',
  /** clamd answered something that is neither OK, FOUND nor ERROR (garbage, truncated, too long). */
  'CLAMD_BAD_REPLY',
  /** Reading the stream to scan failed (the source, not clamd). */
  'CLAMD_SOURCE_FAILED',
  /** The client was called with options that cannot work (bad URL, non-positive deadline). */
  'CLAMD_INVALID_OPTIONS',
] as const;
export type ClamdErrorCode = (typeof CLAMD_ERROR_CODES)[number];

export class ClamdError extends Error {
  readonly code: ClamdErrorCode;
  /** clamd's reply, when there was one (never message content). */
  readonly reply: string | undefined;
  constructor(code: ClamdErrorCode, message: string, options?: ErrorOptions & { reply?: string }) {
    super(message, options);
    this.name = 'ClamdError';
    this.code = code;
    this.reply = options?.reply;
  }
}
