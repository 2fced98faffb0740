// Failures that no retry can change, because they come from the message's own header: the same bytes fail the same
// way every time. The whole message's (a header block over 1 MiB: no copy can be made, the portal's neither), or one
// encryptor's (an outer header value it refuses: only the copies in its form are given up, encrypt-outbound.ts).
import { PgpError, SmimeError } from '@smgw/crypto';
import type { NotEncryptableCode } from '@smgw/envelope';
import { HeaderBlockError } from '@smgw/mime';

export interface NotEncryptable {
  code: NotEncryptableCode;
  reason: string;
}

/**
 * Why the message can never be encrypted, when `err` says it is the message's own header: a header block over
 * 1 MiB, or an outer header value the encryptor refuses (CR/LF, non-ASCII where it cannot stand).
 */
export function notEncryptableBy(err: unknown): NotEncryptable | undefined {
  if (err instanceof HeaderBlockError) return { code: 'ENCRYPT_HEADER_TOO_LARGE', reason: err.message };
  return headerRefusedBy(err);
}

/** The encryptor of one form refused an outer header value: its copies can never be made, other forms' still can. */
export function headerRefusedBy(err: unknown): NotEncryptable | undefined {
  if (
    (err instanceof PgpError && err.code === 'PGP_INVALID_HEADER') ||
    (err instanceof SmimeError && err.code === 'SMIME_INVALID_HEADER')
  ) {
    return { code: 'ENCRYPT_HEADER_INVALID', reason: `${err.code}: ${err.message}` };
  }
  return undefined;
}
