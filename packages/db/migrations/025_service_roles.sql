-- One role per service, granted exactly what the service's statements use (packages/db/src/service-roles.ts, the
-- inventory this list must match: packages/db/test/service-roles.test.ts compares them both ways). Under migration
-- 024's one smgw_app every service could read and write every table: the internet-facing ingest could read the
-- portal's password hashes (mailboxes) and the agencies' private keys (agency_keys), the portal could read the
-- submission accounts' hashes. Now a service logs in as a member of its own role: smgw_ingest, smgw_scan,
-- smgw_encrypt, smgw_signature_verify, smgw_deliver, smgw_mailbox (with the portal), smgw_admin,
-- smgw_lifecycle_reaper. smgw_app stays, for tools an operator runs (rows only), and no service is a member of it.
-- The roles are cluster-wide: the deployment makes them (CloudNativePG managed.roles, docker compose's init script),
-- or this migration when the migrating role may (a superuser in tests, CREATEROLE). The grants are per schema, in the
-- schema the migration runs in. A table of a later migration is granted by that migration to the services that use
-- it (no default privileges here: a new table is nobody's until a service needs it); the test names a table that no
-- service role holds.
do $$
declare
  grant_row record;
  service_role text;
begin
  foreach service_role in array array['smgw_ingest', 'smgw_scan', 'smgw_encrypt', 'smgw_signature_verify',
      'smgw_deliver', 'smgw_mailbox', 'smgw_admin', 'smgw_lifecycle_reaper'] loop
    if not exists (select from pg_roles where rolname = service_role) then
      if not exists (select from pg_roles where rolname = current_user and (rolsuper or rolcreaterole)) then
        raise exception 'role % does not exist and % may not create it: the deployment creates it '
          '(deploy/README.md "Database roles")', service_role, current_user;
      end if;
      begin
        execute format('create role %I nologin noinherit', service_role);
      exception when duplicate_object or unique_violation then
        null; -- made in the meantime by the migration of another database of the same server
      end;
    end if;
    execute format('grant usage on schema %I to %I', current_schema(), service_role);
  end loop;
  for grant_row in select * from (values
    ('smgw_ingest', 'agency_addresses', 'select'),
    ('smgw_ingest', 'blob_chunks', 'select, insert'),
    ('smgw_ingest', 'blobs', 'select, insert, update, delete'),
    ('smgw_ingest', 'message_events', 'insert'),
    ('smgw_ingest', 'message_recipients', 'select, insert'),
    ('smgw_ingest', 'messages', 'select, insert'),
    ('smgw_ingest', 'submission_accounts', 'select'),
    ('smgw_scan', 'agency_addresses', 'select'),
    ('smgw_scan', 'blob_chunks', 'select, insert'),
    ('smgw_scan', 'blobs', 'select, insert, update, delete'),
    ('smgw_scan', 'message_events', 'select, insert'),
    ('smgw_scan', 'message_recipients', 'select, insert, update'),
    ('smgw_scan', 'messages', 'select, insert, update'),
    ('smgw_scan', 'quarantine', 'select, insert'),
    ('smgw_encrypt', 'agencies', 'select'),
    ('smgw_encrypt', 'agency_domains', 'select'),
    ('smgw_encrypt', 'agency_keys', 'select'),
    ('smgw_encrypt', 'blob_chunks', 'select, insert'),
    ('smgw_encrypt', 'blobs', 'select, insert, update, delete'),
    ('smgw_encrypt', 'certificates', 'select, insert, update'),
    ('smgw_encrypt', 'message_events', 'select, insert'),
    ('smgw_encrypt', 'message_recipients', 'select, insert'),
    ('smgw_encrypt', 'messages', 'select, insert'),
    ('smgw_encrypt', 'pgp_keys', 'select, insert, update'),
    ('smgw_encrypt', 'trust_anchors', 'select'),
    ('smgw_signature_verify', 'agency_addresses', 'select'),
    ('smgw_signature_verify', 'blob_chunks', 'select, insert'),
    ('smgw_signature_verify', 'blobs', 'select, insert, update, delete'),
    ('smgw_signature_verify', 'message_events', 'insert'),
    ('smgw_signature_verify', 'message_recipients', 'select, insert'),
    ('smgw_signature_verify', 'messages', 'select, insert'),
    ('smgw_signature_verify', 'trust_anchors', 'select'),
    ('smgw_deliver', 'blob_chunks', 'select, insert'),
    ('smgw_deliver', 'blobs', 'select, insert, update, delete'),
    ('smgw_deliver', 'deliver_instances', 'select, insert, update, delete'),
    ('smgw_deliver', 'deliveries', 'select, insert, update'),
    ('smgw_deliver', 'message_events', 'insert'),
    ('smgw_deliver', 'message_recipients', 'select, insert, update'),
    ('smgw_deliver', 'messages', 'select, insert'),
    ('smgw_mailbox', 'agencies', 'select'),
    ('smgw_mailbox', 'agency_addresses', 'select'),
    ('smgw_mailbox', 'agency_domains', 'select'),
    ('smgw_mailbox', 'agency_registrations', 'select, insert'),
    ('smgw_mailbox', 'blob_chunks', 'select, insert'),
    ('smgw_mailbox', 'blobs', 'select, insert, update, delete'),
    ('smgw_mailbox', 'certificates', 'select, insert, update, delete'),
    ('smgw_mailbox', 'mailbox_arrivals', 'select, insert'),
    ('smgw_mailbox', 'mailbox_audit', 'select, insert'),
    ('smgw_mailbox', 'mailbox_messages', 'select, insert, update, delete'),
    ('smgw_mailbox', 'mailbox_tokens', 'select, insert, update'),
    ('smgw_mailbox', 'mailboxes', 'select, insert, update, delete'),
    ('smgw_mailbox', 'message_events', 'select, insert'),
    ('smgw_mailbox', 'message_recipients', 'select, insert, update'),
    ('smgw_mailbox', 'messages', 'select, insert'),
    ('smgw_mailbox', 'pgp_keys', 'select, insert, update, delete'),
    ('smgw_mailbox', 'trust_anchors', 'select'),
    ('smgw_admin', 'agencies', 'select, insert, update'),
    ('smgw_admin', 'agency_addresses', 'select, insert, update'),
    ('smgw_admin', 'agency_domains', 'select, insert'),
    ('smgw_admin', 'agency_keys', 'select, insert'),
    ('smgw_admin', 'agency_registrations', 'select, update'),
    ('smgw_admin', 'certificate_audit', 'select, insert'),
    ('smgw_admin', 'certificates', 'select, insert, update, delete'),
    ('smgw_admin', 'mailbox_audit', 'select, insert'),
    ('smgw_admin', 'mailbox_inactivity_warnings', 'select'),
    ('smgw_admin', 'mailbox_messages', 'select'),
    ('smgw_admin', 'mailbox_tokens', 'select, insert, update'),
    ('smgw_admin', 'mailboxes', 'select, update, delete'),
    ('smgw_admin', 'message_events', 'select, insert'),
    ('smgw_admin', 'message_recipients', 'select, update'),
    ('smgw_admin', 'messages', 'select'),
    ('smgw_admin', 'pgp_keys', 'select, insert, update, delete'),
    ('smgw_admin', 'quarantine', 'select, update'),
    ('smgw_admin', 'submission_accounts', 'select, insert, update, delete'),
    ('smgw_admin', 'trust_anchors', 'select, insert'),
    ('smgw_lifecycle_reaper', 'blob_chunks', 'select, insert'),
    ('smgw_lifecycle_reaper', 'blobs', 'select, insert, update, delete'),
    ('smgw_lifecycle_reaper', 'certificates', 'select, delete'),
    ('smgw_lifecycle_reaper', 'deliver_instances', 'select'),
    ('smgw_lifecycle_reaper', 'deliveries', 'select'),
    ('smgw_lifecycle_reaper', 'mailbox_arrivals', 'select, update, delete'),
    ('smgw_lifecycle_reaper', 'mailbox_audit', 'insert'),
    ('smgw_lifecycle_reaper', 'mailbox_inactivity_warnings', 'select, insert'),
    ('smgw_lifecycle_reaper', 'mailbox_messages', 'select'),
    ('smgw_lifecycle_reaper', 'mailbox_tokens', 'select, update, delete'),
    ('smgw_lifecycle_reaper', 'mailboxes', 'select, update, delete'),
    ('smgw_lifecycle_reaper', 'message_events', 'select, insert'),
    ('smgw_lifecycle_reaper', 'message_recipients', 'select, insert, update'),
    ('smgw_lifecycle_reaper', 'messages', 'select, insert, update, delete'),
    ('smgw_lifecycle_reaper', 'pgp_keys', 'select, delete'),
    ('smgw_lifecycle_reaper', 'quarantine', 'select, update, delete'),
    ('smgw_lifecycle_reaper', 'retired_keks', 'select, insert')
  ) as g (service_role, table_name, privileges) loop
    execute format('grant %s on table %I.%I to %I', grant_row.privileges, current_schema(), grant_row.table_name,
      grant_row.service_role);
  end loop;
  -- The bigserial ids of the tables a service inserts into.
  for grant_row in
    select s.relname as sequence_name, r.rolname as grantee
      from pg_class s
      join pg_depend d on d.objid = s.oid and d.classid = 'pg_class'::regclass and d.deptype = 'a'
      join pg_class t on t.oid = d.refobjid
      cross join pg_roles r
     where s.relkind = 'S' and s.relnamespace = current_schema()::regnamespace
       and r.rolname = any(array['smgw_ingest', 'smgw_scan', 'smgw_encrypt', 'smgw_signature_verify', 'smgw_deliver',
         'smgw_mailbox', 'smgw_admin', 'smgw_lifecycle_reaper'])
       and has_table_privilege(r.rolname, t.oid, 'INSERT')
  loop
    execute format('grant usage on sequence %I.%I to %I', current_schema(), grant_row.sequence_name,
      grant_row.grantee);
  end loop;
end
$$;
