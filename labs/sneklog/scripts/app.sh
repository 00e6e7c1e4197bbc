#!/bin/sh
# An app server: SnekLog under gunicorn on port 8000, its first release
# (later ones come with sneklog-manager rollout), and the pictures bucket.
set -eu
mkdir -p /etc/sneklog /opt/sneklog/releases
cat > /etc/sneklog/sneklog.conf <<'CONF'
[database]
host = db1
name = sneklog
user = sneklog
password = sneklog-lab

[store]
endpoint = http://store1:7070
access_key = sneklog
secret_key = sneklog-lab-secret
bucket = sneklog-pictures
CONF
if [ ! -e /opt/sneklog/current ]; then
  rm -rf /opt/sneklog/releases/1.0
  cp -R /opt/sneklog/incoming /opt/sneklog/releases/1.0
  echo 1.0 > /opt/sneklog/releases/1.0/VERSION
  ln -sfn releases/1.0 /opt/sneklog/current
fi
cat > /etc/systemd/system/sneklog.service <<'UNIT'
[Unit]
Description=SnekLog
After=network.target

# Workers import the app from /opt/sneklog/current, the link to the running
# release: a reload (HUP) starts new workers with the release the link
# names now and lets the old ones finish what they serve.
[Service]
User=www-data
WorkingDirectory=/opt/sneklog
ExecStart=/usr/bin/gunicorn --workers 1 --threads 8 --bind 0.0.0.0:8000 --pythonpath /opt/sneklog/current sneklog:app
ExecReload=/bin/kill -HUP $MAINPID
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable -q sneklog
systemctl restart sneklog
cd /opt/sneklog/current && python3 sneklog.py   # the bucket
