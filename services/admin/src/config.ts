import { settings } from '@smgw/config';

export const adminSettings = {
  databaseUrl: settings.databaseUrl,
  databaseSchema: settings.databaseSchema,
  /** Releasing a message from quarantine publishes it to its next stage. */
  amqpUrl: settings.amqpUrl,
  adminPort: settings.adminPort,
  adminBind: settings.adminBind,
  adminToken: settings.adminToken,
  logLevel: settings.logLevel,
  /** Agency private keys are stored sealed under it; optional: without it, key uploads answer 503. */
  masterKey: settings.masterKey,
  /** During a master key rotation: a mailbox data key may still be sealed under the previous key. */
  masterKeyPrevious: settings.masterKeyPrevious,
  /**
   * The key store: each portal mailbox's key file (a resend opens it, a delete destroys it). Optional: without it
   * (or the master key) resend-activation and delete of a mailbox answer 503.
   */
  keyStoreDir: settings.keyStoreDir,
  /** Revocation checking of recipient certificates added through the API. */
  revocationMode: settings.revocationMode,
  revocationAllow: settings.revocationAllow,
  /** Portal mailboxes: the quota shown, and the lifetime and PIN delay of a link an operator resends. */
  mailboxQuotaBytes: settings.mailboxQuotaBytes,
  activationLinkLifetime: settings.activationLinkLifetime,
  reactivationLinkLifetime: settings.reactivationLinkLifetime,
  pinDelay: settings.pinDelay,
};
