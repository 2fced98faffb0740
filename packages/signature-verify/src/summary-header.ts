// The X-SMGW-Signature value (SPEC.md "What leaves the gateway"): the worst result, then the flags that apply.
// Every token comes from a closed set, so nothing from the message can reach the header.
import type { Overall } from './indication.ts';

export const SUMMARY_HEADER_NAME = 'X-SMGW-Signature';

/** `TOTAL_PASSED; level=QES; signatures=2`, `INDETERMINATE; sub=…`, `TOTAL_FAILED; sub=…` or `NONE`. */
export function summaryHeader(result: {
  overall: Overall;
  coverage: { status: 'none' | 'full' | 'partial' };
  identity: { status: 'match' | 'mismatch' | 'not-applicable' };
}): string {
  const { overall } = result;
  if (overall.indication === 'NONE') return 'NONE';
  const tokens: string[] = [overall.indication];
  if (overall.indication === 'TOTAL_PASSED') {
    tokens.push(`level=${overall.level ?? 'basic'}`, `signatures=${overall.signatureCount}`);
  } else if (overall.subIndication) {
    tokens.push(`sub=${overall.subIndication}`);
  }
  if (result.coverage.status === 'partial') tokens.push('coverage=partial');
  if (result.identity.status === 'mismatch') tokens.push('identity=mismatch');
  return tokens.join('; ');
}
