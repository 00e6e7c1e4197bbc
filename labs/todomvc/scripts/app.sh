#!/bin/bash
# nginx + the TodoMVC app (Django under gunicorn). nginx balances across the
# app on every live nginx node; lab-discovery rewrites that list from Serf.
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

cat > /etc/systemd/system/todo.service <<UNIT
[Unit]
Description=TodoMVC (Django under gunicorn)
After=network.target

[Service]
User=www-data
WorkingDirectory=/opt/todo
ExecStart=/usr/bin/gunicorn3 --bind $LAB_IP:8000 --workers 2 --access-logfile - todo.wsgi
ExecReload=/bin/kill -HUP \$MAINPID
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT

rm -f /etc/nginx/sites-enabled/default
# Until Serf says more, this node's own app is the only backend.
[ -f /etc/nginx/todo-upstreams.conf ] || echo "server $LAB_IP:8000 max_fails=1 fail_timeout=3s;" > /etc/nginx/todo-upstreams.conf
cat > /etc/nginx/sites-enabled/todo <<'NGINX'
upstream todo_app {
    include /etc/nginx/todo-upstreams.conf;
}
server {
    listen 80 default_server;
    location / {
        proxy_pass http://todo_app;
        proxy_set_header Host $host;
        proxy_connect_timeout 1s;
        proxy_read_timeout 10s;
        # A backend that refuses or does not answer: try the next one.
        proxy_next_upstream error timeout http_502 http_503 non_idempotent;
        proxy_next_upstream_tries 3;
        add_header X-Upstream $upstream_addr always;
    }
    location = /nginx-health { return 200 "ok\n"; }
}
NGINX

systemctl daemon-reload
systemctl enable -q todo
if systemctl is-active -q todo; then systemctl reload todo; else systemctl start todo; fi
# What gunicorn loaded, for app-reload.sh.
find /opt/todo -type f | sort | xargs md5sum | md5sum > /run/todo-loaded.md5
nginx -t -q
systemctl reload-or-restart nginx
# Serf knows the other backends by now, or will tell us when it does.
/usr/local/bin/lab-discovery refresh || true
for i in $(seq 1 100); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://$LAB_IP:8000/api/health', timeout=1)" 2>/dev/null && break
  sleep 0.1
done
echo "app on $LAB_IP:8000, primary $PRIMARY"
