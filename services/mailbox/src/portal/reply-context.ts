// What a reply needs of the message it answers, read from its header block: the sender (From, never Reply-To or
// Cc: whoever sent the original may set those to anyone), its Message-ID and References for threading, and its
// subject for "Re: …". Only the header block is read, at most its first MIME_LIMITS.maxHeaderBytes; nothing is trusted
// beyond its shape. The quote of the original (readQuoteSource) parses the whole message: it runs in the message view
// workers (message-view-workers.ts), under their time limit.
import { decodeEncodedWords, headerValue, listedAddresses, splitHeaderBlock } from '@smgw/mime';
import { type ParsedMail, simpleParser } from 'mailparser';
import { MIME_LIMITS, readMimeLeaves } from '../mime-structure.ts';
import { wellFormedMessageId } from './compose.ts';

export interface ReplyContext {
  /** The addresses of the original's From field, in order ('' for a name without an address). */
  fromAddresses: string[];
  /** The original's Message-ID with angle brackets, if well formed. */
  messageId: string | undefined;
  /** The original's References, well-formed ids only, oldest first. */
  references: string[];
  /** The original's subject, decoded, one line ('' when it has none). */
  subject: string;
}

export function readReplyContext(raw: Buffer): ReplyContext {
  // Bounded as the message page and mailparser read it: a header block of the message's 30 MB (a Subject folded a
  // million times, a References of five million ids) took 1.5–7 s of the portal's one event loop, on the reply form
  // and again on its sending.
  const { fields } = splitHeaderBlock(raw.subarray(0, MIME_LIMITS.maxHeaderBytes));
  const from = headerValue(fields, 'from');
  const messageId = /<[^<>\s]+>/.exec(headerValue(fields, 'message-id') ?? '')?.[0];
  const references = (headerValue(fields, 'references') ?? '').match(/<[^<>\s]+>/g) ?? [];
  const subject = decodeEncodedWords(Buffer.from(headerValue(fields, 'subject') ?? '', 'latin1').toString('utf8'))
    // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
    .replace(/[\x00-\x1f\x7f]+/g, ' ')
    .trim();
  return {
    fromAddresses: from === undefined ? [] : listedAddresses(from),
    messageId: messageId && wellFormedMessageId(messageId) ? messageId : undefined,
    references: references.filter(wellFormedMessageId),
    subject,
  };
}

/** "Re: <subject>", without stacking prefixes (Re:, RE:, AW:, Aw:, WG: not repeated). */
export function replySubject(subject: string): string {
  // One `\s*` between the prefixes, not two in a row: those read a run of blanks in every split (quadratic: a subject
  // of 100,000 blanks took 5 s of the reply page).
  const bare = subject.replace(/^(?:\s*(?:re|aw|antw)\s*(?:\[\d+\]\s*)?:)+\s*/i, '').trim();
  return `Re: ${bare}`;
}

/** At most this much of the original's text is quoted in a reply (the rest is cut with a line "[…]"). */
export const MAX_QUOTED_CHARS = 20_000;

/** What a reply quotes of its original: its text (already cut), its sender's address and its date ('' if none). */
export interface QuoteSource {
  text: string;
  from: string;
  /** YYYY-MM-DD. */
  date: string;
}

/**
 * The original's plain text (mailparser: the text part, or the text of its HTML), cut at MAX_QUOTED_CHARS, with its
 * sender and date. Parsed under the message page's limits (MIME_LIMITS, depth walked first); a message beyond them,
 * or one mailparser cannot read, is undefined: the reply form opens all the same, with nothing quoted.
 */
export async function readQuoteSource(raw: Buffer): Promise<QuoteSource | undefined> {
  let parsed: ParsedMail;
  try {
    await readMimeLeaves(raw, MIME_LIMITS);
    parsed = await simpleParser(raw, {
      maxHeadSize: MIME_LIMITS.maxHeaderBytes,
      maxChildNodes: MIME_LIMITS.maxParts,
      skipImageLinks: true,
    });
  } catch {
    return undefined;
  }
  const text = (parsed.text ?? '').replace(/\r\n?/g, '\n').trimEnd();
  return {
    text: text.length > MAX_QUOTED_CHARS ? `${text.slice(0, MAX_QUOTED_CHARS)}\n[…]` : text,
    from: parsed.from?.value[0]?.address ?? '',
    date: parsed.date && !Number.isNaN(parsed.date.getTime()) ? parsed.date.toISOString().slice(0, 10) : '',
  };
}

/**
 * The quote as the reply form's text starts: each line prefixed with "> ", after a line such as "On <date>, <from>
 * wrote:" ('' when there is nothing to quote). Nothing is rendered as HTML: this goes into a textarea.
 */
export function formatQuote(source: QuoteSource | undefined, intro: (from: string, date: string) => string): string {
  if (!source) return '';
  const quoted = source.text.split('\n').map((line) => (line === '' ? '>' : `> ${line}`));
  return `\n\n${intro(source.from, source.date)}\n${quoted.join('\n')}\n`;
}

/** readQuoteSource and formatQuote in one, on the calling thread (tests; the portal runs the first in a worker). */
export async function quoteOriginal(raw: Buffer, intro: (from: string, date: string) => string): Promise<string> {
  return formatQuote(await readQuoteSource(raw), intro);
}
