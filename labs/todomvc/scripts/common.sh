#!/bin/bash
# Every node: its journal goes through rsyslog to adm1 (queued on disk while
# adm1 is away), and collectd sends its metrics to adm1. adm1 is the
# receiver of both (scripts/adm.sh).
set -euo pipefail
ADM=$(echo $LAB_ROLE_ADM_NODES | cut -d' ' -f1)
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\nForwardToSyslog=yes\n' > /etc/systemd/journald.conf.d/todomvc.conf
if [ "$LAB_ROLE" != adm ]; then
  cat > /etc/rsyslog.d/90-todomvc-forward.conf <<CONF
# Everything to $ADM, the lab's log server.
*.* action(type="omfwd" target="$ADM" port="514" protocol="tcp"
           queue.type="LinkedList" queue.filename="forward" queue.saveOnShutdown="on"
           action.resumeRetryCount="-1" action.resumeInterval="1")
CONF
fi
systemctl restart systemd-journald
systemctl restart rsyslog

# collectd: a few plugins every 5 s, sent to the server on adm1.
mkdir -p /etc/collectd/collectd.conf.d
if [ "$LAB_ROLE" = adm ]; then
  network="<Listen \"$LAB_IP\" \"25826\">
  </Listen>"
  store='LoadPlugin rrdtool
<Plugin rrdtool>
  DataDir "/var/lib/collectd/rrd"
  CacheTimeout 10
  CacheFlush 30
</Plugin>'
else
  network="<Server \"$ADM\" \"25826\">
  </Server>"
  store=""
fi
cat > /etc/collectd/collectd.conf <<CONF
# lab: metrics of $LAB_NODE, every 5 s, to $ADM.
Hostname "$LAB_NODE"
FQDNLookup false
Interval 5
LoadPlugin cpu
LoadPlugin load
LoadPlugin memory
LoadPlugin interface
LoadPlugin network
<Plugin interface>
  Interface "eth0"
</Plugin>
<Plugin network>
  $network
</Plugin>
$store
CONF
systemctl enable -q collectd
systemctl restart collectd
echo "$LAB_NODE: logs and metrics to $ADM"
