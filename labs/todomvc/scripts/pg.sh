#!/bin/bash
# PostgreSQL 15 with automatic failover. The first pg node starts as the
# primary; every other one clones the live primary (whichever it is by then)
# into a hot standby that streams through its own replication slot. From
# then on pg-agent (files/pg-agent.py) owns the server: it starts it at boot,
# follows, promotes and rewinds (see README).
set -euo pipefail
cd /tmp  # postgres cannot read /root
PGV=15
CONF=/etc/postgresql/$PGV/main
DATA=/var/lib/postgresql/$PGV/main
UNIT=postgresql@$PGV-main
REPL_PASSWORD=replicator-lab
REWIND_PASSWORD=rewind-lab
APP_PASSWORD=todo-lab
MEMBER=/var/lib/postgresql/lab-member
psql_pg() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtA "$@"; }

mkdir -p $CONF/conf.d
cat > $CONF/conf.d/lab.conf <<CONF
listen_addresses = '*'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
hot_standby_feedback = on
wal_keep_size = 128MB
# pg_rewind needs it: a primary that comes back after a failover rewinds
# onto the new one instead of being cloned again.
wal_log_hints = on
# After a crash, or a restored snapshot (taken of a running server), one
# syncfs instead of an fsync of every file before recovery.
recovery_init_sync_method = syncfs
CONF
for net in "$LAB_SUBNET" ${LAB_SUBNET6:-}; do
  for line in "host replication replicator $net scram-sha-256" "host todo todo $net scram-sha-256" "host postgres rewind $net scram-sha-256"; do
    grep -qxF "$line" $CONF/pg_hba.conf || echo "$line" >> $CONF/pg_hba.conf
  done
done
# pg-agent starts the server, never the boot: a node that comes back must
# not start as a second primary.
echo manual > $CONF/start.conf
systemctl daemon-reload
install -o postgres -g postgres -m 600 /dev/null /var/lib/postgresql/.pgpass
printf '*:5432:*:replicator:%s\n*:5432:*:rewind:%s\n' "$REPL_PASSWORD" "$REWIND_PASSWORD" > /var/lib/postgresql/.pgpass

cat > /usr/local/bin/pg-health <<'HEALTH'
#!/bin/sh
# Healthy: a primary accepts connections; a standby also streams from it.
pg_isready -q -h 127.0.0.1 || exit 1
if [ "$(cd / && runuser -u postgres -- psql -qtAc 'select pg_is_in_recovery()')" = t ]; then
  [ "$(cd / && runuser -u postgres -- psql -qtAc 'select status from pg_stat_wal_receiver')" = streaming ] || { echo "standby is not streaming" >&2; exit 1; }
fi
HEALTH
chmod 755 /usr/local/bin/pg-health

cat > /etc/systemd/system/pg-agent.service <<'UNIT'
[Unit]
Description=pg-agent: PostgreSQL failover through Serf (starts, follows, promotes, rewinds)
After=serf.service network.target
Wants=serf.service

[Service]
ExecStart=/usr/local/bin/pg-agent
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable -q pg-agent

wait_ready() { for i in $(seq 1 300); do pg_isready -q -h "$1" && return 0; sleep 0.2; done; return 1; }
primary() { serf members -status alive -tag role=pg -tag pg=primary | awk '{print $1}' | head -1; }

if [ -f $MEMBER ]; then
  # Provisioned before: the agent keeps the server as it is; new settings
  # take a reload (those that need a restart wait for the next one).
  systemctl restart pg-agent
  wait_ready 127.0.0.1
  runuser -u postgres -- psql -qtAc 'select pg_reload_conf()' >/dev/null
  echo "$LAB_NODE: a member already ($(psql_pg -c 'select case when pg_is_in_recovery() then $$standby$$ else $$primary$$ end'))"
  exit 0
fi

if [ "$LAB_INDEX" = 1 ] && [ -z "$(primary)" ]; then
  systemctl restart $UNIT
  wait_ready 127.0.0.1
  psql_pg <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator') THEN
    CREATE ROLE replicator REPLICATION LOGIN PASSWORD '$REPL_PASSWORD';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rewind') THEN
    CREATE ROLE rewind LOGIN PASSWORD '$REWIND_PASSWORD';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'todo') THEN
    CREATE ROLE todo LOGIN PASSWORD '$APP_PASSWORD';
  END IF;
END \$\$;
-- What pg_rewind reads from its source, and what the agent asks of a peer.
GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO rewind;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO rewind;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO rewind;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO rewind;
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
  echo 1 > /var/lib/postgresql/lab-epoch
  touch $MEMBER
  systemctl restart pg-agent
  echo "primary $LAB_NODE ready"
  exit 0
fi

# A standby of the live primary.
echo "waiting for a primary"
for i in $(seq 1 300); do P=$(primary); [ -n "$P" ] && break; sleep 0.5; done
[ -n "$P" ] || { echo "no live primary in Serf" >&2; exit 1; }
wait_ready "$P" || { echo "primary $P does not answer" >&2; exit 1; }
systemctl stop pg-agent $UNIT
slot="${LAB_NODE}slot"
# The primary's agent may have made this node's slot already: then use it.
for attempt in $(seq 1 30); do
  rm -rf $DATA && install -d -o postgres -g postgres -m 700 $DATA
  if runuser -u postgres -- pg_basebackup -h "$P" -U replicator -D $DATA -R -X stream -C -S "$slot" -c fast 2>/tmp/basebackup.err ||
     { grep -q 'already exists' /tmp/basebackup.err &&
       runuser -u postgres -- pg_basebackup -h "$P" -U replicator -D $DATA -R -X stream -S "$slot" -c fast; }; then
    break
  fi
  cat /tmp/basebackup.err >&2
  [ "$attempt" = 30 ] && exit 1
  sleep 1
done
systemctl start $UNIT
wait_ready 127.0.0.1
touch $MEMBER
systemctl start pg-agent
echo "standby $LAB_NODE streaming from $P through slot $slot"
