#!/bin/sh
# A SweFreq variant database server: PostgreSQL 15 with the swefreq
# database, its tables, and the role the web servers log in with. Every
# database node runs this; it never touches data already there (a clone
# keeps what it was cloned with).
set -eu
conf=/etc/postgresql/15/main
cp /opt/swefreq-db/pg.conf $conf/conf.d/swefreq.conf
# Web servers log in from the node's own networks only (samenet); which of
# them may connect at all is the lab's firewall's to say.
if ! grep -q '^host swefreq swefreq samenet' $conf/pg_hba.conf; then
  echo 'host swefreq swefreq samenet scram-sha-256' >> $conf/pg_hba.conf
fi
systemctl restart postgresql@15-main
cd /
psql() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -q "$@"; }
psql -c "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'swefreq') THEN CREATE ROLE swefreq LOGIN PASSWORD 'swefreq-lab'; END IF; END\$\$"
if ! psql -Atc "SELECT 1 FROM pg_database WHERE datname = 'swefreq'" | grep -q 1; then
  psql -c "CREATE DATABASE swefreq"
fi
psql -d swefreq -f /opt/swefreq-db/schema.sql
for tool in load drift; do
  ln -sf /opt/swefreq-db/$tool.py /usr/local/bin/swefreq-$tool
done
chmod 755 /opt/swefreq-db/*.py
