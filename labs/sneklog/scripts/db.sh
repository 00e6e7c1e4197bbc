#!/bin/sh
# SnekLog's PostgreSQL 15: the sneklog database for the app servers.
set -eu
conf=/etc/postgresql/15/main
echo "listen_addresses = '*'" > $conf/conf.d/sneklog.conf
grep -qxF 'host sneklog sneklog samenet scram-sha-256' $conf/pg_hba.conf ||
  echo 'host sneklog sneklog samenet scram-sha-256' >> $conf/pg_hba.conf
systemctl restart postgresql@15-main
cd /
psql() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q "$@"; }
psql -c "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sneklog') THEN CREATE ROLE sneklog LOGIN PASSWORD 'sneklog-lab'; END IF; END\$\$"
psql -Atc "SELECT 1 FROM pg_database WHERE datname = 'sneklog'" | grep -q 1 || psql -c "CREATE DATABASE sneklog"
psql -d sneklog -f /etc/sneklog/schema.sql
