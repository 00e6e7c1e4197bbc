#!/bin/sh
# The load balancer: HAProxy spreads requests round-robin over every app
# server it finds healthy (GET /health every 500 ms), retries a request on
# another server when one does not answer, and serves the maintenance page
# (503, Retry-After) to every request while maintenance is on. The app
# servers come from the lab's facts, so scaling app needs no edit here.
# sneklog-lb (files/sneklog-lb) is the switch for both.
set -eu
servers=""
for ip in $LAB_ROLE_APP_IPS; do
  name=$(getent hosts "$ip" | awk '{print $2}' | cut -d. -f1)
  servers="$servers    server ${name:-$ip} $ip:8000 check inter 500 fall 2 rise 2
"
done
[ -s /etc/haproxy/maintenance.map ] || echo "maintenance off" > /etc/haproxy/maintenance.map
cat > /etc/haproxy/haproxy.cfg <<CONF
global
    log /dev/log local0
    stats socket /run/haproxy/admin.sock mode 660 level admin
    # The management port: the rollout drains and readies servers through it.
    stats socket ipv4@$LAB_IP:9999 level admin
    stats timeout 30s
    user haproxy
    group haproxy
    daemon

defaults
    log global
    mode http
    option httplog
    timeout connect 500ms
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 503

frontend www
    bind :80
    http-request return status 503 content-type "text/html; charset=utf-8" file /etc/haproxy/maintenance.html hdr Retry-After 120 if { str(maintenance),map(/etc/haproxy/maintenance.map,off) -m str on }
    default_backend app

backend app
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
$servers
CONF
haproxy -c -q -f /etc/haproxy/haproxy.cfg
systemctl reload-or-restart haproxy
