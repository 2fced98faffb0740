#!/bin/sh
# Run by the postgres image once, when it initialises an empty data volume (/docker-entrypoint-initdb.d): the role the
# gateway connects as owns the database but is no superuser, so a SQL injection in a service can neither read the
# server's files nor run programs on it (COPY ... PROGRAM), as POSTGRES_USER could. The owner runs the migrations
# only; each service logs in as smgw_<service>_login (password SMGW_DB_<SERVICE>_PASSWORD), a member of its service's
# role only (smgw_ingest, ...), which migration 025 grants reading and writing the rows of the tables that service
# uses and nothing more (no DDL, no TRUNCATE): an injection in ingest can neither change the schema nor read the
# portal's password hashes. smgw_app (rows of every table, migration 024) is for operators' tools; no service uses it.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
  -v role="$SMGW_DB_USER" -v password="$SMGW_DB_PASSWORD" -v db="$SMGW_DB_NAME" \
  -v ingest_password="$SMGW_DB_INGEST_PASSWORD" \
  -v scan_password="$SMGW_DB_SCAN_PASSWORD" \
  -v encrypt_password="$SMGW_DB_ENCRYPT_PASSWORD" \
  -v signature_verify_password="$SMGW_DB_SIGNATURE_VERIFY_PASSWORD" \
  -v deliver_password="$SMGW_DB_DELIVER_PASSWORD" \
  -v mailbox_password="$SMGW_DB_MAILBOX_PASSWORD" \
  -v admin_password="$SMGW_DB_ADMIN_PASSWORD" \
  -v lifecycle_reaper_password="$SMGW_DB_LIFECYCLE_REAPER_PASSWORD" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role";
CREATE ROLE smgw_app NOLOGIN NOINHERIT;
CREATE ROLE smgw_ingest NOLOGIN NOINHERIT;
CREATE ROLE smgw_scan NOLOGIN NOINHERIT;
CREATE ROLE smgw_encrypt NOLOGIN NOINHERIT;
CREATE ROLE smgw_signature_verify NOLOGIN NOINHERIT;
CREATE ROLE smgw_deliver NOLOGIN NOINHERIT;
CREATE ROLE smgw_mailbox NOLOGIN NOINHERIT;
CREATE ROLE smgw_admin NOLOGIN NOINHERIT;
CREATE ROLE smgw_lifecycle_reaper NOLOGIN NOINHERIT;
CREATE ROLE smgw_ingest_login LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT IN ROLE smgw_ingest
  PASSWORD :'ingest_password';
CREATE ROLE smgw_scan_login LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT IN ROLE smgw_scan
  PASSWORD :'scan_password';
CREATE ROLE smgw_encrypt_login LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT IN ROLE smgw_encrypt
  PASSWORD :'encrypt_password';
CREATE ROLE smgw_signature_verify_login LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT IN ROLE smgw_signature_verify
  PASSWORD :'signature_verify_password';
CREATE ROLE smgw_deliver_login LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT IN ROLE smgw_deliver
  PASSWORD :'deliver_password';
CREATE ROLE smgw_mailbox_login LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT IN ROLE smgw_mailbox
  PASSWORD :'mailbox_password';
CREATE ROLE smgw_admin_login LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT IN ROLE smgw_admin
  PASSWORD :'admin_password';
CREATE ROLE smgw_lifecycle_reaper_login LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT IN ROLE smgw_lifecycle_reaper
  PASSWORD :'lifecycle_reaper_password';
SQL
