// The verify stage's work on one envelope: verify every signature of the message (packages/signature-verify), then
// pass on the report message (report-message.ts) for the recipients enabled for it, or the message with
// `X-SMGW-Signature: NONE` when nothing is signed. OCSP/CRL unreachable → retry a few times by the stage's ladder,
// then on as INDETERMINATE TRY_LATER: a message is never held for ever for a revocation answer. A message holding
// parts that imitate the report (report-imitations.ts) gets the report in any case, signed or not, with the warning
// and `imitation=present`: without ours, the sender's fake would be the only report the reader sees.
//
// In order: recipients (scan sends only enabled ones; one released from quarantine or switched off since goes on
// untouched), the message read, verified, the report built and stored, the outcome traced in one statement.
import { createHash } from 'node:crypto';
import type { BlobStore } from '@smgw/blob-store';
import type { Pool } from '@smgw/db';
import { advance, type Envelope, splitAtOptionalStage, withBlob, withVerdict } from '@smgw/envelope';
import { addressesVerifyingSignatures } from '@smgw/key-directory';
import { type HandlerContext, next, type Outcome, retry } from '@smgw/mq';
import type { Counter } from '@smgw/observability';
import { summaryHeader, type VerificationResult } from '@smgw/signature-verify';
import { recordEvents, type TraceEvent } from '@smgw/trace';
import { buildValidationReport, type LoadedTrustedList } from '@smgw/trusted-list';
import { findReportImitations } from './report-imitations.ts';
import { buildReportMessage, withSummaryField } from './report-message.ts';
import { reportInput } from './report-model.ts';
import { renderReportPdf } from './report-pdf.ts';

export interface VerifyDeps {
  pool: Pool;
  blobStore: BlobStore;
  /** Verifies a whole message; rejects only on an infrastructure error (the trust anchors unreadable, say). */
  verify: (message: Buffer) => Promise<VerificationResult>;
  trustedLists: readonly LoadedTrustedList[];
  hostname: string;
  /** Attempts at this stage while a revocation source is unreachable, before going on as TRY_LATER. */
  tryLaterAttempts: number;
  /** The stored report message may be this large (the message, plus PDF and XML in base64). */
  maxReportBytes: number;
  metrics: { results: Counter<'indication'> };
}

/** True when a signature could not be judged only because a revocation source did not answer. */
export function waitsForRevocation(result: VerificationResult): boolean {
  return result.signatures.some((s) => s.subIndication === 'TRY_LATER');
}

export async function verifyEnvelope(deps: VerifyDeps, envelope: Envelope, context: HandlerContext): Promise<Outcome> {
  const enabled = await addressesVerifyingSignatures(deps.pool, envelope.recipients);
  const groups = splitAtOptionalStage(envelope, (r) => enabled.has(r));
  const through = groups.find((g) => g.itinerary[0] === 'verify');
  const past = groups.filter((g) => g !== through);
  const skipped = past.map(
    (g): TraceEvent => ({
      stage: 'verify',
      event: 'message.verification-skipped',
      outcome: 'next',
      code: 'VERIFY_NOT_ENABLED',
      data: { recipients: g.recipients },
    }),
  );
  if (!through) {
    await recordEvents(deps.pool, envelope.id, skipped);
    context.log.info({ code: 'VERIFY_NOT_ENABLED' }, 'no recipient enabled for signature verification: passed on');
    return next(...past);
  }

  const original = await deps.blobStore.readAll(envelope.blob.ref);
  const result = await deps.verify(original);
  if (waitsForRevocation(result)) {
    if (context.attempt < deps.tryLaterAttempts && !context.lastAttempt) {
      context.log.warn({ code: 'VERIFY_TRY_LATER', attempt: context.attempt }, 'revocation source unreachable: retry');
      return retry('VERIFY_TRY_LATER', 'a revocation source (OCSP/CRL) did not answer');
    }
    context.log.warn({ code: 'VERIFY_TRY_LATER_GAVE_UP', attempt: context.attempt }, 'going on as INDETERMINATE');
  }

  const imitations = findReportImitations(original);
  const imitated = imitations.imitations.length > 0;
  const summary = summaryHeader(result, { imitation: imitated });
  const at = result.validationTime;
  const signed = result.overall.indication !== 'NONE';
  // Parts not examined for imitations may hold one: reported like a found one, said as such.
  const reported = signed || imitated || imitations.notExamined > 0;
  const message = reported
    ? buildReportMessage(original, {
        summary,
        pdf: await renderReportPdf(result, {
          messageId: envelope.id,
          hostname: deps.hostname,
          originalSha256: createHash('sha256').update(original).digest('hex'),
          summary,
          trustedLists: deps.trustedLists.map((l) => `${l.list.territory} (${l.list.sequenceNumber})`),
          imitations,
        }),
        // The ETSI report states signatures, at least one (its schema): none for an unsigned message.
        ...(signed ? { xml: buildValidationReport(reportInput(result, deps.trustedLists, imitations)) } : {}),
      })
    : withSummaryField(original, summary);
  const blob = await deps.blobStore.put(
    (async function* () {
      yield message;
    })(),
    { messageId: envelope.id, maxBytes: deps.maxReportBytes },
  );

  const indication = result.overall.indication;
  await recordEvents(deps.pool, envelope.id, [
    {
      stage: 'verify',
      event: signed ? 'message.signatures-verified' : 'message.not-signed',
      outcome: 'next',
      code: `VERIFY_${indication}`,
      data: {
        recipients: through.recipients,
        summary,
        signatures: result.signatures.map((s) => ({ id: s.id, indication: s.indication, sub: s.subIndication })),
        // Counts only: the names are the sender's text.
        ...(reported && !signed ? { reportAttached: true } : {}),
        ...(imitated ? { imitations: imitations.imitations.length } : {}),
        ...(imitations.notExamined > 0 ? { imitationsNotExamined: imitations.notExamined } : {}),
      },
      at,
    },
    ...skipped.map((e) => ({ ...e, at })),
  ]);
  deps.metrics.results.inc({ indication });
  if (imitated || imitations.notExamined > 0) {
    context.log.warn(
      {
        code: 'VERIFY_REPORT_IMITATION',
        imitations: imitations.imitations.length,
        notExamined: imitations.notExamined,
        signed,
      },
      'parts imitating the verification report, or not examined for them: the report says so',
    );
  }
  context.log.info({ code: `VERIFY_${indication}`, signatures: result.overall.signatureCount }, 'signatures verified');
  const verdict = { status: indication, at: at.toISOString(), detail: summary };
  return next(advance(withVerdict(withBlob(through, blob), 'signature', verdict), 'verify'), ...past);
}
