// One SMTP transaction for the recipients of one destination; every recipient gets its own answer.
import type { Readable } from 'node:stream';
import { domainToASCII } from 'node:url';
import { isPlainAddress } from '@smgw/config';
import type { SMTPEnvelopeDsn } from 'nodemailer';
import { type Classification, classifyAnswer, type DeliveryAnswer } from './bounce-classification.ts';
import { NOT_PLAIN_ADDRESS, type RefusedRecipient } from './route-recipients.ts';
import type { DestinationTransport } from './transports.ts';

export interface RecipientAnswer {
  recipient: string;
  classification: Classification;
  /** The SMTP reply for this recipient, if the next hop answered. */
  reply?: string | undefined;
  /** What went wrong when there was no reply. */
  error?: string | undefined;
  remoteMta: string;
}

export interface Transaction {
  /** The message, streamed as-is (nodemailer `raw`). */
  raw: Readable;
  /** Envelope sender; '' is the null sender. */
  from: string;
  to: string[];
  size: number;
  dsn?: SMTPEnvelopeDsn | undefined;
  signal?: AbortSignal | undefined;
}

interface SmtpError extends Error {
  code?: string;
  response?: string;
  responseCode?: number;
  recipient?: string;
  rejectedErrors?: SmtpError[];
  // mx-connect's own judgement of its errors
  category?: string;
  temporary?: boolean;
}

/** One spelling for matching nodemailer's accepted/rejected lists to ours (it converts IDN domains to punycode). */
function addressKey(address: string): string {
  const at = address.lastIndexOf('@');
  const domain = address.slice(at + 1).toLowerCase();
  return `${address.slice(0, at).toLowerCase()}@${domainToASCII(domain) || domain}`;
}

/** Longest remote reply (or error text) deliver keeps: nodemailer takes up to 1 MB of reply lines. */
export const MAX_REMOTE_TEXT = 512;

/**
 * A remote reply or error text as deliver keeps it: one line, cut to `max` characters, saying that it was cut and how
 * long it was: what is stored (deliveries.last_response, the trace), logged and quoted in a DSN. Never the whole of a
 * next hop's megabyte. A multi-line reply's lines are joined by a space (as Postfix shows them), and any other control
 * character becomes `?`: a stranger's MX may answer with a NUL byte, which PostgreSQL cannot store (the record of a
 * 250 would fail and the message go again), or with lines that read as trace events of their own where an operator
 * prints the trace.
 */
export function cutRemoteText(text: string, max = MAX_REMOTE_TEXT): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
  const line = text.replace(/[\r\n\t]+/g, ' ').replace(/[\x00-\x1f\x7f]/g, '?');
  if (line.length <= max) return line;
  return `${line.slice(0, max)}… [cut: ${line.length} characters]`;
}

/** A recipient refused without sending, permanently: not one plain address (isPlainAddress), unless `as` says else. */
export function refusedAnswer(recipient: string, as: RefusedRecipient = NOT_PLAIN_ADDRESS): RecipientAnswer {
  return { recipient, classification: classifyAnswer({ errorCode: as.errorCode }), error: as.error, remoteMta: '' };
}

/** A recipient not sent now because its destination has as many deliveries in progress as it may (deferred). */
export function busyAnswer(recipient: string): RecipientAnswer {
  return {
    recipient,
    classification: classifyAnswer({ errorCode: 'EDESTINATIONBUSY' }),
    error: 'the domain has as many deliveries in progress as one domain may have; not sent, tried again later',
    remoteMta: '',
  };
}

function isSmtpReply(text: unknown): text is string {
  return typeof text === 'string' && /^[2-5]\d\d/.test(text);
}

/** What an error says about the recipients it applies to. */
export function answerOfError(err: SmtpError): DeliveryAnswer {
  if (isSmtpReply(err.response)) return { reply: err.response };
  return {
    errorCode: err.code ?? err.name,
    // mx-connect marks DNS answers that will not change (no such domain); nodemailer's own errors say nothing.
    permanent: err.category === 'dns' && err.temporary !== true,
  };
}

