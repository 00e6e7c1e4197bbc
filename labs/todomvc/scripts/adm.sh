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
cat > /etc/systemd/system/lab-discovery.service <<'UNIT'
[Unit]
Description=Refresh the status page from Serf every few seconds (besides Serf's events)
After=serf.service

[Service]
ExecStart=/usr/local/bin/lab-discovery watch
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable -q lab-discovery
systemctl restart lab-discovery
systemctl reload-or-restart nginx
echo "status page on http://$LAB_IP/"
