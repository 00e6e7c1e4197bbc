#!/bin/sh
# Reload gunicorn gracefully when the app's code differs from what it loaded
# (a lab up that copied new code in step 2). Runs on every up; usually a no-op.
set -eu
now=$(find /opt/todo -type f | sort | xargs md5sum | md5sum)
if [ "$now" != "$(cat /run/todo-loaded.md5 2>/dev/null)" ] && systemctl is-active -q todo; then
  systemctl reload todo
  echo "$now" > /run/todo-loaded.md5
  echo "reloaded the app: new code"
fi
