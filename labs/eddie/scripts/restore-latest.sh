#!/bin/bash
# restore-latest.sh [NODE]: restores Barman's newest backup of db1 into NODE
# (restore1 by default: scale the restore role to 1 first), a fresh
# PostgreSQL node: Barman restores on the backup node (with the WAL the
# backup needs), the data folder is streamed across through lab exec, and
# PostgreSQL replays it and starts. LAB names the lab command (default lab).
set -euo pipefail
lab=${LAB:-lab}
node=${1:-restore1}
$lab exec backup1 -- sh -c 'cd / && rm -rf /var/lib/barman/restore &&
  runuser -u barman -- barman recover db latest /var/lib/barman/restore/db >&2 &&
  tar -C /var/lib/barman/restore/db -c .' |
$lab exec "$node" -- sh -c 'set -e; data=/var/lib/postgresql/15/main
  systemctl stop postgresql@15-main
  rm -rf $data && mkdir -m 700 $data && tar -C $data -x && chown -R postgres:postgres $data
  systemctl start postgresql@15-main
  for i in $(seq 1 60); do
    runuser -u postgres -- psql -Atc "SELECT pg_is_in_recovery()" 2>/dev/null | grep -qx f && exit 0
    sleep 0.5
  done
  echo "restore: PostgreSQL did not finish recovery" >&2; exit 1'
echo "restored the newest backup into $node"
