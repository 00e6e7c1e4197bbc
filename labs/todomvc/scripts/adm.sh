#!/bin/bash
# adm1: the discovery hub and the lab's operations node. It serves a status
# page of the lab (refreshed from Serf) and collectd's graphs, receives every
# node's logs (rsyslog, one file per node, searched with todo-logs) and
# metrics (collectd), and keeps the database dumps the pg nodes ship to it
# (an rsync daemon; the newest DUMPS_KEEP of each node are kept).
set -euo pipefail
DUMPS_KEEP=5

# The status page, and the graphs under /graphs/.
rm -f /etc/nginx/sites-enabled/default
cat > /etc/nginx/sites-enabled/status <<'NGINX'
server {
    listen 80 default_server;
    listen [::]:80 default_server;
    root /var/www/status;
    location / { add_header Cache-Control "no-store"; try_files $uri $uri/ =404; }
}
NGINX
mkdir -p /var/www/status/graphs
/usr/local/bin/lab-discovery refresh
systemctl reload-or-restart nginx

# Logs: every node's syslog, one file per node.
mkdir -p /var/log/lab
cat > /etc/rsyslog.d/10-todomvc-server.conf <<'CONF'
# The lab's log server: every node's syslog, one file per node.
module(load="imtcp")
input(type="imtcp" port="514" ruleset="remote")
template(name="pernode" type="string" string="/var/log/lab/%HOSTNAME%.log")
ruleset(name="remote") { action(type="omfile" dynaFile="pernode") }
CONF
systemctl restart rsyslog
cat > /usr/local/bin/todo-logs <<'SH'
#!/bin/sh
# todo-logs PATTERN [NODE]: search the logs of every node (or one), as adm1
# received them.
set -eu
[ $# -ge 1 ] || { echo "usage: todo-logs PATTERN [NODE]" >&2; exit 2; }
cd /var/log/lab
if [ -n "${2:-}" ]; then exec grep -H -- "$1" "$2.log"; fi
exec grep -H -- "$1" *.log
SH
chmod 755 /usr/local/bin/todo-logs

# Dumps: an rsync daemon module the pg nodes push to, pruned after each one.
install -d -m 755 /srv/dumps
cat > /usr/local/bin/todo-dump-retention <<SH
#!/bin/sh
# Keep the newest $DUMPS_KEEP dumps of each node (run by rsync after every upload).
for d in /srv/dumps/*/; do
  [ -d "\$d" ] || continue
  ls -1 "\$d"*.sql.gz 2>/dev/null | sort -r | tail -n +$((DUMPS_KEEP + 1)) | xargs -r rm -f
done
SH
chmod 755 /usr/local/bin/todo-dump-retention
cat > /etc/rsyncd.conf <<CONF
# lab: the database dumps of the pg nodes.
[dumps]
  path = /srv/dumps
  read only = false
  uid = root
  gid = root
  hosts allow = $LAB_SUBNET
  post-xfer exec = /usr/local/bin/todo-dump-retention
CONF
systemctl enable -q rsync
systemctl restart rsync

# Graphs of what collectd received, redrawn every 10 s.
cat > /usr/local/bin/todo-graphs <<'SH'
#!/bin/bash
# Draw load and memory of every node collectd knows into /var/www/status/graphs.
set -u
cd /var/lib/collectd/rrd 2>/dev/null || exit 0
out=/var/www/status/graphs
rows=""
for host in */; do
  host=${host%/}
  [ -f "$host/load/load.rrd" ] || continue
  rrdtool graph "$out/$host-load.png.new" -s -30min -w 400 -h 100 -t "$host: load" \
    "DEF:l=$host/load/load.rrd:shortterm:AVERAGE" "LINE2:l#0060a0:1 min" >/dev/null && mv "$out/$host-load.png.new" "$out/$host-load.png"
  if [ -f "$host/memory/memory-used.rrd" ]; then
    rrdtool graph "$out/$host-memory.png.new" -s -30min -w 400 -h 100 -t "$host: memory used" -b 1024 \
      "DEF:m=$host/memory/memory-used.rrd:value:AVERAGE" "AREA:m#60a060:used" >/dev/null && mv "$out/$host-memory.png.new" "$out/$host-memory.png"
  fi
  rows+="<h2>$host</h2><img src=\"$host-load.png\"> <img src=\"$host-memory.png\">"$'\n'
done
cat > "$out/index.html.new" <<HTML
<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<title>collectd: every node</title><style>body { font: 15px system-ui, sans-serif; margin: 2em }</style></head>
<body><h1>collectd: every node</h1><p>redrawn $(date +%H:%M:%S) from /var/lib/collectd/rrd</p>
$rows</body></html>
HTML
mv "$out/index.html.new" "$out/index.html"
SH
chmod 755 /usr/local/bin/todo-graphs
cat > /etc/systemd/system/todo-graphs.service <<'UNIT'
[Unit]
Description=todomvc: draw collectd's graphs every 10 s

[Service]
ExecStart=/bin/sh -c 'while :; do /usr/local/bin/todo-graphs; sleep 10; done'
Restart=always

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable -q todo-graphs
systemctl restart todo-graphs
echo "status page on http://$LAB_IP/, graphs on http://$LAB_IP/graphs/, logs in /var/log/lab, dumps in /srv/dumps"
