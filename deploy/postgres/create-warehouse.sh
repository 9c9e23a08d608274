#!/bin/sh
# Run once by the postgres image on an empty volume: the warehouse gets a database beside the instance's.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c "CREATE DATABASE \"$WAREHOUSE_DB\" OWNER \"$POSTGRES_USER\""
