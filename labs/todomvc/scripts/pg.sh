#!/bin/bash
# PostgreSQL 15: the first pg node is the primary, every other one a hot
# standby streaming from it through its own replication slot.
set -euo pipefail
cd /tmp  # postgres cannot read /root
PGV=15
CONF=/etc/postgresql/$PGV/main
DATA=/var/lib/postgresql/$PGV/main
PRIMARY=${LAB_ROLE}1
REPL_PASSWORD=replicator-lab
APP_PASSWORD=todo-lab
psql_pg() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtA "$@"; }

mkdir -p $CONF/conf.d
cat > $CONF/conf.d/lab.conf <<CONF
listen_addresses = '*'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
hot_standby_feedback = on
wal_keep_size = 64MB
# After a crash, or a restored snapshot (taken of a running server), one
# syncfs instead of an fsync of every file before recovery.
recovery_init_sync_method = syncfs
CONF
for line in "host replication replicator $LAB_SUBNET scram-sha-256" "host todo todo $LAB_SUBNET scram-sha-256"; do
  grep -qxF "$line" $CONF/pg_hba.conf || echo "$line" >> $CONF/pg_hba.conf
done

cat > /usr/local/bin/pg-health <<'HEALTH'
#!/bin/sh
# Healthy: a primary accepts connections; a standby also streams from the primary.
pg_isready -q -h 127.0.0.1 || exit 1
if [ "$(runuser -u postgres -- psql -qtAc 'select pg_is_in_recovery()')" = t ]; then
  [ "$(runuser -u postgres -- psql -qtAc 'select status from pg_stat_wal_receiver')" = streaming ] || { echo "standby is not streaming" >&2; exit 1; }
fi
HEALTH
chmod 755 /usr/local/bin/pg-health

wait_ready() { for i in $(seq 1 150); do pg_isready -q -h "$1" && return 0; sleep 0.2; done; return 1; }

if [ "$LAB_INDEX" = 1 ]; then
  systemctl restart postgresql
  wait_ready 127.0.0.1
  psql_pg <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator') THEN
    CREATE ROLE replicator REPLICATION LOGIN PASSWORD '$REPL_PASSWORD';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'todo') THEN
    CREATE ROLE todo LOGIN PASSWORD '$APP_PASSWORD';
  END IF;
END \$\$;
SQL
  [ "$(psql_pg -c "select 1 from pg_database where datname = 'todo'")" = 1 ] || runuser -u postgres -- createdb -O todo todo
  psql_pg -d todo <<'SQL'
SET ROLE todo;
CREATE TABLE IF NOT EXISTS todos (
  id         bigserial PRIMARY KEY,
  title      text        NOT NULL,
  completed  boolean     NOT NULL DEFAULT false,
  "order"    integer     NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now()
);
SQL
  serf tags -set pg=primary >/dev/null
  echo "primary $LAB_NODE ready"
  exit 0
fi

# A standby. Already streaming from the primary? Nothing to do.
if [ -f $DATA/standby.signal ] && systemctl is-active -q postgresql && \
   [ "$(psql_pg -c 'select status from pg_stat_wal_receiver' 2>/dev/null)" = streaming ]; then
  serf tags -set pg=standby >/dev/null
  echo "standby $LAB_NODE already streaming"
  exit 0
fi
echo "waiting for primary $PRIMARY"
wait_ready "$PRIMARY" || { echo "primary $PRIMARY does not answer" >&2; exit 1; }
install -o postgres -g postgres -m 600 /dev/null /var/lib/postgresql/.pgpass
echo "$PRIMARY:5432:*:replicator:$REPL_PASSWORD" > /var/lib/postgresql/.pgpass
systemctl stop postgresql
slot="${LAB_NODE}slot"
for attempt in $(seq 1 30); do
  rm -rf $DATA && install -d -o postgres -g postgres -m 700 $DATA
  # -C creates the slot; if an earlier attempt made it, use it as it is.
  if runuser -u postgres -- pg_basebackup -h "$PRIMARY" -U replicator -D $DATA -R -X stream -C -S "$slot" -c fast 2>/tmp/basebackup.err ||
     { grep -q 'already exists' /tmp/basebackup.err &&
       runuser -u postgres -- pg_basebackup -h "$PRIMARY" -U replicator -D $DATA -R -X stream -S "$slot" -c fast; }; then
    break
  fi
  cat /tmp/basebackup.err >&2
  [ "$attempt" = 30 ] && exit 1
  sleep 1
done
systemctl start postgresql
wait_ready 127.0.0.1
serf tags -set pg=standby >/dev/null
echo "standby $LAB_NODE streaming from $PRIMARY through slot $slot"
