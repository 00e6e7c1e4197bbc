#!/bin/sh
# RabbitMQ for the service bus: the eddie user, and a memory limit that
# fits the node (RabbitMQ would size itself by the host's memory).
set -eu
cat > /etc/rabbitmq/rabbitmq.conf <<'CONF'
total_memory_available_override_value = 768MB
loopback_users.guest = true
CONF
systemctl restart rabbitmq-server
rabbitmqctl -q await_startup
rabbitmqctl -q list_users | grep -q '^eddie' || rabbitmqctl -q add_user eddie eddie-lab
rabbitmqctl -q set_permissions -p / eddie '.*' '.*' '.*'
