#!/bin/bash
# request-loop.sh [SECONDS] [NAME] [URL]: sends one search after another to
# the proxy's NAME site (live by default) through the lab's port forward
# for SECONDS (20), then says how many were sent and how many failed (an
# error, a timeout or a status other than 200). Run it while you switch
# live to another database, to see what the switch costs.
set -u
seconds=${1:-20} name=${2:-live} url=${3:-http://127.0.0.1:8380/api/search?q=rs100003}
end=$((SECONDS + seconds)) ok=0 failed=0
while [ "$SECONDS" -lt "$end" ]; do
  if curl -fs -o /dev/null --max-time 5 -H "Host: $name" "$url"; then
    ok=$((ok + 1))
  else
    failed=$((failed + 1))
  fi
done
echo "requests: $((ok + failed)), failed: $failed"
[ "$failed" -eq 0 ]
