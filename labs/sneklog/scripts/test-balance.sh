#!/bin/sh
# lab test, on the host: 20 requests through the balancer reach every app.
set -eu
seen=$(for i in $(seq 1 20); do curl -fsS -o /dev/null -D - "http://$LAB_ROLE_LB_IPS/" | tr -d '\r' | sed -n 's/^[Xx]-[Ss]erved-[Bb]y: //p'; done | sort | uniq -c)
echo "$seen"
[ "$(echo "$seen" | wc -l)" -eq "$LAB_ROLE_APP_COUNT" ]
