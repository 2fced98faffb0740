// The settings deliver reads (SPEC.md "Settings"); main loads them once, `--print-config` shows them.
import { blobStoreSettings, type ConfigOf, settings } from '@smgw/config';

export const deliverSpec = {
  databaseUrl: settings.databaseUrl,
  databaseSchema: settings.databaseSchema,
  ...blobStoreSettings,
  amqpUrl: settings.amqpUrl,
  internalDomains: settings.internalDomains,
  internalRelay: settings.internalRelay,
  // Not for submission here: the agencies' own networks, which no MX of a domain outside may lead to.
  submissionNetworks: settings.submissionNetworks,
  smarthost: settings.smarthost,
  hostname: settings.hostname,
  logLevel: settings.logLevel,
  deliverRetryLadder: settings.deliverRetryLadder,
  prefetch: settings.prefetch,
  healthPort: settings.healthPort,
  healthBind: settings.healthBind,
  deliverConnectionsPerDestination: settings.deliverConnectionsPerDestination,
  deliverTimeoutMs: settings.deliverTimeoutMs,
  deliverRequireTlsOutside: settings.deliverRequireTlsOutside,
  maxMessageBytes: settings.maxMessageBytes,
  dkimDomain: settings.dkimDomain,
  dkimSelector: settings.dkimSelector,
  dkimKey: settings.dkimKey,
};

export type DeliverConfig = ConfigOf<typeof deliverSpec>;
