#!/bin/sh
# A lab test (on the host): a todo written through the first nginx node is
# read back and deleted through the last one.
set -eu
set -- $LAB_ROLE_NGINX_IPS
first=$1
eval "last=\${$#}"
made=$(curl -fsS -XPOST -H 'Content-Type: application/json' -d '{"title":"lab test"}' "http://$first/api/todos")
id=$(echo "$made" | sed -n 's/.*"id": *\([0-9]*\).*/\1/p')
test -n "$id" || { echo "no id in: $made"; exit 1; }
curl -fsS "http://$last/api/todos/$id" | grep -q '"title": *"lab test"'
curl -fsS -o /dev/null -XDELETE "http://$last/api/todos/$id"
echo "todo $id: written through $first, read back and deleted through $last"
