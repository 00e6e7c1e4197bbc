#!/bin/sh
# lab test, on the host: through the proxy, the live name serves master
# (without develop's coverage feature) and the dev name serves develop
# (with it), and both find data.
set -eu
proxy=$LAB_NODE_PROXY1_IP
get() { curl -fsS --max-time 10 -H "Host: $1" "http://$proxy$2"; }
live=$(get live /api/info)
dev=$(get dev /api/info)
echo "live: $live"
echo "dev:  $dev"
echo "$live" | grep -q '"branch": "master"'
echo "$live" | grep -q '"features": \[\]'
echo "$dev" | grep -q '"branch": "develop"'
echo "$dev" | grep -q '"features": \["coverage"\]'
get dev "/search?q=22:16050000-16052000" | grep -q 'Mean coverage'
if get live "/search?q=22:16050000-16052000" | grep -q 'Mean coverage'; then
  echo "live shows develop's coverage column" >&2
  exit 1
fi
get dev "/api/search?q=rs100003" | grep -q '"rsid": "rs100003"'
