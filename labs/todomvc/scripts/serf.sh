#!/bin/bash
# Every node runs a Serf agent that joins adm1, with its role as a tag.
# Roles that react to membership (adm, nginx, app) get lab-discovery as
# handler. The "local" profile detects a dead node in a few seconds, which
# the database's failover waits for. Its RPC listens on every address:
# pg-agent asks the other pg nodes' Serf directly whether the primary failed.
set -euo pipefail
mkdir -p /etc/serf /var/lib/serf
# Tags live in a tags file so `serf tags -set` survives restarts.
[ -f /var/lib/serf/tags.json ] || echo "{\"role\": \"$LAB_ROLE\"}" > /var/lib/serf/tags.json
# The lab's own gossip key: an agent that is not the lab's (Serf's package
# starts one with its default configuration at boot, until this script
# restarts it) can never be joined. Without it a node could join adm1's
# boot-time agent in the moment before adm1 restarts it, see it leave, and
# stay alone: retry_join stops at the first success, and Serf does not
# reconnect to a member that left.
key=$(python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha256(sys.argv[1].encode()).digest()[:16]).decode())' "lab/$LAB_NAME")
handler=""
if [ -x /usr/local/bin/lab-discovery ]; then
  handler='"event_handlers": ["/usr/local/bin/lab-discovery event"],'
fi
cat > /etc/serf/lab.json <<JSON
{
  "node_name": "$LAB_NODE",
  "bind": "$LAB_IP:7946",
  "advertise": "$LAB_IP:7946",
  "rpc_addr": "0.0.0.0:7373",
  "encrypt_key": "$key",
  "tags_file": "/var/lib/serf/tags.json",
  $handler
  "profile": "local",
  "retry_join": ["$LAB_ROLE_ADM_IPS"],
  "retry_interval": "1s",
  "reconnect_interval": "2s",
  "log_level": "warn"
}
JSON
rm -f /etc/serf/serf.json
systemctl enable -q serf
systemctl restart serf
for i in $(seq 1 100); do serf members >/dev/null 2>&1 && break; sleep 0.1; done
serf members >/dev/null
if [ -n "$handler" ]; then
  # Besides Serf's events: resync every 5 s, and on app nodes tell Serf
  # whether this node's app is ready (tag app=up/down).
  cat > /etc/systemd/system/lab-discovery.service <<'UNIT'
[Unit]
Description=lab discovery loop: resync from Serf; on app nodes, the app=up/down tag
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
fi
echo "serf agent $LAB_NODE up, joining $LAB_ROLE_ADM_IPS"
