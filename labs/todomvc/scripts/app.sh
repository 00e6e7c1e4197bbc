#!/bin/bash
# The TodoMVC app (Django under gunicorn), a layer of its own: nginx nodes
# balance across every app node that is ready. It writes to the primary that
# discovery names (/etc/todo/discovery.json, from Serf) and follows it
# through a failover without a restart.
set -euo pipefail
PRIMARY=$(echo $LAB_ROLE_PG_NODES | cut -d' ' -f1)
mkdir -p /etc/todo
python3 - <<PY
import json
pgs = "$LAB_ROLE_PG_NODES".split()
ips = "$LAB_ROLE_PG_IPS".split()
json.dump({"node": "$LAB_NODE", "primary": "$PRIMARY", "password": "todo-lab",
           "databases": [{"name": n, "host": ip} for n, ip in zip(pgs, ips)]},
          open("/etc/todo/app.json", "w"), indent=2)
PY

# Both families: [::] takes IPv4 too.
cat > /etc/systemd/system/todo.service <<'UNIT'
[Unit]
Description=TodoMVC (Django under gunicorn)
After=network.target

[Service]
User=www-data
WorkingDirectory=/opt/todo
ExecStart=/usr/bin/gunicorn3 --bind [::]:8000 --workers 2 --timeout 20 --access-logfile - todo.wsgi
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable -q todo
if systemctl is-active -q todo; then systemctl reload todo; else systemctl start todo; fi
# What gunicorn loaded, for app-reload.sh.
find /opt/todo -type f | sort | xargs md5sum | md5sum > /run/todo-loaded.md5
/usr/local/bin/lab-discovery refresh || true
for i in $(seq 1 100); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=1)" 2>/dev/null && break
  sleep 0.1
done
echo "app on [::]:8000, writing to $(python3 -c "import json; print(json.load(open('/etc/todo/discovery.json')).get('primary') or '$PRIMARY')" 2>/dev/null || echo $PRIMARY)"
