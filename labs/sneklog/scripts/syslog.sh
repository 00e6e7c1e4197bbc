#!/bin/sh
# Every node: the journal goes to rsyslog, and rsyslog sends everything to
# mon1 over TCP (queued on disk while mon1 is away), where it can be searched.
set -eu
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\nForwardToSyslog=yes\n' > /etc/systemd/journald.conf.d/sneklog.conf
cat > /etc/rsyslog.d/90-sneklog-forward.conf <<'CONF'
# Everything to mon1, the lab's log server.
*.* action(type="omfwd" target="mon1" port="514" protocol="tcp"
           queue.type="LinkedList" queue.filename="forward" queue.saveOnShutdown="on"
           action.resumeRetryCount="-1" action.resumeInterval="1")
CONF
systemctl restart systemd-journald
systemctl restart rsyslog
