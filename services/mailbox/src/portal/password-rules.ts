// What a portal password must be: at least 12 characters, and not guessable by zxcvbn's estimate (score ≥ 3 of 4)
// with the offline common-password and name dictionaries of @zxcvbn-ts/language-common. That is a list of common
// passwords shipped with the package, not a check against breached-password services: nothing leaves the machine.
import { MIN_PASSWORD_LENGTH } from '@smgw/submission-accounts';
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary } from '@zxcvbn-ts/language-common';

export const PORTAL_MIN_PASSWORD_LENGTH = Math.max(12, MIN_PASSWORD_LENGTH);
export const MIN_PASSWORD_SCORE = 3;
/** Longer inputs are refused before estimating (zxcvbn's cost grows with length; argon2 hashes any length). */
export const MAX_PASSWORD_LENGTH = 256;

let estimator: ZxcvbnFactory | undefined;
const strengthEstimator = () => {
  estimator ??= new ZxcvbnFactory({ dictionary: { ...dictionary }, graphs: adjacencyGraphs });
  return estimator;
};

export type PasswordProblem = 'short' | 'long' | 'weak' | 'mismatch';

/**
 * Why `password` may not be used, or undefined when it may. `userInputs` (the address, its parts) count as known
 * to an attacker, so a password made of them is weak.
 */
export function passwordProblem(
  password: string,
  repeated: string,
  userInputs: string[] = [],
): PasswordProblem | undefined {
  if ([...password].length < PORTAL_MIN_PASSWORD_LENGTH) return 'short';
  if (password.length > MAX_PASSWORD_LENGTH) return 'long';
  if (password !== repeated) return 'mismatch';
  const { score } = strengthEstimator().check(password, userInputs);
  return score >= MIN_PASSWORD_SCORE ? undefined : 'weak';
}
