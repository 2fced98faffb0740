// The signature entries a result lists, and so the report (PDF and XML) shows: at most `maxReportedSignatures`, in
// the order found. Those beyond stand as one entry carrying the worst of their results, so the overall result and
// X-SMGW-Signature still reflect the worst signature. That entry is never TOTAL_PASSED: what the report does not
// show, it cannot confirm.
import { worstOf } from './indication.ts';
import type { Layer, ReportedSignature, UnwrappedDocument } from './mime-walk.ts';
import { sentenceFor } from './sentences.ts';

export interface ListedSignatures {
  signatures: ReportedSignature[];
  /** The layers, their signatureIds naming listed entries only (those left out: the one entry standing for them). */
  layers: Layer[];
  unwrapped: UnwrappedDocument[];
}

export function listSignatures(walk: ListedSignatures, max: number): ListedSignatures {
  if (walk.signatures.length <= max) return walk;
  const listed = walk.signatures.slice(0, max);
  const leftOut = walk.signatures.slice(max);
  const worst = worstOf(leftOut) as ReportedSignature;
  // Failed stays failed and indeterminate indeterminate; passed becomes indeterminate, never the other way.
  const passed = worst.indication === 'TOTAL_PASSED';
  const indication = passed ? 'INDETERMINATE' : worst.indication;
  const subIndication = passed ? 'SIG_CONSTRAINTS_FAILURE' : worst.subIndication;
  const worstText = `${worst.indication}${worst.subIndication ? ` ${worst.subIndication}` : ''}`;
  const standIn: ReportedSignature = {
    id: `S${max + 1}`,
    layerId: worst.layerId,
    path: worst.path,
    format: 'further signature entries, not listed',
    indication,
    ...(subIndication ? { subIndication } : {}),
    sentence: sentenceFor(indication, subIndication),
    reasons: [
      `${leftOut.length} further signature entries beyond the report's limit of ${max} are not listed; the worst of them: ${worstText} (${worst.format} at ${worst.path})`,
    ],
    signerIndex: -1,
    algorithms: {},
    signingCertificateBound: false,
  };
  const listedIds = new Set(listed.map((s) => s.id));
  const idsShown = (ids: readonly string[]) => [...new Set(ids.map((id) => (listedIds.has(id) ? id : standIn.id)))];
  return {
    signatures: [...listed, standIn],
    layers: walk.layers.map((l) => ({ ...l, signatureIds: idsShown(l.signatureIds) })),
    unwrapped: walk.unwrapped.map((u) => ({ ...u, signatureIds: idsShown(u.signatureIds) })),
  };
}
