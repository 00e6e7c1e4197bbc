#!/bin/bash
# Scheduled dumps: every 30 s the primary (whichever node it is now) dumps
# the todo database and ships it to adm1's dumps module (rsync), where the
# newest few are kept (scripts/adm.sh). Standbys skip their turn.
set -euo pipefail
ADM=$(echo $LAB_ROLE_ADM_NODES | cut -d' ' -f1)
cat > /usr/local/bin/todo-dump <<SH
#!/bin/sh
# todo-dump: dump the todo database if this node is the primary, ship it to $ADM.
set -eu
cd /tmp
[ "\$(runuser -u postgres -- psql -qtAc 'select pg_is_in_recovery()')" = f ] || exit 0
mkdir -p /var/backups/todo
f=/var/backups/todo/$LAB_NODE-\$(date -u +%Y%m%dT%H%M%S.%N).sql.gz
runuser -u postgres -- pg_dump -d todo | gzip > "\$f.part"
mv "\$f.part" "\$f"
rsync -q --timeout=10 "\$f" rsync://$ADM/dumps/$LAB_NODE/
rm -f "\$f"
echo "dumped to $ADM: \$(basename "\$f")"
SH
chmod 755 /usr/local/bin/todo-dump
cat > /etc/systemd/system/todo-dump.service <<'UNIT'
[Unit]
Description=todomvc: dump the database and ship it to adm1

[Service]
Type=oneshot
ExecStart=/usr/local/bin/todo-dump
UNIT
cat > /etc/systemd/system/todo-dump.timer <<'UNIT'
[Unit]
Description=todomvc: a dump every 30 s

[Timer]
OnBootSec=30s
OnUnitActiveSec=30s
AccuracySec=1s

[Install]
WantedBy=timers.target
UNIT
systemctl daemon-reload
systemctl enable -q --now todo-dump.timer
echo "dumps every 30 s to $ADM (when primary)"
