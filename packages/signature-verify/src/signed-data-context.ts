// The context verifySignedData works in (clock, chain options, chain cache, trusted-list hook, algorithm
// constraints), made from the options messages and PDFs share.
import { DEFAULT_ALGORITHM_CONSTRAINTS } from './algorithms.ts';
import { withoutTrustedList } from './qualified-status.ts';
import type { ChainCache } from './signer-chain.ts';
import type { VerifyMessageOptions } from './verify-message.ts';
import type { SignedDataContext } from './verify-signed-data.ts';

/** What verifySignedData needs, from the options shared by messages and PDFs. */
export function signedDataContextOf(
  options: Omit<VerifyMessageOptions, 'limits' | 'signingTimeToleranceMs'>,
  time: Date,
  chainCache: ChainCache,
): SignedDataContext {
  return {
    time,
    chain: {
      trustAnchors: options.trustAnchors,
      revocation: options.revocation ?? 'require',
      ...(options.fetcher ? { fetcher: options.fetcher } : {}),
      ...(options.crls ? { crls: options.crls } : {}),
      ...(options.ocspResponses ? { ocspResponses: options.ocspResponses } : {}),
      ...(options.intermediates ? { intermediates: options.intermediates } : {}),
      ...(options.chainCacheMs !== undefined ? { cacheMs: options.chainCacheMs } : {}),
    },
    chainCache,
    qualifiedStatus: options.qualifiedStatus ?? withoutTrustedList,
    algorithmConstraints: {
      ...DEFAULT_ALGORITHM_CONSTRAINTS,
      ...(options.minRsaBits ? { minRsaBits: options.minRsaBits } : {}),
    },
  };
}
