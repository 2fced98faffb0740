// The ETSI EN 319 102-1 result of one signature: a main indication (§5.1.3), a sub-indication (Table 5), and the
// order in which results are judged worst-first. Indeterminate is never turned into failed, failed never into passed:
// every place that combines results goes through worseOf/worstOf.

import type { SignatureLevel } from './verify-signed-data.ts';

export type Indication = 'TOTAL_PASSED' | 'INDETERMINATE' | 'TOTAL_FAILED';

/** EN 319 102-1 §5.1.3 Table 5 sub-indications, for TOTAL_FAILED (a list, so a report builder can be checked). */
export const FAILED_SUB_INDICATIONS = [
  'FORMAT_FAILURE',
  'HASH_FAILURE',
  'SIG_CRYPTO_FAILURE',
  'REVOKED',
  'EXPIRED',
  'NOT_YET_VALID',
] as const;
export type FailedSubIndication = (typeof FAILED_SUB_INDICATIONS)[number];

/** EN 319 102-1 §5.1.3 Table 5 sub-indications, for INDETERMINATE (those this package can produce). */
export const INDETERMINATE_SUB_INDICATIONS = [
  'SIG_CONSTRAINTS_FAILURE',
  'CHAIN_CONSTRAINTS_FAILURE',
  'CERTIFICATE_CHAIN_GENERAL_FAILURE',
  'CRYPTO_CONSTRAINTS_FAILURE',
  'NOT_YET_VALID',
  'NO_SIGNING_CERTIFICATE_FOUND',
  'NO_CERTIFICATE_CHAIN_FOUND',
  'REVOKED_CA_NO_POE',
  'OUT_OF_BOUNDS_NO_POE',
  'TRY_LATER',
  'SIGNED_DATA_NOT_FOUND',
] as const;
export type IndeterminateSubIndication = (typeof INDETERMINATE_SUB_INDICATIONS)[number];

export type SubIndication = FailedSubIndication | IndeterminateSubIndication;

export type Judgement =
  | { indication: 'TOTAL_PASSED' }
  | { indication: 'INDETERMINATE'; subIndication: IndeterminateSubIndication }
  | { indication: 'TOTAL_FAILED'; subIndication: FailedSubIndication };

const RANK: Readonly<Record<Indication, number>> = { TOTAL_PASSED: 0, INDETERMINATE: 1, TOTAL_FAILED: 2 };

/** The worse of two judgements; on a tie the first stays (its reason was found first). */
export function worseOf<T extends { indication: Indication }>(a: T, b: T): T {
  return RANK[b.indication] > RANK[a.indication] ? b : a;
}

/** The worst of several judgements, first found on a tie; undefined for none. */
export function worstOf<T extends { indication: Indication }>(items: readonly T[]): T | undefined {
  return items.reduce<T | undefined>((worst, item) => (worst === undefined ? item : worseOf(worst, item)), undefined);
}

export const PASSED: Judgement = { indication: 'TOTAL_PASSED' };

export function indeterminate(subIndication: IndeterminateSubIndication): Judgement {
  return { indication: 'INDETERMINATE', subIndication };
}

export function failed(subIndication: FailedSubIndication): Judgement {
  return { indication: 'TOTAL_FAILED', subIndication };
}

const LEVEL_RANK: Readonly<Record<SignatureLevel, number>> = { basic: 0, AdES: 1, QES: 2 };

export interface Overall {
  indication: Indication | 'NONE';
  subIndication?: SubIndication;
  /** The lowest level among the signatures, when all passed. */
  level?: SignatureLevel;
  signatureCount: number;
}

/** The worst result of several signatures; when all passed, the lowest level of those `hasLevel` accepts. */
export function overallOf<T extends { indication: Indication; subIndication?: SubIndication; level?: SignatureLevel }>(
  signatures: readonly T[],
  hasLevel: (signature: T) => boolean = () => true,
): Overall {
  const worst = worstOf(signatures);
  if (!worst) return { indication: 'NONE', signatureCount: 0 };
  if (worst.indication !== 'TOTAL_PASSED') {
    return {
      indication: worst.indication,
      ...(worst.subIndication ? { subIndication: worst.subIndication } : {}),
      signatureCount: signatures.length,
    };
  }
  const levels = signatures.filter(hasLevel).map((s) => s.level ?? 'basic');
  if (levels.length === 0) levels.push('basic');
  const level = levels.reduce((low, l) => (LEVEL_RANK[l] < LEVEL_RANK[low] ? l : low), 'QES' as SignatureLevel);
  return { indication: 'TOTAL_PASSED', level, signatureCount: signatures.length };
}
