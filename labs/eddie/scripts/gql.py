"""A GraphQL client for the lab's scripts: gql(ip, query, variables)."""
import json
import urllib.request


def gql(ip, query, variables=None):
    req = urllib.request.Request("http://%s:8000/graphql" % ip, data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        body = json.load(r)
    if body.get("errors"):
        raise RuntimeError("%s: %s" % (ip, body["errors"]))
    return body["data"]
