// What a portal user brought for their address (/schluessel): certificates and OpenPGP keys with source `portal`. They
// are the user's own data and go with their mailbox, in the transaction that deletes it (@smgw/mailbox-store
// deleteMailbox), so no crash leaves the one without the other.
import type { PoolClient } from '@smgw/db';
import { deletePortalCertificates } from './certificates.ts';
import { deletePortalPgpKeys } from './pgp-keys.ts';

/** Fingerprints of what was deleted: for the audit trail and the log, never the keys themselves. */
export interface DeletedPortalKeys {
  certificates: string[];
  pgpKeys: string[];
}

/**
 * Deletes the certificates and OpenPGP keys uploaded on the portal for `address`, in the caller's transaction.
 * Those of other sources (an operator's, harvested, imported) stay.
 */
export async function deletePortalKeys(db: PoolClient, address: string): Promise<DeletedPortalKeys> {
  const certificates = await deletePortalCertificates(db, address);
  const pgpKeys = await deletePortalPgpKeys(db, address);
  return { certificates, pgpKeys };
}
