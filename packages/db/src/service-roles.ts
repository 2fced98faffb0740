// What each service may do in the database, table by table: the one inventory migration 025 grants from (its VALUES
// list must match; packages/db/test/service-roles.test.ts compares the granted rights with this table both ways) and
// the deployment documents (deploy/README.md "Database roles"). Found by following each service's main.ts through
// every function it reaches, into the packages it uses, and reading every statement there (scripts/sql-inventory.ts
// lists them per service; packages/db/test/service-statements.test.ts prepares and explains each of them as a login of
// the service's role, so a grant missing for a path no other test takes fails there). Why a service holds what may
// look surprising:
// - UPDATE where a service only locks: SELECT ... FOR UPDATE / FOR NO KEY UPDATE needs UPDATE on the locked table
//   (scan's lockMessageRow on messages; the reaper's `for update skip locked` batches).
// - SELECT where a service only writes: an UPDATE or DELETE with a WHERE, and INSERT ... RETURNING, read the table
//   (scan's setRecipientState; the portal's agency registration form returns the row it inserted).
// Rights on objects PostgreSQL gives everyone are not listed: pg_notify (the key directory's triggers), advisory locks,
// pg_stat_activity (deliver's claim check, which needs all deliver replicas on one login role), LISTEN.

export type TablePrivilege = 'select' | 'insert' | 'update' | 'delete';

/** The gateway's services, each of which logs in as a role of its own. */
export const SERVICES = [
  'ingest',
  'scan',
  'encrypt',
  'signature-verify',
  'deliver',
  'mailbox',
  'admin',
  'lifecycle-reaper',
] as const;
export type ServiceName = (typeof SERVICES)[number];

/** The NOLOGIN role holding a service's rights (migration 025): smgw_ingest, smgw_signature_verify, ... */
export function serviceRole(service: ServiceName): string {
  return `smgw_${service.replaceAll('-', '_')}`;
}

/** Tables no service may touch: the migrating role's own. */
export const TABLES_OF_NO_SERVICE: readonly string[] = ['schema_migrations'];

/** Per service, per table, the privileges it holds; a table it is not granted is not listed. */
export const SERVICE_TABLE_PRIVILEGES: Record<ServiceName, Record<string, readonly TablePrivilege[]>> = {
  ingest: {
    agency_addresses: ['select'],
    blob_chunks: ['select', 'insert'],
    blobs: ['select', 'insert', 'update', 'delete'],
    message_events: ['insert'],
    message_recipients: ['select', 'insert'],
    messages: ['select', 'insert'],
    submission_accounts: ['select'],
  },
  scan: {
    agency_addresses: ['select'],
    blob_chunks: ['select', 'insert'],
    blobs: ['select', 'insert', 'update', 'delete'],
    message_events: ['select', 'insert'],
    message_recipients: ['select', 'insert', 'update'],
    messages: ['select', 'insert', 'update'],
    quarantine: ['select', 'insert'],
  },
  encrypt: {
    agencies: ['select'],
    agency_domains: ['select'],
    agency_keys: ['select'],
    blob_chunks: ['select', 'insert'],
    blobs: ['select', 'insert', 'update', 'delete'],
    certificates: ['select', 'insert', 'update'],
    message_events: ['select', 'insert'],
    message_recipients: ['select', 'insert'],
    messages: ['select', 'insert'],
    pgp_keys: ['select', 'insert', 'update'],
    trust_anchors: ['select'],
  },
  'signature-verify': {
    agency_addresses: ['select'],
    blob_chunks: ['select', 'insert'],
    blobs: ['select', 'insert', 'update', 'delete'],
    message_events: ['insert'],
    message_recipients: ['select', 'insert'],
    messages: ['select', 'insert'],
    trust_anchors: ['select'],
  },
  deliver: {
    blob_chunks: ['select', 'insert'],
    blobs: ['select', 'insert', 'update', 'delete'],
    deliver_instances: ['select', 'insert', 'update', 'delete'],
    deliveries: ['select', 'insert', 'update'],
    message_events: ['insert'],
    message_recipients: ['select', 'insert', 'update'],
    messages: ['select', 'insert'],
  },
  mailbox: {
    agencies: ['select'],
    agency_addresses: ['select'],
    agency_domains: ['select'],
    agency_registrations: ['select', 'insert'],
    blob_chunks: ['select', 'insert'],
    blobs: ['select', 'insert', 'update', 'delete'],
    certificates: ['select', 'insert', 'update', 'delete'],
    mailbox_arrivals: ['select', 'insert'],
    mailbox_audit: ['select', 'insert'],
    mailbox_messages: ['select', 'insert', 'update', 'delete'],
    mailbox_tokens: ['select', 'insert', 'update'],
    mailboxes: ['select', 'insert', 'update', 'delete'],
    message_events: ['select', 'insert'],
    message_recipients: ['select', 'insert', 'update'],
    messages: ['select', 'insert'],
    pgp_keys: ['select', 'insert', 'update', 'delete'],
    trust_anchors: ['select'],
  },
  admin: {
    agencies: ['select', 'insert', 'update'],
    agency_addresses: ['select', 'insert', 'update'],
    agency_domains: ['select', 'insert'],
    agency_keys: ['select', 'insert'],
    agency_registrations: ['select', 'update'],
    certificate_audit: ['select', 'insert'],
    certificates: ['select', 'insert', 'update', 'delete'],
    mailbox_audit: ['select', 'insert'],
    mailbox_inactivity_warnings: ['select'],
    mailbox_messages: ['select'],
    mailbox_tokens: ['select', 'insert', 'update'],
    mailboxes: ['select', 'update', 'delete'],
    message_events: ['select', 'insert'],
    message_recipients: ['select', 'update'],
    messages: ['select'],
    pgp_keys: ['select', 'insert', 'update', 'delete'],
    quarantine: ['select', 'update'],
    submission_accounts: ['select', 'insert', 'update', 'delete'],
    trust_anchors: ['select', 'insert'],
  },
  'lifecycle-reaper': {
    blob_chunks: ['select', 'insert'],
    blobs: ['select', 'insert', 'update', 'delete'],
    certificates: ['select', 'delete'],
    deliver_instances: ['select'],
    deliveries: ['select'],
    mailbox_arrivals: ['select', 'update', 'delete'],
    mailbox_audit: ['insert'],
    mailbox_inactivity_warnings: ['select', 'insert'],
    mailbox_messages: ['select'],
    mailbox_tokens: ['select', 'update', 'delete'],
    mailboxes: ['select', 'update', 'delete'],
    message_events: ['select', 'insert'],
    message_recipients: ['select', 'insert', 'update'],
    messages: ['select', 'insert', 'update', 'delete'],
    pgp_keys: ['select', 'delete'],
    quarantine: ['select', 'update', 'delete'],
    retired_keks: ['select', 'insert', 'delete'],
  },
};
