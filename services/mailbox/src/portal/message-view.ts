// One message as the message page shows it: header fields as text (message-headers.ts), the plain-text body as it
// is, the HTML body sanitised (message-html.ts) and the attachments listed by index, the index being how the
// download route finds one again in the same bytes. Parsed with mailparser under limits (parts, header size; the
// nesting depth is checked by a structure walk first, which mailparser does not bound).
import { splitHeaderBlock } from '@smgw/mime';
import { type Attachment, simpleParser } from 'mailparser';
import { type DisplayHeaders, displayHeaders } from '../message-headers.ts';
import { MIME_LIMITS, type MimeLimits, readMimeLeaves } from '../mime-structure.ts';
import { safeFilename } from './attachment-names.ts';
import { HtmlTooComplexError, type InlineImage, type SafeHtml, sanitizeMessageHtml } from './message-html.ts';

/** A longer plain-text body is cut here (the whole message stays downloadable from the archive). */
export const MAX_TEXT_CHARS = 2 * 1024 * 1024;
/** HTML longer than this is not rendered; the page offers the text or the download instead. */
export const MAX_HTML_CHARS = 4 * 1024 * 1024;

export interface MessageAttachment {
  /** Position in the message's attachment list: `/nachricht/:id/anhang/:index`. */
  index: number;
  /** Safe to show and to save (attachment-names.ts). */
  filename: string;
  contentType: string;
  size: number;
}

export interface MessageView extends DisplayHeaders {
  text: string | undefined;
  textTruncated: boolean;
  /** Undefined when the message has no HTML part or it is too long to render. */
  html: SafeHtml | undefined;
  /** Longer than MAX_HTML_CHARS, or nested deeper than the sanitiser reads in linear time (message-html.ts). */
  htmlTooLong: boolean;
  /** Not sanitised within the view's time limit (message-view-workers.ts): the page shows the text instead. */
  htmlTimedOut: boolean;
  attachments: MessageAttachment[];
}

async function parse(raw: Buffer, limits: MimeLimits) {
  await readMimeLeaves(raw, limits);
  return simpleParser(raw, {
    maxHeadSize: limits.maxHeaderBytes,
    maxChildNodes: limits.maxParts,
    keepCidLinks: true,
    skipHtmlToText: true,
    skipTextToHtml: true,
    skipTextLinks: true,
    skipImageLinks: true,
  });
}

const CONTENT_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;

function listAttachment(attachment: Attachment, index: number): MessageAttachment {
  const type = attachment.contentType.toLowerCase();
  return {
    index,
    filename: safeFilename(attachment.filename, `anhang-${index + 1}`),
    contentType: CONTENT_TYPE.test(type) ? type : 'application/octet-stream',
    size: attachment.size ?? attachment.content.length,
  };
}

/** A parsed message whose HTML body is still to be sanitised (sanitiseHtmlOf): the slow half of a view. */
export interface ParsedMessageView {
  /** The view without its HTML (html undefined; htmlTooLong already set when the source is too long). */
  view: MessageView;
  /** The HTML body to sanitise, or undefined when there is none to render. */
  pendingHtml: PendingHtml | undefined;
}

export interface PendingHtml {
  source: string;
  inlineImages: InlineImage[];
}

/** Throws MimeStructureError for a message beyond the limits, and mailparser's errors for one it cannot read. */
export async function readMessageView(raw: Buffer, limits: MimeLimits = MIME_LIMITS): Promise<MessageView> {
  const { view, pendingHtml } = await parseMessageView(raw, limits);
  return pendingHtml ? withSanitisedHtml(view, pendingHtml) : view;
}

/** The first half of readMessageView: mailparser, header fields, text, attachments; the HTML not yet sanitised. */
export async function parseMessageView(raw: Buffer, limits: MimeLimits = MIME_LIMITS): Promise<ParsedMessageView> {
  const parsed = await parse(raw, limits);
  const headers = displayHeaders(splitHeaderBlock(raw.subarray(0, limits.maxHeaderBytes)).fields);
  const text = typeof parsed.text === 'string' ? parsed.text : undefined;
  const htmlSource = typeof parsed.html === 'string' ? parsed.html : undefined;
  const htmlTooLong = htmlSource !== undefined && htmlSource.length > MAX_HTML_CHARS;
  return {
    view: {
      ...headers,
      text: text === undefined ? undefined : text.slice(0, MAX_TEXT_CHARS),
      textTruncated: text !== undefined && text.length > MAX_TEXT_CHARS,
      html: undefined,
      htmlTooLong,
      htmlTimedOut: false,
      attachments: parsed.attachments.map(listAttachment),
    },
    pendingHtml:
      htmlSource === undefined || htmlTooLong
        ? undefined
        : { source: htmlSource, inlineImages: inlineImagesOf(parsed.attachments) },
  };
}

/** The second half: the view with its HTML sanitised, or marked too long when it is too complex to render. */
export function withSanitisedHtml(view: MessageView, pending: PendingHtml): MessageView {
  try {
    return { ...view, html: sanitizeMessageHtml(pending.source, pending.inlineImages) };
  } catch (err) {
    if (err instanceof HtmlTooComplexError) return { ...view, htmlTooLong: true };
    throw err;
  }
}

function inlineImagesOf(attachments: readonly Attachment[]): InlineImage[] {
  return attachments
    .filter((attachment) => attachment.cid)
    .map((attachment) => ({
      cid: attachment.cid ?? '',
      contentType: attachment.contentType,
      content: attachment.content,
    }));
}

export interface AttachmentContent extends MessageAttachment {
  content: Buffer;
}

/** The attachment at `index` (as listed by readMessageView), or undefined when there is none. */
export async function readMessageAttachment(
  raw: Buffer,
  index: number,
  limits: MimeLimits = MIME_LIMITS,
): Promise<AttachmentContent | undefined> {
  if (!Number.isSafeInteger(index) || index < 0) return undefined;
  const parsed = await parse(raw, limits);
  const attachment = parsed.attachments[index];
  return attachment ? { ...listAttachment(attachment, index), content: attachment.content } : undefined;
}

/**
 * The document the sandboxed frame shows: our own head (charset, base styles; the frame's CSP allows inline style)
 * and the sanitised body. Nothing of the message reaches the head.
 */
export function frameDocument(html: SafeHtml, lang: string): string {
  const language = /^[a-z]{2}$/.test(lang) ? lang : 'de';
  return [
    '<!doctype html>',
    `<html lang="${language}"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">`,
    '<style>body{margin:0;padding:1rem;font-family:system-ui,sans-serif;line-height:1.5;color:#1a1a1a;',
    'background:#fff;overflow-wrap:anywhere}img{max-width:100%;height:auto}table{max-width:100%}</style>',
    `</head><body>${html.html}</body></html>`,
  ].join('');
}
