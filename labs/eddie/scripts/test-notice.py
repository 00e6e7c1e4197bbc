#!/usr/bin/env python3
"""lab test, on the host: a notice set through one api node is what every
api node returns."""
import os
import sys
import time

from gql import gql

ips = os.environ["LAB_ROLE_API_IPS"].split()
text = "Maintenance tonight (lab test %d)" % time.time()
gql(ips[0], "mutation($t: String!) { setNotice(text: $t) { text } }", {"t": text})
seen = [gql(ip, "{ notice { text } }")["notice"]["text"] for ip in ips]
print(seen)
if seen != [text] * len(ips):
    sys.exit("the nodes return different notices")
