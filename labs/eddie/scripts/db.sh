#!/bin/sh
# Eddie's PostgreSQL 15: the eddie database for the api nodes, and the
# roles Barman backs it up with (a streaming replication connection).
set -eu
conf=/etc/postgresql/15/main
cat > $conf/conf.d/eddie.conf <<'CONF'
listen_addresses = '*'
CONF
hba() { grep -qxF "$1" $conf/pg_hba.conf || echo "$1" >> $conf/pg_hba.conf; }
hba 'host eddie eddie samenet scram-sha-256'
hba 'host all barman samenet scram-sha-256'
hba 'host replication streaming_barman samenet scram-sha-256'
systemctl restart postgresql@15-main
cd /
psql() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q "$@"; }
role() { # NAME OPTIONS
  psql -c "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$1') THEN CREATE ROLE $1 $2; END IF; END\$\$"
}
role eddie "LOGIN PASSWORD 'eddie-lab'"
role barman "LOGIN SUPERUSER PASSWORD 'barman-lab'"
role streaming_barman "LOGIN REPLICATION PASSWORD 'barman-lab'"
psql -Atc "SELECT 1 FROM pg_database WHERE datname = 'eddie'" | grep -q 1 || psql -c "CREATE DATABASE eddie"
psql -d eddie -f /etc/eddie/schema.sql
