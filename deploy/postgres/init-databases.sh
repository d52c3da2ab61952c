#!/bin/sh
# PostgreSQL entrypoint hook (/docker-entrypoint-initdb.d): one role and one database per
# service, so no service can read another's tables. Runs once, on an empty data directory.
#   PORTICO_DATABASES     space-separated service names (compose.yaml sets the five)
#   PORTICO_DB_PASSWORD   password for every service role (local use; compose has a default)
set -eu
: "${PORTICO_DATABASES:?set PORTICO_DATABASES}"
: "${PORTICO_DB_PASSWORD:?set PORTICO_DB_PASSWORD}"
for name in $PORTICO_DATABASES; do
  echo "portico: creating role and database $name"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       -v name="$name" -v password="$PORTICO_DB_PASSWORD" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
done