/** What nodemailer sent RCPT TO for (or answered about) that deliver did not mean to send to; undefined if none. */
function envelopeMismatch(meant: string[], sent: string[]): string | undefined {
  const keys = new Set(meant.map(addressKey));
  const unexpected = sent.filter((r) => typeof r !== 'string' || !keys.has(addressKey(r)));
  if (unexpected.length === 0) return undefined;
  return `nodemailer sent the envelope to ${JSON.stringify(unexpected)}, not what was routed (${JSON.stringify(meant)})`;
}

/** Sends the message to the destination and tells, per recipient, what came of it. Never throws. */
export async function sendToDestination(transport: DestinationTransport, tx: Transaction): Promise<RecipientAnswer[]> {
  // Only plain addresses are handed to nodemailer (routeRecipient refused the others already; this is the last
  // place before RCPT TO, so it holds for any caller).
  const to = tx.to.filter(isPlainAddress);
  if (to.length === tx.to.length) return sendPlain(transport, tx);
  let sent: RecipientAnswer[] = [];
  if (to.length > 0) sent = await sendPlain(transport, { ...tx, to });
  else tx.raw.destroy();
  return tx.to.map((r) =>
    isPlainAddress(r) ? (sent.find((a) => a.recipient === r) as RecipientAnswer) : refusedAnswer(r),
  );
}

/** sendToDestination for recipients that are all plain addresses. */
async function sendPlain(transport: DestinationTransport, tx: Transaction): Promise<RecipientAnswer[]> {
  const answers = new Map<string, RecipientAnswer>();
  const answer = (recipient: string, a: DeliveryAnswer, error?: string) => {
    // Classified on the whole reply, kept cut (it is stored, logged and quoted).
    answers.set(addressKey(recipient), {
      recipient,
      classification: classifyAnswer(a),
      reply: a.reply === undefined ? undefined : cutRemoteText(a.reply),
      error: error === undefined ? undefined : cutRemoteText(error),
      remoteMta: transport.remoteMta,
    });
  };
  try {
    const info = await transport.transporter.sendMail({
      raw: tx.raw,
      envelope: { from: tx.from, to: tx.to, size: tx.size } as { from: string; to: string[] },
      ...(tx.dsn ? { dsn: tx.dsn } : {}),
      ...(tx.signal ? { signal: tx.signal } : {}),
    });
    // Defence in depth: nodemailer re-parses the envelope before RCPT TO. If what it sent is not the recipients we
    // routed, the attempt failed for all of them, whatever the next hop said: it would go the same way again.
    const mismatch = envelopeMismatch(tx.to, [
      ...((info.envelope?.to ?? []) as string[]),
      ...(info.accepted as string[]),
      ...(info.rejected as string[]),
    ]);
    if (mismatch) {
      for (const recipient of tx.to) answer(recipient, { errorCode: 'EENVELOPEMISMATCH' }, mismatch);
      return tx.to.map((r) => answers.get(addressKey(r)) as RecipientAnswer);
    }
    for (const recipient of info.accepted as string[]) answer(recipient, { reply: info.response });
    for (const err of (info.rejectedErrors ?? []) as SmtpError[]) {
      if (err.recipient) answer(err.recipient, answerOfError(err), err.message);
    }
  } catch (caught) {
    const err = caught as SmtpError;
    for (const rejected of err.rejectedErrors ?? []) {
      if (rejected.recipient) answer(rejected.recipient, answerOfError(rejected), rejected.message);
    }
    // Everyone without an answer of their own shares the error (connection refused, DATA refused, timeout…).
    for (const recipient of tx.to) {
      if (!answers.has(addressKey(recipient))) answer(recipient, answerOfError(err), err.message);
    }
  } finally {
    tx.raw.destroy();
  }
  return tx.to.map(
    (recipient) =>
      answers.get(addressKey(recipient)) ?? {
        recipient,
        classification: classifyAnswer({ errorCode: 'ENOANSWER' }),
        error: 'the next hop gave no answer for this recipient',
        remoteMta: transport.remoteMta,
      },
  );
}
