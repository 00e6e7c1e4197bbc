#!/bin/sh
# An api node: Eddie's GraphQL API under gunicorn (one worker, so one cache
# per node; threads for concurrent requests), its configuration, and
# eddie-flush to switch the cache flush off and on.
set -eu
mkdir -p /etc/eddie
cat > /etc/eddie/eddie.conf <<CONF
[database]
host = db1
name = eddie
user = eddie
password = eddie-lab

[bus]
host = mq1
user = eddie
password = eddie-lab

[mail]
host = mail1
from = Eddie <noreply@eddie.lab>

[cache]
ttl = ${EDDIE_CACHE_TTL:-300}
CONF
cat > /etc/systemd/system/eddie-api.service <<'UNIT'
[Unit]
Description=Eddie's GraphQL API
After=network.target

[Service]
User=www-data
WorkingDirectory=/opt/eddie
ExecStart=/usr/bin/gunicorn --workers 1 --threads 8 --bind 0.0.0.0:8000 --access-logfile - eddie:app
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
UNIT
cat > /usr/local/bin/eddie-flush <<'SH'
#!/bin/sh
# eddie-flush on|off|status: whether an update flushes its id on every api node.
case "${1:-status}" in
  on) rm -f /etc/eddie/flush-off ;;
  off) touch /etc/eddie/flush-off ;;
  status) ;;
  *) echo "usage: eddie-flush on|off|status" >&2; exit 2 ;;
esac
[ -e /etc/eddie/flush-off ] && echo off || echo on
SH
chmod 755 /usr/local/bin/eddie-flush
systemctl daemon-reload
systemctl enable -q eddie-api
systemctl restart eddie-api
