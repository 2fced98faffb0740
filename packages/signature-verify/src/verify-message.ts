// The verification of one message: walk its layers and verify every signature, then judge coverage, identity and
// signing times, and the worst result. A verifier made once keeps its chain cache between messages.
import type { RevocationFetcher, RevocationMode, TrustAnchorInput } from '@smgw/crypto';
import { checkIdentity, checkSigningTimes, type IdentityCheck, type TimeFinding } from './identity.ts';
import { type Indication, overallOf, type SubIndication } from './indication.ts';
import { listSignatures } from './listed-signatures.ts';
import {
  DEFAULT_WALK_LIMITS,
  type Layer,
  type ReportedSignature,
  type UnwrappedDocument,
  type VisiblePart,
  type WalkLimits,
  walkMessage,
} from './mime-walk.ts';
import type { QualifiedStatusSource } from './qualified-status.ts';
import { signedDataContextOf } from './signed-data-context.ts';
import type { ChainCache } from './signer-chain.ts';
import type { SignatureLevel } from './verify-signed-data.ts';

export interface VerifyMessageOptions {
  trustAnchors: TrustAnchorInput[];
  /** The injected clock: the validation time is read once per message. */
  now: () => Date;
  /** Default `require`: without a revocation answer a signature is INDETERMINATE (TRY_LATER when a source failed). */
  revocation?: RevocationMode;
  /** createRevocationFetcher({ now, allow }) of @smgw/crypto: its SSRF guard and SMGW_REVOCATION_ALLOW apply. */
  fetcher?: RevocationFetcher;
  crls?: Uint8Array[];
  ocspResponses?: Uint8Array[];
  intermediates?: Uint8Array[];
  /** The trusted list's answer; default: none, so never QES. */
  qualifiedStatus?: QualifiedStatusSource;
  limits?: Partial<WalkLimits>;
  /** Smallest RSA key accepted for a signer; default 2048. */
  minRsaBits?: number;
  /** Clock skew allowed before a signing time counts as after Date or in the future; default 5 minutes. */
  signingTimeToleranceMs?: number;
  /** How long a signer's chain result is reused; default 60 s, 0 = never. */
  chainCacheMs?: number;
}

export interface Coverage {
  /**
   * `none`: no signature; `full`: every part the reader sees is covered; `partial`: some are not, also when none is
   * (the only signature covers an earlier revision of a PDF, or is a .p7s without its document).
   */
  status: 'none' | 'full' | 'partial';
  covered: VisiblePart[];
  uncovered: VisiblePart[];
}

export interface VerificationResult {
  validationTime: Date;
  overall: {
    indication: Indication | 'NONE';
    subIndication?: SubIndication;
    /** The lowest level among the signatures, when all passed. */
    level?: SignatureLevel;
    signatureCount: number;
  };
  signatures: ReportedSignature[];
  layers: Layer[];
  parts: VisiblePart[];
  coverage: Coverage;
  identity: IdentityCheck;
  signingTimeFindings: TimeFinding[];
  /** Documents of .p7m attachments, unwrapped. */
  unwrapped: UnwrappedDocument[];
}

export interface MessageVerifier {
  verifyMessage(message: Buffer): Promise<VerificationResult>;
}

export function createMessageVerifier(options: VerifyMessageOptions): MessageVerifier {
  const chainCache: ChainCache = new Map();
  const limits = { ...DEFAULT_WALK_LIMITS, ...options.limits };
  return {
    async verifyMessage(message) {
      const time = options.now();
      const walk = await walkMessage(message, signedDataContextOf(options, time, chainCache), limits);
      // What the result states rests on the entries it lists (those beyond the limit stand as one, never passed).
      const listed = listSignatures(walk, limits.maxReportedSignatures);
      return {
        validationTime: time,
        // A document timestamp proves when, not who: it has no level of its own.
        overall: overallOf(listed.signatures, (s) => s.pdf?.kind !== 'document-timestamp'),
        signatures: listed.signatures,
        layers: listed.layers,
        parts: walk.parts,
        coverage: coverageOf(walk.parts, walk.signatures),
        // A signed PDF attached to the message says who signed the PDF, not who sent the message.
        identity: checkIdentity(
          walk.headerFields,
          listed.signatures.filter((s) => !s.pdf),
          walk.signedHeaders,
        ),
        signingTimeFindings: checkSigningTimes(
          walk.headerFields,
          listed.signatures,
          time,
          options.signingTimeToleranceMs ?? 5 * 60_000,
        ),
        unwrapped: listed.unwrapped,
      };
    },
  };
}

/** One message with a verifier of its own (no cache shared with other messages). */
export function verifyMessage(message: Buffer, options: VerifyMessageOptions): Promise<VerificationResult> {
  return createMessageVerifier(options).verifyMessage(message);
}

function coverageOf(parts: readonly VisiblePart[], signatures: readonly ReportedSignature[]): Coverage {
  const content = parts.filter((p) => p.role === 'content');
  const covered = content.filter((p) => p.coveredBy.length > 0);
  const uncovered = content.filter((p) => p.coveredBy.length === 0);
  // A signature that covers none of what is shown (only an earlier revision of a PDF) still makes the message look
  // signed: whatever it leaves uncovered is flagged, never passed over as `none`. Layers that carry their own verdict
  // (malformed, not examined; signerIndex -1) are no signature here: they are never TOTAL_PASSED.
  const signed = signatures.some((s) => s.signerIndex >= 0);
  const status = !signed ? 'none' : uncovered.length === 0 ? 'full' : 'partial';
  return { status, covered, uncovered };
}
