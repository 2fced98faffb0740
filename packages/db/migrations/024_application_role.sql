-- The services connect as a member of smgw_app, not as the owner that runs these migrations: smgw_app may read and
-- write the gateway's rows and nothing more (no CREATE, ALTER, DROP, TRUNCATE, REFERENCES or TRIGGER, no ownership,
-- no row of schema_migrations), so an injection or a code execution bug in a service (the internet-facing ingest, the
-- portal) can no longer change or drop the schema. The role is cluster-wide: the deployment makes it (CloudNativePG
-- managed.roles, docker compose's init script), or this migration when the migrating role may (a superuser in tests,
-- CREATEROLE); everything else here is per schema, in the schema the migration runs in (tests use one each).
-- New tables of later migrations get the same rights by default privileges (those of objects the migrating role
-- creates, which is every migration's); packages/db/test/application-role.test.ts fails when a table has none.
do $$
begin
  if not exists (select from pg_roles where rolname = 'smgw_app') then
    if not exists (select from pg_roles where rolname = current_user and (rolsuper or rolcreaterole)) then
      raise exception 'role smgw_app does not exist and % may not create it: the deployment creates it '
        '(deploy/README.md "Database roles")', current_user;
    end if;
    begin
      create role smgw_app nologin;
    exception when duplicate_object or unique_violation then
      null; -- made in the meantime by the migration of another database of the same server
    end;
  end if;
  execute format('grant usage on schema %I to smgw_app', current_schema());
  execute format('grant select, insert, update, delete on all tables in schema %I to smgw_app', current_schema());
  execute format('grant usage, select on all sequences in schema %I to smgw_app', current_schema());
  -- Which migrations ran is the migrating role's business alone: a service that could write here could make a
  -- migration be skipped.
  execute format('revoke all on table %I.schema_migrations from smgw_app', current_schema());
  execute format('alter default privileges in schema %I grant select, insert, update, delete on tables to smgw_app',
    current_schema());
  execute format('alter default privileges in schema %I grant usage, select on sequences to smgw_app',
    current_schema());
end
$$;
