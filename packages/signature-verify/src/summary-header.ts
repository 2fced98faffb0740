// The X-SMGW-Signature value (SPEC.md "What leaves the gateway"): the worst result, then the flags that apply.
// Every token comes from a closed set, so nothing from the message can reach the header.
import type { Overall } from './indication.ts';

export const SUMMARY_HEADER_NAME = 'X-SMGW-Signature';

export interface SummaryFindings {
  /**
   * The message holds parts that imitate the gateway's report (found by the service, which writes the report):
   * `imitation=present`, also after `NONE`. An extension of SPEC.md's flags, in their form: the worst result stays
   * the first token, and a reader that knows only SPEC's flags still reads it.
   */
  imitation?: boolean;
}

/**
 * `TOTAL_PASSED; level=QES; signatures=2`, `INDETERMINATE; sub=…`, `TOTAL_FAILED; sub=…` or `NONE`, then the flags:
 * `coverage=partial`, `identity=mismatch`, `imitation=present`.
 */
export function summaryHeader(
  result: {
    overall: Overall;
    coverage: { status: 'none' | 'full' | 'partial' };
    identity: { status: 'match' | 'mismatch' | 'not-applicable' };
  },
  findings: SummaryFindings = {},
): string {
  const { overall } = result;
  const imitation = findings.imitation ? ['imitation=present'] : [];
  if (overall.indication === 'NONE') return ['NONE', ...imitation].join('; ');
  const tokens: string[] = [overall.indication];
  if (overall.indication === 'TOTAL_PASSED') {
    tokens.push(`level=${overall.level ?? 'basic'}`, `signatures=${overall.signatureCount}`);
  } else if (overall.subIndication) {
    tokens.push(`sub=${overall.subIndication}`);
  }
  if (result.coverage.status === 'partial') tokens.push('coverage=partial');
  if (result.identity.status === 'mismatch') tokens.push('identity=mismatch');
  return [...tokens, ...imitation].join('; ');
}
