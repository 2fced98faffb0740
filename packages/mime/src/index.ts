// Mail as text: header blocks, line endings, RFC 5322 dates, RFC 2047 words, and the gateway's own generated mail.
export { addressLikeTokens, listedAddresses, listedMailboxes } from './address-list.ts';
export {
  type DeliveryStatus,
  type DeliveryStatusRecipient,
  deliveryStatusBody,
  headerFieldValue,
  oneLine,
} from './delivery-status.ts';
export { displayText } from './display-text.ts';
export {
  type Bilingual,
  type BilingualNoticeInput,
  type BilingualTemplates,
  bilingualNoticeMail,
  bilingualText,
  type DeliveryReportInput,
  deliveryReportMail,
  type GeneratedMail,
  type GeneratedMailHeaders,
  generatedMail,
  loadBilingualTemplates,
  renderTemplate,
} from './generated-mail.ts';
export {
  findHeaderEnd,
  findHeaderEndWithin,
  HeaderBlockError,
  type HeaderBudget,
  HeaderBudgetError,
  type HeaderEnd,
  type HeaderField,
  headerBudget,
  headerBytes,
  headerValue,
  IDENTIFYING_FIELDS,
  identifyingFields,
  MAX_HEADER_BYTES,
  MAX_IDENTIFYING_HEADER_BYTES,
  MAX_RETURNED_HEADER_BYTES,
  MAX_WALK_HEADER_LINES,
  messageIdOf,
  parseHeaderFields,
  readHeaderBlock,
  type SplitMessage,
  splitHeaderBlock,
  splitHeaderBlockWithin,
  splitMessage,
  withoutFields,
} from './header-block.ts';
export { bareLfToCrlf, canonicalLineEnds, crlfLines, toCrlf } from './line-endings.ts';
export { decodeEncodedWords, encodeWords } from './rfc2047.ts';
export { rfc5322Date } from './rfc5322-date.ts';
