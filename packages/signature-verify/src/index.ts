// Signature verification with a verification report: S/MIME and CAdES signatures in a message, judged by
// ETSI EN 319 102-1, layer by layer, with coverage, identity and the X-SMGW-Signature summary.
export {
  type AlgorithmConstraints,
  DEFAULT_ALGORITHM_CONSTRAINTS,
  DIGEST_ALGORITHMS,
  SIGNATURE_ALGORITHMS,
} from './algorithms.ts';
export { type CertificateFacts, certificateFacts, type QcStatements } from './certificate-facts.ts';
export { type EmbeddedRevocation, embeddedRevocationOf } from './embedded-revocation.ts';
export { checkIdentity, checkSigningTimes, type IdentityCheck, sameAddress, type TimeFinding } from './identity.ts';
export {
  FAILED_SUB_INDICATIONS,
  type FailedSubIndication,
  INDETERMINATE_SUB_INDICATIONS,
  type IndeterminateSubIndication,
  type Indication,
  type Judgement,
  type Overall,
  overallOf,
  type SubIndication,
  worseOf,
  worstOf,
} from './indication.ts';
export {
  childPath,
  DEFAULT_WALK_LIMITS,
  decodedBody,
  type Entity,
  entityOf,
  type Layer,
  type LayerKind,
  PKCS7_MIME_TYPES,
  type ReportedSignature,
  type UnwrappedDocument,
  type VisiblePart,
  type WalkLimits,
} from './mime-walk.ts';
export {
  DEFAULT_PDF_LIMITS,
  type DocumentSecurityStore,
  PdfFormatError,
  type PdfLimits,
  type PdfSignatureDictionary,
  type PdfStructure,
  PdfWorkLimitError,
  readDocumentSecurityStore,
  readPdfStructure,
  WORK_ALLOWANCE,
  WorkBudget,
} from './pdf-structure.ts';
export { type QualifiedStatus, type QualifiedStatusSource, withoutTrustedList } from './qualified-status.ts';
export { type Sentence, SUB_INDICATION_SENTENCES, sentenceFor } from './sentences.ts';
export { verifySignedDataWithTimestamps } from './signature-timestamp.ts';
export {
  DEFAULT_SIGNED_CONTENT_LIMITS,
  type SignedContent,
  type SignedContentLimits,
  type SignedContentProblem,
  type SignedContentProblemKind,
  type SignedContents,
  signedContentsOf,
} from './signed-contents.ts';
export { type ParsedSignedData, parseContentInfo, SignatureFormatError } from './signed-data.ts';
export { mayCarrySignedData, type SignedDataHint, signedDataHint } from './signed-data-hint.ts';
export type {
  ChainCertificate,
  ChainOptions,
  ChainReport,
  RevocationData as ChainRevocationData,
} from './signer-chain.ts';
export { SUMMARY_HEADER_NAME, type SummaryFindings, summaryHeader } from './summary-header.ts';
export { type TimestampVerification, verifyTimestampToken } from './timestamp-token.ts';
export {
  type Coverage,
  createMessageVerifier,
  type MessageVerifier,
  type VerificationResult,
  type VerifyMessageOptions,
  verifyMessage,
} from './verify-message.ts';
export {
  createPdfVerifier,
  DOCUMENT_SENTENCES,
  type PdfSignature,
  type PdfVerification,
  type PdfVerifier,
  pdfSummaryHeader,
  type VerifyPdfOptions,
  verifyPdf,
  verifyPdfInContext,
} from './verify-pdf.ts';
export {
  type SignatureLevel,
  type SignatureVerification,
  type SignedDataContext,
  type SignedDataVerification,
  verifySignedData,
} from './verify-signed-data.ts';
