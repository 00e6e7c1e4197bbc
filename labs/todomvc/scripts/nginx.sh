#!/bin/bash
# nginx: the public face, on both address families, HTTP and HTTPS (the
# image's self-signed snakeoil certificate). It balances across the app nodes
# that are ready; lab-discovery rewrites that list from Serf.
set -euo pipefail
rm -f /etc/nginx/sites-enabled/default
# Until Serf says more, every app node of the lab file is a backend.
if [ ! -f /etc/nginx/todo-upstreams.conf ]; then
  for ip in $LAB_ROLE_APP_IPS; do echo "server $ip:8000 max_fails=1 fail_timeout=3s;"; done > /etc/nginx/todo-upstreams.conf
fi
cat > /etc/nginx/sites-enabled/todo <<'NGINX'
upstream todo_app {
    include /etc/nginx/todo-upstreams.conf;
}
server {
    listen 80 default_server;
    listen [::]:80 default_server;
    listen 443 ssl default_server;
    listen [::]:443 ssl default_server;
    ssl_certificate /etc/ssl/certs/ssl-cert-snakeoil.pem;
    ssl_certificate_key /etc/ssl/private/ssl-cert-snakeoil.key;
    location / {
        proxy_pass http://todo_app;
        proxy_set_header Host $host;
        proxy_connect_timeout 1s;
        proxy_read_timeout 10s;
        # A backend that refuses or does not answer: try the next one.
        proxy_next_upstream error timeout http_502 non_idempotent;
        proxy_next_upstream_tries 3;
        add_header X-Upstream $upstream_addr always;
        add_header X-Nginx $hostname always;
    }
    location = /nginx-health { add_header X-Nginx $hostname always; return 200 "ok\n"; }
}
NGINX
nginx -t -q
systemctl reload-or-restart nginx
/usr/local/bin/lab-discovery refresh || true
echo "nginx on $LAB_IP and [$LAB_IP6], ports 80 and 443"
