#!/bin/sh
# The S3 store: versitygw serving the folder /srv/s3 (each bucket a folder,
# each object a file) on port 7070, with the lab's one access key.
set -eu
mkdir -p /srv/s3
cat > /etc/systemd/system/versitygw.service <<'UNIT'
[Unit]
Description=versitygw, an S3 server over /srv/s3
After=network.target

[Service]
Environment=ROOT_ACCESS_KEY=sneklog ROOT_SECRET_KEY=sneklog-lab-secret
ExecStart=/usr/local/bin/versitygw --port :7070 posix /srv/s3
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable -q versitygw
systemctl restart versitygw
