#!/bin/bash
# adm1: the discovery hub and a status page of the lab, refreshed from Serf.
set -euo pipefail
rm -f /etc/nginx/sites-enabled/default
cat > /etc/nginx/sites-enabled/status <<'NGINX'
server {
    listen 80 default_server;
    root /var/www/status;
    location / { add_header Cache-Control "no-store"; try_files $uri $uri/ =404; }
}
NGINX
mkdir -p /var/www/status
/usr/local/bin/lab-discovery refresh
systemctl reload-or-restart nginx
echo "status page on http://$LAB_IP/"
