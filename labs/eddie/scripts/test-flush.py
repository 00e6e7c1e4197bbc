#!/usr/bin/env python3
"""lab test, on the host: with item 103 cached on every api node, a
transfer on the first node is seen by all of them at once, and moving it
back is too (so the test leaves the data as it found it)."""
import os
import sys
import time

from gql import gql

ITEM = "00000000-0000-4000-8000-000000000103"
ALICE, BOB = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"
OWNER = "query($id: ID!) { item(id: $id) { owner { name } } }"
MOVE = "mutation($id: ID!, $to: ID!) { transferItem(id: $id, to: $to) { owner { name } } }"

ips = os.environ["LAB_ROLE_API_IPS"].split()


def owners():
    return [gql(ip, OWNER, {"id": ITEM})["item"]["owner"]["name"] for ip in ips]


def move(to, name):
    owners()  # every cache is warm
    gql(ips[0], MOVE, {"id": ITEM, "to": to})
    deadline = time.monotonic() + 1
    while True:
        seen = owners()
        if seen == [name] * len(ips):
            print("every node says %s" % name)
            return
        if time.monotonic() > deadline:
            sys.exit("after a transfer to %s on %s, the nodes say %s" % (name, ips[0], seen))
        time.sleep(0.05)


start = owners()[0]
move(ALICE if start == "Bob" else BOB, "Alice" if start == "Bob" else "Bob")
move(BOB if start == "Bob" else ALICE, start)
