#!/bin/sh
# Restart service $UNIT when program $FILE differs from what it runs (a lab
# up that copied a new one in an earlier step). Runs on every up; usually a
# no-op. Restarting pg-agent or lab-discovery changes nothing else.
set -eu
now=$(md5sum "$FILE")
mark=/run/lab-loaded-$UNIT.md5
if [ "$now" != "$(cat "$mark" 2>/dev/null)" ]; then
  if systemctl is-active -q "$UNIT"; then
    systemctl restart "$UNIT"
    echo "restarted $UNIT: new code"
  fi
  echo "$now" > "$mark"
fi
