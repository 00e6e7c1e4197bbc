#!/bin/sh
# The monitoring and control server: Prometheus scrapes every node's node
# exporter and every app's /metrics each 2 s, Alertmanager holds the alerts
# ("app down", "target down"), and rsyslog receives every node's log into
# /var/log/remote/NODE.log (sneklog-logs searches them). Its targets come
# from the lab's facts: scaling any role updates them.
set -eu
. /etc/lab/facts.env
targets() { for ip in $1; do printf "'%s:%s', " "$ip" "$2"; done; }
all=""
for role in $LAB_ROLES; do
  var=LAB_ROLE_$(echo "$role" | tr a-z- A-Z_)_IPS
  eval "all=\"\$all \$$var\""
done
cat > /etc/prometheus/prometheus.yml <<CONF
# Written by scripts/mon.sh from the lab's facts.
global:
  scrape_interval: 2s
  evaluation_interval: 2s
  scrape_timeout: 1s
rule_files: [/etc/prometheus/sneklog-rules.yml]
alerting:
  alertmanagers: [{static_configs: [{targets: ['localhost:9093']}]}]
scrape_configs:
  - job_name: node
    static_configs: [{targets: [$(targets "$all" 9100)]}]
  - job_name: sneklog
    static_configs: [{targets: [$(targets "$LAB_ROLE_APP_IPS" 8000)]}]
CONF
cat > /etc/prometheus/sneklog-rules.yml <<'CONF'
groups:
  - name: sneklog
    rules:
      - alert: AppDown
        expr: up{job="sneklog"} == 0
        for: 4s
        labels: {severity: page}
        annotations: {summary: "SnekLog on {{ $labels.instance }} does not answer"}
      - alert: TargetDown
        expr: up == 0
        for: 4s
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.job }} on {{ $labels.instance }} cannot be scraped"}
CONF
cat > /etc/prometheus/alertmanager.yml <<'CONF'
route:
  receiver: log
  group_by: [alertname, instance]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
receivers:
  - name: log
CONF
promtool check config /etc/prometheus/prometheus.yml >/dev/null
# A lab keeps little history; the defaults keep 15 days.
echo 'ARGS="--storage.tsdb.retention.time=1d"' > /etc/default/prometheus
systemctl restart prometheus prometheus-alertmanager
mkdir -p /var/log/remote
cat > /etc/rsyslog.d/10-sneklog-server.conf <<'CONF'
# The lab's log server: every node's syslog, one file per node.
module(load="imtcp")
input(type="imtcp" port="514" ruleset="remote")
template(name="pernode" type="string" string="/var/log/remote/%HOSTNAME%.log")
ruleset(name="remote") { action(type="omfile" dynaFile="pernode") }
CONF
systemctl restart rsyslog
