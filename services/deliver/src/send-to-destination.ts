// One SMTP transaction for the recipients of one destination; every recipient gets its own answer.
import type { Readable } from 'node:stream';
import { domainToASCII } from 'node:url';
import type { SMTPEnvelopeDsn } from 'nodemailer';
import { type Classification, classifyAnswer, type DeliveryAnswer } from './bounce-classification.ts';
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

/** Sends the message to the destination and tells, per recipient, what came of it. Never throws. */
export async function sendToDestination(transport: DestinationTransport, tx: Transaction): Promise<RecipientAnswer[]> {
  const answers = new Map<string, RecipientAnswer>();
  const answer = (recipient: string, a: DeliveryAnswer, error?: string) => {
    answers.set(addressKey(recipient), {
      recipient,
      classification: classifyAnswer(a),
      reply: a.reply,
      error,
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
