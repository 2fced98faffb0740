// Changes of the tables services keep in memory (agency_addresses, agency_domains, agencies, trust_anchors) are
// announced on one channel by migration 017's triggers; a service listens once for all of its caches.
import { type ChangeListener, listenForChanges, type Pool } from '@smgw/db';
import { cachedAgencySigning } from './agencies.ts';
import { cachedTrustAnchorCertificates } from './trust-anchors.ts';

export const KEY_DIRECTORY_CHANNEL = 'smgw_key_directory';

/** The process's listener for key directory changes; `onLost` is told each time it stops hearing them. */
export function listenForKeyDirectoryChanges(options: {
  url: string;
  applicationName: string;
  onLost: (err: Error) => void;
}): ChangeListener {
  return listenForChanges({
    url: options.url,
    channel: KEY_DIRECTORY_CHANNEL,
    applicationName: options.applicationName,
    onError: options.onLost,
  });
}

/** What encrypt reads of the key directory for every message, kept in memory while changes are heard. */
export interface KeyDirectoryCache {
  trustAnchorCertificates(): Promise<Buffer[]>;
  agencySigningFor(address: string): Promise<{ agencyId: string; signOutbound: boolean } | undefined>;
}

export function cachedKeyDirectory(
  pool: Pool,
  changes: Pick<ChangeListener, 'listening' | 'generation'>,
): KeyDirectoryCache {
  return {
    trustAnchorCertificates: cachedTrustAnchorCertificates(pool, changes),
    agencySigningFor: cachedAgencySigning(pool, changes),
  };
}
