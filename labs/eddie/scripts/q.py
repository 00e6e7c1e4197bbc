#!/usr/bin/env python3
"""q.py N QUERY [VARIABLES-JSON]: sends a GraphQL query to api node N of the
lab (from the host) and prints the answer, e.g.

    scripts/q.py 2 '{ node item(id: "00000000-0000-4000-8000-000000000101") { owner { name } } }'
"""
import json
import sys
import urllib.request

if len(sys.argv) < 3:
    sys.exit(__doc__)
ip = "10.82.0.%d" % (70 + int(sys.argv[1]))
body = {"query": sys.argv[2], "variables": json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}}
req = urllib.request.Request("http://%s:8000/graphql" % ip, data=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=10) as r:
    print(json.dumps(json.load(r)))
