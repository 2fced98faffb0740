// The message verifier with the gateway's trust anchors (trust_anchors, read per message so an operator's change
// applies at once) and revocation through @smgw/crypto's fetcher (its SSRF guard, SMGW_REVOCATION_ALLOW). The
// verifier, and with it its chain cache, is made again only when the anchors change.
import { createHash } from 'node:crypto';
import type { RevocationFetcher, RevocationMode } from '@smgw/crypto';
import type { Pool } from '@smgw/db';
import { trustAnchorCertificates } from '@smgw/key-directory';
import {
  createMessageVerifier,
  type MessageVerifier,
  type QualifiedStatusSource,
  type VerificationResult,
} from '@smgw/signature-verify';

export interface VerifierOptions {
  pool: Pool;
  fetcher: RevocationFetcher;
  revocation: RevocationMode;
  qualifiedStatus: QualifiedStatusSource;
  now: () => Date;
}

export function createVerify(options: VerifierOptions): (message: Buffer) => Promise<VerificationResult> {
  let current: { key: string; verifier: MessageVerifier } | undefined;
  return async (message) => {
    const anchors = await trustAnchorCertificates(options.pool);
    const key = anchors.map((der) => createHash('sha256').update(der).digest('hex')).join(',');
    if (current?.key !== key) {
      current = {
        key,
        verifier: createMessageVerifier({
          trustAnchors: anchors.map((certificate) => ({ certificate })),
          now: options.now,
          revocation: options.revocation,
          fetcher: options.fetcher,
          qualifiedStatus: options.qualifiedStatus,
        }),
      };
    }
    return current.verifier.verifyMessage(message);
  };
}
