#!/bin/sh
# The one proxy in front of both systems: nginx sends live.DOMAIN (and any
# name it does not know) to the live web servers and dev.DOMAIN to the
# development ones. It is the only node on both networks.
set -eu
servers() { for ip in $1; do printf '    server %s:8000;\n' "$ip"; done; }
site() { # NAME UPSTREAM [default_server]
  cat <<EOF
server {
    listen 80 ${3:-};
    server_name $1.$LAB_DOMAIN $1;
    location / {
        proxy_pass http://$2;
        proxy_set_header Host \$host;
        proxy_set_header X-Forwarded-For \$remote_addr;
    }
}
EOF
}
{
  printf 'upstream web_live {\n%s\n}\nupstream web_dev {\n%s\n}\n' "$(servers "$LAB_ROLE_WEB_LIVE_IPS")" "$(servers "$LAB_ROLE_WEB_DEV_IPS")"
  site live web_live default_server
  site dev web_dev
} > /etc/nginx/sites-available/swefreq
ln -sf ../sites-available/swefreq /etc/nginx/sites-enabled/swefreq
rm -f /etc/nginx/sites-enabled/default
nginx -t -q
systemctl reload-or-restart nginx
