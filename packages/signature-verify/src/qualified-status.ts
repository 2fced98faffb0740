// Whether a signer's certificate is qualified is the trusted list's answer (ETSI TS 119 612, EN 319 102-1 §5.2.3 and
// TS 119 615): the QC statements in a certificate are only its issuer's claim. This is the input hook the trusted
// list package plugs in; without it the verifier never claims a qualified signature and says why.
import type { CertificateFacts } from './certificate-facts.ts';

export type QualifiedStatus =
  /** Qualified certificate for electronic signatures, key in a QSCD, confirmed at the time asked: QES. */
  | { status: 'qualified-qscd'; source: string; reason: string }
  /** Qualified certificate, but no QSCD confirmed: an advanced signature based on a qualified certificate. */
  | { status: 'qualified'; source: string; reason: string }
  | { status: 'not-qualified'; source: string; reason: string }
  /** Nothing to decide by (no trusted list, or the list does not name the issuer). */
  | { status: 'unknown'; source: string; reason: string };

/**
 * The trusted list's answer for `signer` (chain: signer first, trust anchor last) at `atTime`: the validation time,
 * or the time a valid signature timestamp proves when the signature is judged then (never the claimed signing time).
 */
export type QualifiedStatusSource = (
  signer: CertificateFacts,
  atTime: Date,
  chain: readonly CertificateFacts[],
) => QualifiedStatus | Promise<QualifiedStatus>;

/** The default until a trusted list is configured: never qualified, with the reason in the report. */
export const withoutTrustedList: QualifiedStatusSource = (signer) => {
  const claims = signer.qcStatements;
  if (claims.compliance) {
    return {
      status: 'unknown',
      source: 'certificate',
      reason: `The certificate claims to be qualified (QcCompliance${claims.sscd ? ', QcSSCD' : ''}), but no trusted list is configured to confirm its issuer, so a qualified signature is not claimed.`,
    };
  }
  return { status: 'not-qualified', source: 'certificate', reason: 'The certificate does not claim to be qualified.' };
};
