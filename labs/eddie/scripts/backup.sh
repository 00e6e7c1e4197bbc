#!/bin/sh
# The backup node: Barman takes base backups of db1 over PostgreSQL's
# streaming protocol and streams its WAL (no SSH), keeps three backups
# (REDUNDANCY 3, never fewer than one), takes the first backup, and
# eddie-backup takes one more and applies the retention.
set -eu
cat > /etc/barman.d/db.conf <<'CONF'
[db]
description = "Eddie's PostgreSQL on db1"
conninfo = host=db1 user=barman dbname=postgres
streaming_conninfo = host=db1 user=streaming_barman
backup_method = postgres
streaming_archiver = on
slot_name = barman
create_slot = auto
retention_policy = REDUNDANCY 3
retention_policy_mode = auto
minimum_redundancy = 1
CONF
cat > /var/lib/barman/.pgpass <<'PASS'
db1:5432:*:barman:barman-lab
db1:5432:*:streaming_barman:barman-lab
PASS
chown barman:barman /var/lib/barman/.pgpass
chmod 600 /var/lib/barman/.pgpass
cd /
b() { runuser -u barman -- barman "$@"; }
b receive-wal --create-slot db 2>/dev/null || true
b cron
# WAL must arrive before the first backup: wait for the receiver, switch.
for i in $(seq 1 30); do
  b switch-wal --force --archive --archive-timeout 10 db && break
  sleep 1
done
# The first backup, so that a provisioned backup node has one to restore.
b list-backups db | grep -q . || b backup --wait --wait-timeout 60 db
b check db
