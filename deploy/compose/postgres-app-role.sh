#!/bin/sh
# Run by the postgres image once, when it initialises an empty data volume (/docker-entrypoint-initdb.d): the role the
# gateway connects as owns the database but is no superuser, so a SQL injection in a service can neither read the
# server's files nor run programs on it (COPY ... PROGRAM), as POSTGRES_USER could. The owner runs the migrations
# only; the services log in as SMGW_DB_SERVICE_USER, a member of smgw_app, which migration 024 grants reading and
# writing rows and nothing more (no DDL, no TRUNCATE): an injection in a service cannot change or drop the schema.
# The per-service roles (smgw_ingest, ...) hold what migration 025 grants each service; no login uses them yet.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
  -v role="$SMGW_DB_USER" -v password="$SMGW_DB_PASSWORD" -v db="$SMGW_DB_NAME" \
  -v service_role="$SMGW_DB_SERVICE_USER" -v service_password="$SMGW_DB_SERVICE_PASSWORD" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role";
CREATE ROLE smgw_app NOLOGIN NOINHERIT;
CREATE ROLE :"service_role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT IN ROLE smgw_app
  PASSWORD :'service_password';
CREATE ROLE smgw_ingest NOLOGIN NOINHERIT;
CREATE ROLE smgw_scan NOLOGIN NOINHERIT;
CREATE ROLE smgw_encrypt NOLOGIN NOINHERIT;
CREATE ROLE smgw_signature_verify NOLOGIN NOINHERIT;
CREATE ROLE smgw_deliver NOLOGIN NOINHERIT;
CREATE ROLE smgw_mailbox NOLOGIN NOINHERIT;
CREATE ROLE smgw_admin NOLOGIN NOINHERIT;
CREATE ROLE smgw_lifecycle_reaper NOLOGIN NOINHERIT;
SQL
