#!/bin/sh
# Run by the postgres image once, when it initialises an empty data volume (/docker-entrypoint-initdb.d): the role the
# gateway connects as owns the database but is no superuser, so a SQL injection in a service can neither read the
# server's files nor run programs on it (COPY ... PROGRAM), as POSTGRES_USER could.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
  -v role="$SMGW_DB_USER" -v password="$SMGW_DB_PASSWORD" -v db="$SMGW_DB_NAME" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role";
SQL
